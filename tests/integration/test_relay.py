"""Relay: echo over every peer kind, bulk data integrity, fragmentation,
ping/pong, framings, keepalive."""
import asyncio
import hashlib
import os
import socket
import time

import pytest
import websockets

from conftest import run_async, tcp_peer_args, wait_for
from rawws import OP_BIN, OP_CONT, OP_PING, OP_PONG, OP_TEXT, build_frame


def connect(url, **kw):
    kw.setdefault("open_timeout", 5)
    kw.setdefault("close_timeout", 5)
    kw.setdefault("ping_interval", None)
    kw.setdefault("compression", None)
    kw.setdefault("max_size", None)
    return websockets.connect(url, **kw)


async def echo_roundtrips(url, messages, stream=False):
    """Send each message and read its echo.  Over a stream peer message
    boundaries are not preserved: collect until as many bytes came back
    (as the same type as sent)."""
    out = []
    async with connect(url) as ws:
        for m in messages:
            await ws.send(m)
            if not stream:
                out.append(await asyncio.wait_for(ws.recv(), 5))
                continue
            want = len(m.encode() if isinstance(m, str) else m)
            got = b""
            while len(got) < want:
                r = await asyncio.wait_for(ws.recv(), 5)
                assert type(r) is type(m), "sent %s, got %s" % (type(m), type(r))
                got += r.encode() if isinstance(r, str) else r
            out.append(got.decode() if isinstance(m, str) else got)
    return out


# ---------------------------------------------------------------- peer kinds
def test_echo_tcp(websocksy, peers):
    peer = peers.tcp_echo()
    srv = websocksy(*tcp_peer_args(peer))
    msgs = ["hello", "wörld €", "x" * 1000]
    assert run_async(echo_roundtrips(srv.url, msgs, True)) == msgs


def test_echo_tcp_full_uri(websocksy, peers):
    peer = peers.tcp_echo()
    srv = websocksy("-c", "host=tcp://127.0.0.1:%d" % peer.port, "-c", "framing=binary")
    msgs = [b"\x00\x01\x02", os.urandom(70000)]
    assert run_async(echo_roundtrips(srv.url, msgs, True)) == msgs


def test_echo_tcp_ipv6_literal_peer(websocksy, peers):
    peer = peers.tcp6_echo()
    srv = websocksy("-c", "host=tcp://[::1]:%d" % peer.port)
    assert run_async(echo_roundtrips(srv.url, ["v6 peer"], True)) == ["v6 peer"]


def test_echo_udp(websocksy, peers):
    peer = peers.udp_echo()
    srv = websocksy("-c", "host=udp://127.0.0.1:%d" % peer.port, "-c", "framing=binary")
    msgs = [b"one", b"two" * 100, os.urandom(60000), b"x"]
    assert run_async(echo_roundtrips(srv.url, msgs)) == msgs
    # one message = one datagram
    assert [d for _, d in peer.received] == msgs


def test_echo_udp_text(websocksy, peers):
    peer = peers.udp_echo()
    srv = websocksy("-c", "host=udp://127.0.0.1:%d" % peer.port)
    assert run_async(echo_roundtrips(srv.url, ["datagram €"])) == ["datagram €"]


def test_echo_unix(websocksy, peers):
    peer = peers.unix_echo()
    srv = websocksy("-c", "host=unix://" + peer.addr)
    msgs = ["unix stream", "second"]
    assert run_async(echo_roundtrips(srv.url, msgs, True)) == msgs


def test_echo_unix_dgram(websocksy, peers):
    peer = peers.unix_dgram_echo()
    srv = websocksy("-c", "host=unix-dgram://" + peer.addr, "-c", "framing=binary")
    msgs = [b"dgram one", os.urandom(5000)]
    assert run_async(echo_roundtrips(srv.url, msgs)) == msgs
    assert [d for _, d in peer.received] == msgs
    # websocksy binds its own client path and unlinks it at close
    client_paths = {a for a, _ in peer.received}
    assert len(client_paths) == 1
    path = client_paths.pop()
    assert path, "websocksy's unix-dgram socket is not bound to a path"
    if not path.startswith("\0"):
        assert wait_for(lambda: not os.path.exists(path), 5), \
            "unix-dgram client path %s not unlinked at close" % path


def test_fragmented_message_to_udp_is_one_datagram(websocksy, peers):
    peer = peers.udp_echo()
    srv = websocksy("-c", "host=udp://127.0.0.1:%d" % peer.port, "-c", "framing=binary")
    c = srv.ws()
    c.send(build_frame(OP_BIN, b"abc", fin=False) + build_frame(OP_PING, b"p")
           + build_frame(OP_CONT, b"def", fin=False) + build_frame(OP_CONT, b"ghi"))
    got = []
    while len(got) < 2:
        f = c.read_frame()
        if f.opcode == OP_PONG:
            assert f.payload == b"p"
            got.append("pong")
        else:
            assert f.opcode == OP_BIN and f.fin, f
            assert f.payload == b"abcdefghi"
            got.append("data")
    assert [d for _, d in peer.received] == [b"abcdefghi"]


# ---------------------------------------------------------------- bulk data
def test_10mb_random_both_ways_sha256(websocksy, peers):
    peer = peers.tcp_echo()
    srv = websocksy(*tcp_peer_args(peer, "-c", "framing=binary"))
    data = os.urandom(10 * 1024 * 1024)
    want = hashlib.sha256(data).hexdigest()

    async def main():
        async with connect(srv.url) as ws:
            async def sender():
                step = 65536
                for i in range(0, len(data), step):
                    await ws.send(data[i:i + step])

            async def receiver():
                h, n = hashlib.sha256(), 0
                while n < len(data):
                    m = await asyncio.wait_for(ws.recv(), 10)
                    assert isinstance(m, bytes), "text message with binary framing"
                    h.update(m)
                    n += len(m)
                return h.hexdigest(), n

            _, (digest, n) = await asyncio.gather(sender(), receiver())
            return digest, n

    digest, n = run_async(main(), 60)
    assert n == len(data)
    assert digest == want
    rec = peer.wait_conn()
    assert rec.nbytes == len(data)
    assert rec.sha.hexdigest() == want


def test_peer_sends_1mb_then_closes(websocksy, peers):
    data = os.urandom(1024 * 1024)
    peer = peers.tcp_sender(data)
    srv = websocksy(*tcp_peer_args(peer))

    async def main():
        buf = bytearray()
        async with connect(srv.url) as ws:
            try:
                while True:
                    m = await asyncio.wait_for(ws.recv(), 10)
                    buf += m.encode() if isinstance(m, str) else m
            except websockets.ConnectionClosed:
                pass
            await asyncio.wait_for(ws.wait_closed(), 10)
            return bytes(buf), ws.close_code

    got, code = run_async(main(), 30)
    assert len(got) == len(data)
    assert got == data
    assert code == 1000


def test_peer_eof_raw_close_after_all_data(websocksy, peers):
    data = b"".join(b"line %d\n" % i for i in range(20000))
    peer = peers.tcp_sender(data)
    srv = websocksy(*tcp_peer_args(peer, "-c", "framing=binary"))
    c = srv.ws()
    msgs = []
    f = c.read_close(timeout=10, data=msgs)
    assert b"".join(p for _, p in msgs) == data
    assert f.close_code == 1000
    c.send_close(1000)
    assert c.wait_eof(5)


# -------------------------------------------------------------- fragmentation
def test_fragmented_text_split_code_point(websocksy, peers):
    peer = peers.tcp_sink()
    srv = websocksy(*tcp_peer_args(peer))
    c = srv.ws()
    # U+1F600 = F0 9F 98 80, split 2/2 and then 1/1/.. across fragments
    c.send(build_frame(OP_TEXT, b"ab\xf0\x9f", fin=False))
    time.sleep(0.05)
    c.send(build_frame(OP_CONT, b"\x98\x80cd\xf0", fin=False))
    time.sleep(0.05)
    c.send(build_frame(OP_CONT, b"\x9f", fin=False) + build_frame(OP_CONT, b"\x98", fin=False)
           + build_frame(OP_CONT, b"", fin=False) + build_frame(OP_CONT, b"\x81!"))
    want = "ab\U0001F600cd\U0001F601!".encode()
    rec = peer.wait_conn()
    assert wait_for(lambda: len(rec.data) >= len(want), 5), rec.data
    assert bytes(rec.data) == want
    # the connection is still fine
    c.send_text("more")
    assert wait_for(lambda: bytes(rec.data) == want + b"more", 5), rec.data


def test_ping_pong_same_payload(websocksy, peers):
    peer = peers.tcp_echo()
    srv = websocksy(*tcp_peer_args(peer))
    c = srv.ws()
    for payload in (b"", b"x", os.urandom(125)):
        c.ping(payload)
        f = c.read_frame()
        assert f.opcode == OP_PONG and f.fin and not f.masked, f
        assert f.payload == payload


def test_pings_interleaved_with_fragments(websocksy, peers):
    peer = peers.tcp_sink()
    srv = websocksy(*tcp_peer_args(peer))
    c = srv.ws()
    c.send(build_frame(OP_BIN, b"part1-", fin=False) + build_frame(OP_PING, b"ping-a")
           + build_frame(OP_CONT, b"part2-", fin=False) + build_frame(OP_PING, b"ping-b")
           + build_frame(OP_PONG, b"unsolicited") + build_frame(OP_CONT, b"part3"))
    pongs = [c.read_frame(), c.read_frame()]
    assert [(f.opcode, f.payload) for f in pongs] == [(OP_PONG, b"ping-a"), (OP_PONG, b"ping-b")]
    rec = peer.wait_conn()
    assert wait_for(lambda: bytes(rec.data) == b"part1-part2-part3", 5), rec.data


def test_fragmented_echo_roundtrip(websocksy, peers):
    peer = peers.tcp_echo()
    srv = websocksy(*tcp_peer_args(peer, "-c", "framing=binary"))
    c = srv.ws()
    parts = [os.urandom(n) for n in (1, 200, 70000, 3)]
    c.send(build_frame(OP_BIN, parts[0], fin=False) + build_frame(OP_CONT, parts[1], fin=False)
           + build_frame(OP_CONT, parts[2], fin=False) + build_frame(OP_CONT, parts[3]))
    data, _ = c.read_bytes(sum(map(len, parts)))
    assert data == b"".join(parts)


def test_zero_mask_and_length_encodings(websocksy, peers):
    peer = peers.tcp_sink()
    srv = websocksy(*tcp_peer_args(peer))
    c = srv.ws()
    mid, big = os.urandom(200), os.urandom(70000)
    c.send(build_frame(OP_BIN, b"zero-mask ", mask_key=b"\0\0\0\0")
           + build_frame(OP_BIN, mid, mask_key=b"\0\0\0\0")
           + build_frame(OP_BIN, big, mask_key=b"\x01\x02\x03\x04"))
    rec = peer.wait_conn()
    want = b"zero-mask " + mid + big
    assert wait_for(lambda: len(rec.data) >= len(want), 5), len(rec.data)
    assert bytes(rec.data) == want


# ------------------------------------------------------------------- framings
def read_n_messages(c, n, timeout=5):
    return [c.read_message(timeout=timeout) for _ in range(n)]


def test_framing_newline_lf(websocksy, peers):
    peer = peers.tcp_manual()
    srv = websocksy(*tcp_peer_args(peer, "-c", "framing=newline", "-c", "framing-config=lf"))
    c = srv.ws()
    rec = peer.wait_conn()
    rec.sock.sendall(b"a\nbb\nccc\n")
    msgs = read_n_messages(c, 3)
    lines = [p for _, p in msgs]
    assert [p.rstrip(b"\n") for p in lines] == [b"a", b"bb", b"ccc"], msgs
    # the terminator is either kept on every frame or on none
    assert len({p.endswith(b"\n") for p in lines}) == 1, msgs
    # a partial line is held back until its end arrives
    rec.sock.sendall(b"dd")
    time.sleep(0.2)
    rec.sock.sendall(b"dd\n")
    op, p = c.read_message()
    assert p.rstrip(b"\n") == b"dddd", p


def test_framing_newline_crlf_default(websocksy, peers):
    peer = peers.tcp_manual()
    srv = websocksy(*tcp_peer_args(peer, "-c", "framing=newline"))
    c = srv.ws()
    rec = peer.wait_conn()
    rec.sock.sendall(b"one\r\ntwo\nstill two\r\n")
    msgs = read_n_messages(c, 2)
    assert [p.rstrip(b"\r\n") for _, p in msgs] == [b"one", b"two\nstill two"], msgs


def test_framing_separator_nul(websocksy, peers):
    peer = peers.tcp_manual()
    srv = websocksy(*tcp_peer_args(peer, "-c", "framing=separator",
                                   "-c", "framing-config=\\x00"))
    c = srv.ws()
    rec = peer.wait_conn()
    rec.sock.sendall(b"one\x00two\x00thr")
    msgs = read_n_messages(c, 2)
    assert [p for _, p in msgs] == [b"one\x00", b"two\x00"], msgs
    rec.sock.sendall(b"ee\x00")
    assert c.read_message()[1] == b"three\x00"


def test_framing_separator_multichar(websocksy, peers):
    peer = peers.tcp_manual()
    srv = websocksy(*tcp_peer_args(peer, "-c", "framing=separator",
                                   "-c", "framing-config=\\r\\n\\r\\n"))
    c = srv.ws()
    rec = peer.wait_conn()
    rec.sock.sendall(b"head\r\n\r\nbody\r\n")
    assert c.read_message()[1] == b"head\r\n\r\n"
    rec.sock.sendall(b"\r\n")
    assert c.read_message()[1] == b"body\r\n\r\n"


def test_framing_auto_text_and_binary(websocksy, peers):
    peer = peers.tcp_manual()
    srv = websocksy(*tcp_peer_args(peer))       # framing = auto by default
    c = srv.ws()
    rec = peer.wait_conn()
    rec.sock.sendall("héllo €".encode())
    data, msgs = c.read_bytes(len("héllo €".encode()))
    assert data == "héllo €".encode()
    assert all(op == OP_TEXT for op, _ in msgs), msgs
    rec.sock.sendall(b"\xff\xfe\x00bin")
    data, msgs = c.read_bytes(6)
    assert data == b"\xff\xfe\x00bin"
    assert all(op == OP_BIN for op, _ in msgs), msgs


def test_framing_auto_holds_incomplete_utf8_tail(websocksy, peers):
    peer = peers.tcp_manual()
    # utf8-hold (250 ms by default) long enough for the pause below
    srv = websocksy(*tcp_peer_args(peer, "-c", "framing=auto", "-C", "utf8-hold=10"))
    c = srv.ws()
    rec = peer.wait_conn()
    rec.sock.sendall(b"ab\xe2\x82")
    time.sleep(0.2)
    rec.sock.sendall(b"\xac")
    want = "ab€".encode()
    data, msgs = c.read_bytes(len(want))
    assert data == want
    assert all(op == OP_TEXT for op, _ in msgs), msgs
    for _, p in msgs:
        p.decode("utf-8")          # every text frame is valid UTF-8 on its own


def test_framing_binary(websocksy, peers):
    peer = peers.tcp_manual()
    srv = websocksy(*tcp_peer_args(peer, "-c", "framing=binary"))
    c = srv.ws()
    rec = peer.wait_conn()
    rec.sock.sendall(b"plain ascii text")
    data, msgs = c.read_bytes(16)
    assert data == b"plain ascii text"
    assert all(op == OP_BIN for op, _ in msgs), msgs


def test_framing_newline_with_websockets(websocksy, peers):
    peer = peers.tcp_echo()
    srv = websocksy(*tcp_peer_args(peer, "-c", "framing=newline", "-c", "framing-config=lf"))

    async def main():
        async with connect(srv.url) as ws:
            await ws.send("x\ny\n")
            return [await asyncio.wait_for(ws.recv(), 5) for _ in range(2)]

    got = run_async(main())
    got = [g.encode() if isinstance(g, str) else g for g in got]
    assert [g.rstrip(b"\n") for g in got] == [b"x", b"y"]


# ------------------------------------------------------------------ keepalive
def test_keepalive_ping_and_pong(websocksy, peers):
    peer = peers.tcp_echo()
    srv = websocksy("-k", "1", *tcp_peer_args(peer))
    c = srv.ws()
    t0 = time.monotonic()
    f = c.read_frame(timeout=3)
    assert f.opcode == OP_PING, f
    assert time.monotonic() - t0 < 2.5
    c.send_frame(OP_PONG, f.payload)
    # answering keeps it alive past the next ping
    f = c.read_frame(timeout=3)
    assert f.opcode == OP_PING, f
    c.send_frame(OP_PONG, f.payload)
    c.send_text("alive")
    assert c.read_message(timeout=3) == (OP_TEXT, b"alive")


def test_keepalive_drops_silent_client(websocksy, peers):
    peer = peers.tcp_echo()
    srv = websocksy("-k", "1", *tcp_peer_args(peer))
    c = srv.ws()
    t0 = time.monotonic()
    # never answer pings: dropped after the next ping (close frame or TCP close)
    deadline = t0 + 6
    closed = False
    while time.monotonic() < deadline:
        try:
            f = c.read_frame(timeout=max(0.01, deadline - time.monotonic()))
        except (ConnectionError, OSError, Exception) as e:
            if isinstance(e, socket.timeout):
                break
            closed = True
            break
        if f.opcode == 8:
            closed = c.wait_eof(5) or True
            break
    assert closed, "client that never answers pings was not dropped"
    rec = peer.wait_conn()
    assert rec.done.wait(5) or rec.eof.wait(5)


def test_frame_larger_than_buffer_size_is_flushed(websocksy, peers):
    peer = peers.tcp_manual()
    srv = websocksy("-C", "buffer-size=4096",
                    *tcp_peer_args(peer, "-c", "framing=separator", "-c", "framing-config=\\n"))
    c = srv.ws()
    rec = peer.wait_conn()
    blob = b"y" * 20000                  # no separator anywhere
    rec.sock.settimeout(5)
    rec.sock.sendall(blob)
    # whole buffers are flushed without a separator; the rest waits for one
    data, msgs = c.read_bytes(16384, timeout=5)
    assert all(len(p) <= 4096 + 16 for _, p in msgs), [len(p) for _, p in msgs]
    rec.sock.sendall(b"tail\n")
    more, msgs2 = c.read_bytes(len(blob) + 5 - len(data), timeout=5)
    assert data + more == blob + b"tail\n"
    assert msgs2[-1][1].endswith(b"tail\n")


def test_peer_host_name_resolved(websocksy, peers):
    """host = localhost goes through the (asynchronous) resolver; listen on
    the same port on 127.0.0.1 and ::1 so either answer works."""
    import socket as so
    from conftest import StreamServer, echo_handler
    for _ in range(20):
        p4 = peers.tcp_echo()
        try:
            p6 = StreamServer(echo_handler, so.AF_INET6, ("::1", p4.port))
            break
        except OSError:
            continue
    else:
        pytest.skip("no port free on both 127.0.0.1 and ::1")
    try:
        srv = websocksy("-c", "host=localhost", "-c", "port=%d" % p4.port)
        assert run_async(echo_roundtrips(srv.url, ["resolved"], True)) == ["resolved"]
    finally:
        p6.close()


def test_many_small_continuation_frames(websocksy, peers):
    peer = peers.tcp_echo()
    srv = websocksy(*tcp_peer_args(peer, "-c", "framing=binary"))
    c = srv.ws()
    payload = os.urandom(300 * 100)
    frames = [build_frame(OP_BIN if i == 0 else OP_CONT, payload[i * 100:(i + 1) * 100],
                          fin=(i == 299)) for i in range(300)]
    c.send(b"".join(frames))
    data, _ = c.read_bytes(len(payload), timeout=10)
    assert data == payload


def test_text_frame_split_across_tcp_segments(websocksy, peers):
    """UTF-8 validation of one frame that arrives a byte at a time."""
    peer = peers.tcp_sink()
    srv = websocksy(*tcp_peer_args(peer))
    c = srv.ws()
    c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    text = "ä€\U0001F600z".encode()
    frame = build_frame(OP_TEXT, text)
    for i in range(len(frame)):
        c.send(frame[i:i + 1])
        time.sleep(0.003)
    rec = peer.wait_conn()
    assert wait_for(lambda: bytes(rec.data) == text, 5), rec.data
    c.ping(b"ok?")
    f = c.read_frame()
    assert (f.opcode, f.payload) == (OP_PONG, b"ok?")


def test_ping_between_halves_of_a_code_point(websocksy, peers):
    peer = peers.tcp_sink()
    srv = websocksy(*tcp_peer_args(peer))
    c = srv.ws()
    c.send(build_frame(OP_TEXT, b"x\xf0\x9f", fin=False) + build_frame(OP_PING, b"mid")
           + build_frame(OP_CONT, b"\x98\x80y"))
    f = c.read_frame()
    assert (f.opcode, f.payload) == (OP_PONG, b"mid")
    rec = peer.wait_conn()
    assert wait_for(lambda: bytes(rec.data) == "x\U0001F600y".encode(), 5), rec.data
