"""Close handshake and protocol errors: the close code the client receives,
client close -> peer shutdown, linger, peer EOF, SIGTERM."""
import asyncio
import os
import signal
import socket
import time

import pytest
import websockets

from conftest import run_async, tcp_peer_args, wait_for
from rawws import (OP_BIN, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, ConnectionClosed,
                   build_frame, close_payload)


def expect_close(c, code, timeout=5):
    """The server sends a close frame with `code`, then closes TCP."""
    f = c.read_close(timeout=timeout)
    assert f.opcode == OP_CLOSE and f.fin and not f.masked, f
    assert f.close_code == code, "expected close %d, got %r" % (code, f)
    # the reason, if any, is valid UTF-8
    f.close_reason.decode("utf-8")
    c.send_quiet(build_frame(OP_CLOSE, close_payload(code)))
    assert c.wait_eof(5), "TCP not closed after close %d" % code
    return f


@pytest.fixture
def conn(websocksy, peers):
    """An established raw connection to a TCP sink peer."""
    peer = peers.tcp_sink()
    srv = websocksy(*tcp_peer_args(peer))
    c = srv.ws()
    c.peer = peer
    c.server = srv
    return c


# ------------------------------------------------------------- 1002 errors
def test_unmasked_frame_1002(conn):
    conn.send(build_frame(OP_TEXT, b"no mask", mask=False))
    expect_close(conn, 1002)


@pytest.mark.parametrize("rsv", [4, 2, 1, 7])
def test_rsv_bits_1002(conn, rsv):
    conn.send(build_frame(OP_TEXT, b"rsv", rsv=rsv))
    expect_close(conn, 1002)


def test_rsv_bit_on_control_frame_1002(conn):
    conn.send(build_frame(OP_PING, b"p", rsv=4))
    expect_close(conn, 1002)


@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])
def test_reserved_opcode_1002(conn, opcode):
    conn.send(build_frame(opcode, b"reserved"))
    expect_close(conn, 1002)


@pytest.mark.parametrize("opcode", [OP_PING, OP_PONG, OP_CLOSE])
def test_control_frame_too_long_1002(conn, opcode):
    payload = b"\x03\xe8" + b"a" * 124 if opcode == OP_CLOSE else b"a" * 126
    conn.send(build_frame(opcode, payload))
    expect_close(conn, 1002)


@pytest.mark.parametrize("opcode", [OP_PING, OP_PONG, OP_CLOSE])
def test_fragmented_control_frame_1002(conn, opcode):
    payload = close_payload(1000) if opcode == OP_CLOSE else b"frag"
    conn.send(build_frame(opcode, payload, fin=False))
    expect_close(conn, 1002)


def test_continuation_without_start_1002(conn):
    conn.send(build_frame(OP_CONT, b"orphan"))
    expect_close(conn, 1002)


def test_continuation_after_finished_message_1002(conn):
    conn.send(build_frame(OP_TEXT, b"done") + build_frame(OP_CONT, b"late"))
    expect_close(conn, 1002)


@pytest.mark.parametrize("second", [OP_TEXT, OP_BIN])
def test_new_message_inside_fragmented_1002(conn, second):
    conn.send(build_frame(OP_TEXT, b"start", fin=False) + build_frame(second, b"again"))
    expect_close(conn, 1002)


def test_data_before_error_reaches_peer(conn):
    conn.send(build_frame(OP_BIN, b"good data") + build_frame(OP_BIN, b"bad", mask=False))
    expect_close(conn, 1002)
    rec = conn.peer.wait_conn()
    assert wait_for(lambda: bytes(rec.data) == b"good data", 5), rec.data


# ------------------------------------------------------------- 1007 errors
@pytest.mark.parametrize("payload", [
    b"\xff",                       # never valid
    b"ok\xc0\xaf",                 # overlong '/'
    b"\xed\xa0\x80",               # UTF-16 surrogate
    b"\xf4\x90\x80\x80",           # > U+10FFFF
    b"abc\xe2\x82",                # truncated at end of a final frame
    b"\x80",                       # lone continuation byte
])
def test_invalid_utf8_text_1007(conn, payload):
    conn.send(build_frame(OP_TEXT, payload))
    expect_close(conn, 1007)


def test_invalid_utf8_across_fragments_1007(conn):
    # F0 9F then an ASCII byte: the sequence breaks in the second fragment
    conn.send(build_frame(OP_TEXT, b"ab\xf0\x9f", fin=False))
    time.sleep(0.05)
    conn.send(build_frame(OP_CONT, b"A", fin=True))
    expect_close(conn, 1007)


def test_incomplete_utf8_at_end_of_fragmented_message_1007(conn):
    conn.send(build_frame(OP_TEXT, b"ab", fin=False) + build_frame(OP_CONT, b"\xf0\x9f\x98"))
    expect_close(conn, 1007)


def test_invalid_utf8_fragment_detected_before_fin_1007(conn):
    # "fail fast": an invalid byte in a non-final fragment
    conn.send(build_frame(OP_TEXT, b"ab\xff", fin=False))
    expect_close(conn, 1007)


def test_binary_is_not_utf8_checked(conn):
    conn.send(build_frame(OP_BIN, b"\xff\xfe"))
    rec = conn.peer.wait_conn()
    assert wait_for(lambda: bytes(rec.data) == b"\xff\xfe", 5)
    conn.ping(b"still open")
    f = conn.read_frame()
    assert (f.opcode, f.payload) == (OP_PONG, b"still open")


# ----------------------------------------------------------- close payloads
def test_close_payload_one_byte_1002(conn):
    conn.send(build_frame(OP_CLOSE, b"\x03"))
    expect_close(conn, 1002)


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999,
                                  5000, 65535])
def test_invalid_close_code_1002(conn, code):
    conn.send(build_frame(OP_CLOSE, close_payload(code, b"x")))
    expect_close(conn, 1002)


def test_close_reason_bad_utf8_1007(conn):
    # RFC 6455 §8.1: bytes that must be UTF-8 and are not fail the
    # connection; 1007 is the code for inconsistent data (as Autobahn 7.5.1
    # accepts), the same as invalid UTF-8 in a text message.
    conn.send(build_frame(OP_CLOSE, close_payload(1000, b"bad \xff reason")))
    expect_close(conn, 1007)


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011,
                                  1012, 1014, 3000, 3999, 4000, 4999])
def test_valid_close_code_echoed(conn, code):
    conn.send(build_frame(OP_CLOSE, close_payload(code, "reason ü")))
    expect_close(conn, code)


def test_empty_close_answered_with_1000(conn):
    conn.send(build_frame(OP_CLOSE, b""))
    expect_close(conn, 1000)


# ----------------------------------------------------------------- datagrams
@pytest.mark.parametrize("kind", ["udp", "unix-dgram"])
def test_datagram_over_max_1009(websocksy, peers, kind):
    if kind == "udp":
        peer = peers.udp_echo()
        uri = "udp://127.0.0.1:%d" % peer.port
    else:
        peer = peers.unix_dgram_echo()
        uri = "unix-dgram://" + peer.addr
    srv = websocksy("-C", "max-datagram=1000", "-c", "host=" + uri, "-c", "framing=binary")
    c = srv.ws()
    exact = os.urandom(1000)
    c.send_binary(exact)
    assert c.read_message() == (OP_BIN, exact)
    c.send_binary(os.urandom(1001))
    expect_close(c, 1009)
    assert [d for _, d in peer.received] == [exact]


def test_fragmented_datagram_over_max_1009(websocksy, peers):
    peer = peers.udp_echo()
    srv = websocksy("-C", "max-datagram=1000", "-c", "host=udp://127.0.0.1:%d" % peer.port,
                    "-c", "framing=binary")
    c = srv.ws()
    c.send(build_frame(OP_BIN, b"a" * 600, fin=False))
    time.sleep(0.05)
    c.send(build_frame(OP_CONT, b"b" * 600, fin=True))
    expect_close(c, 1009)
    assert peer.received == []


# ------------------------------------------------------------- client close
def test_client_close_flushes_then_shuts_down_peer(websocksy, peers):
    peer = peers.tcp_sink()
    srv = websocksy(*tcp_peer_args(peer))
    c = srv.ws()
    chunks = [os.urandom(65536) for _ in range(16)]
    c.send(b"".join(build_frame(OP_BIN, ch) for ch in chunks)
           + build_frame(OP_CLOSE, close_payload(4000, "bye")))
    rec = peer.wait_conn()
    assert rec.eof.wait(10), "peer did not see EOF after the client's close"
    assert bytes(rec.data) == b"".join(chunks)
    f = c.read_close(timeout=10)
    assert f.close_code == 4000, f
    assert c.wait_eof(5)


def test_client_close_without_code_gets_1000_and_peer_eof(websocksy, peers):
    peer = peers.tcp_sink()
    srv = websocksy(*tcp_peer_args(peer))
    c = srv.ws()
    c.send(build_frame(OP_TEXT, b"last words") + build_frame(OP_CLOSE, b""))
    rec = peer.wait_conn()
    assert rec.eof.wait(5)
    assert bytes(rec.data) == b"last words"
    f = c.read_close()
    assert f.close_code == 1000
    assert c.wait_eof(5)


def test_linger_peer_reply_after_eof_reaches_client(websocksy, peers):
    def reply(rec):
        rec.sock.sendall(b"late reply to " + bytes(rec.data))

    peer = peers.tcp_sink(on_eof=reply)
    srv = websocksy(*tcp_peer_args(peer, "-c", "framing=binary"))
    c = srv.ws()
    c.send(build_frame(OP_BIN, b"request") + build_frame(OP_CLOSE, close_payload(1000)))
    msgs = []
    f = c.read_close(timeout=5, data=msgs)
    assert b"".join(p for _, p in msgs) == b"late reply to request"
    assert f.close_code == 1000
    assert c.wait_eof(5)


def test_linger_bounded_when_peer_never_closes(websocksy, peers):
    def reply(rec):
        rec.sock.sendall(b"late1 ")
        time.sleep(0.3)
        rec.sock.sendall(b"late2")

    peer = peers.tcp_sink(on_eof=reply, hold=True)
    srv = websocksy(*tcp_peer_args(peer, "-c", "framing=binary"))   # linger = 1 s
    c = srv.ws()
    t0 = time.monotonic()
    c.send(build_frame(OP_BIN, b"req") + build_frame(OP_CLOSE, close_payload(3001)))
    msgs = []
    f = c.read_close(timeout=6, data=msgs)
    dt = time.monotonic() - t0
    assert b"".join(p for _, p in msgs) == b"late1 late2"
    assert f.close_code == 3001
    assert 0.7 <= dt <= 3.5, "close reply after %.2fs with linger=1" % dt
    assert c.wait_eof(5)


def test_peer_eof_close_waits_for_client_reply_up_to_close_timeout(websocksy, peers):
    peer = peers.tcp_sender(b"bye")
    srv = websocksy("-C", "close-timeout=1", *tcp_peer_args(peer))
    c = srv.ws()
    msgs = []
    f = c.read_close(data=msgs)
    t0 = time.monotonic()
    assert b"".join(p for _, p in msgs) == b"bye"
    assert f.close_code == 1000
    # we never answer: the server gives up after close-timeout
    assert c.wait_eof(5)
    assert time.monotonic() - t0 <= 3.5


def test_peer_eof_with_websockets_client_close_1000(websocksy, peers):
    peer = peers.tcp_sender(b"x" * 100000)
    srv = websocksy(*tcp_peer_args(peer))

    async def main():
        n = 0
        async with websockets.connect(srv.url, open_timeout=5, close_timeout=5,
                                      ping_interval=None, compression=None,
                                      max_size=None) as ws:
            try:
                while True:
                    n += len(await asyncio.wait_for(ws.recv(), 5))
            except websockets.ConnectionClosedOK:
                pass
            return n, ws.close_code

    assert run_async(main(), 20) == (100000, 1000)


def test_peer_close_linger_waits_until_a_stalled_client_read_the_tail(websocksy, peers):
    """Tunnel clients (v2ray-plugin) throw away what they hold when our close
    comes.  A client that stops reading with the whole tail in its receive
    buffer (acknowledged, its window standing still) is not drained: the
    close must come only after it has read the last data (a ping follows
    the data, the close waits for its pong) and then peer-close-linger."""
    data = os.urandom(512 * 1024)
    peer = peers.tcp_sender(data)
    srv = websocksy("-C", "peer-close-linger=1", "-C", "close-timeout=30",
                    *tcp_peer_args(peer, "-c", "framing=binary"))
    c = srv.raw(rcvbuf=4 << 20)
    c.handshake()
    time.sleep(3)                       # stalled: reads nothing
    got = bytearray()
    t_last = time.monotonic()
    while True:
        try:
            _, p = c.read_message(timeout=30)
        except ConnectionClosed as e:
            f = e.frame
            break
        got += p
        t_last = time.monotonic()
    waited = time.monotonic() - t_last
    assert bytes(got) == data
    assert f.close_code == 1000
    # lower bound only: load makes it longer, never shorter
    assert waited >= 0.5, "close %.2f s after the last data was read" % waited


# ------------------------------------------------------------------- signals
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_sends_1001_and_exits_0(websocksy, peers, sig):
    peer = peers.tcp_echo()
    srv = websocksy(*tcp_peer_args(peer))
    c1 = srv.ws()
    c2 = srv.ws()
    c1.send_text("before")
    assert c1.read_message() == (OP_TEXT, b"before")
    t0 = time.monotonic()
    srv.signal(sig)
    for c in (c1, c2):
        f = c.read_close(timeout=5)
        assert f.close_code == 1001, f
        c.send_quiet(build_frame(OP_CLOSE, close_payload(1001)))
    rc = srv.wait_exit(5)
    assert rc == 0, "exit status %r after signal" % rc
    assert time.monotonic() - t0 < 5
    assert c1.wait_eof(2) and c2.wait_eof(2)


def test_sigterm_with_websockets_client(websocksy, peers):
    peer = peers.tcp_echo()
    srv = websocksy(*tcp_peer_args(peer))

    async def main():
        async with websockets.connect(srv.url, open_timeout=5, close_timeout=5,
                                      ping_interval=None, compression=None) as ws:
            await ws.send("hi")
            assert await asyncio.wait_for(ws.recv(), 5) == "hi"
            srv.signal(signal.SIGTERM)
            await asyncio.wait_for(ws.wait_closed(), 6)
            return ws.close_code

    assert run_async(main(), 20) == 1001
    assert srv.wait_exit(5) == 0


def test_sigterm_stops_accepting(websocksy, peers):
    peer = peers.tcp_echo()
    srv = websocksy(*tcp_peer_args(peer))
    c = srv.ws()
    srv.signal(signal.SIGTERM)
    f = c.read_close(timeout=5)
    assert f.close_code == 1001
    # a new handshake is no longer served (refused, closed, or not answered)
    try:
        n = srv.raw(timeout=1.0)
        n.send_quiet(n.request_bytes())
        try:
            r = n.read_response(timeout=1.0)
            assert r.status != 101, r
        except (ConnectionClosed, OSError, AssertionError) as e:
            if isinstance(e, AssertionError) and "101" in str(e):
                raise
    except OSError:
        pass
    c.send_quiet(build_frame(OP_CLOSE, close_payload(1001)))
    assert srv.wait_exit(5) == 0


# ------------------------------------------------------- abrupt endings
def test_peer_closes_right_away(websocksy, peers):
    peer = peers.tcp_sender(b"")
    srv = websocksy(*tcp_peer_args(peer))
    c = srv.raw()
    c.send(c.request_bytes())
    r = c.read_response()
    assert r.status in (101, 502), r
    if r.status == 101:
        f = c.read_close()
        assert f.close_code == 1000, f
        c.send_quiet(build_frame(OP_CLOSE, close_payload(1000)))
    assert c.wait_eof(5)


def test_client_tcp_close_without_close_frame(websocksy, peers):
    peer = peers.tcp_sink()
    srv = websocksy(*tcp_peer_args(peer))
    c = srv.ws()
    c.send(build_frame(OP_BIN, b"x" * 100000))
    c.close()
    rec = peer.wait_conn()
    assert rec.eof.wait(5) or rec.done.wait(1), "peer connection not ended"
    assert bytes(rec.data) == b"x" * 100000


def test_close_with_max_length_reason(websocksy, peers):
    peer = peers.tcp_sink()
    srv = websocksy(*tcp_peer_args(peer))
    c = srv.ws()
    c.send(build_frame(OP_CLOSE, close_payload(4321, "r" * 123)))
    f = c.read_close()
    assert f.close_code == 4321
    assert c.wait_eof(5)


def test_data_after_close_is_ignored(websocksy, peers):
    peer = peers.tcp_sink()
    srv = websocksy(*tcp_peer_args(peer))
    c = srv.ws()
    c.send(build_frame(OP_BIN, b"before") + build_frame(OP_CLOSE, close_payload(1000))
           + build_frame(OP_BIN, b"after"))
    f = c.read_close()
    assert f.close_code == 1000
    rec = peer.wait_conn()
    assert rec.eof.wait(5)
    assert bytes(rec.data) == b"before"


def test_sigterm_exits_within_close_timeout_when_client_silent(websocksy, peers):
    peer = peers.tcp_echo()
    srv = websocksy("-C", "close-timeout=1", *tcp_peer_args(peer))
    c = srv.ws()
    t0 = time.monotonic()
    srv.signal(signal.SIGTERM)
    f = c.read_close(timeout=5)
    assert f.close_code == 1001
    # never answer the close: the server still exits 0 after close-timeout
    rc = srv.wait_exit(5)
    assert rc == 0, rc
    assert time.monotonic() - t0 <= 3.5


def test_peer_eof_flushes_incomplete_utf8_tail(websocksy, peers):
    peer = peers.tcp_sender(b"ab\xe2")
    srv = websocksy(*tcp_peer_args(peer))          # auto framing holds the tail
    c = srv.ws()
    msgs = []
    f = c.read_close(data=msgs)
    assert b"".join(p for _, p in msgs) == b"ab\xe2"
    for op, p in msgs:
        if op == OP_TEXT:
            p.decode("utf-8")
    assert f.close_code == 1000


def test_peer_eof_flushes_unterminated_separator_tail(websocksy, peers):
    peer = peers.tcp_sender(b"one\ntwo")
    srv = websocksy(*tcp_peer_args(peer, "-c", "framing=separator", "-c", "framing-config=\\n"))
    c = srv.ws()
    msgs = []
    f = c.read_close(data=msgs)
    assert [p for _, p in msgs] == [b"one\n", b"two"], msgs
    assert f.close_code == 1000


def test_client_close_with_slow_peer_loses_nothing(websocksy, peers):
    """5 MB then a close while the peer reads slowly: the close waits for the
    data; the peer gets every byte, then EOF."""
    def slow_sink(rec, srv):
        rec.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        while not srv.stopping.is_set():
            try:
                d = rec.sock.recv(16384)
            except socket.timeout:
                continue
            if not d:
                rec.eof.set()
                return
            rec.add(d)
            time.sleep(0.001)

    peer = peers.tcp(slow_sink)
    srv = websocksy(*tcp_peer_args(peer))
    c = srv.ws()
    data = os.urandom(5 * 1024 * 1024)
    c.sock.settimeout(20)
    c.send(b"".join(build_frame(OP_BIN, data[i:i + 100000])
                    for i in range(0, len(data), 100000))
           + build_frame(OP_CLOSE, close_payload(1000)))
    rec = peer.wait_conn()
    assert rec.eof.wait(20), "peer got no EOF (%d bytes so far)" % rec.nbytes
    assert rec.nbytes == len(data)
    assert bytes(rec.data) == data
    f = c.read_close(timeout=10)
    assert f.close_code == 1000


def test_peer_eof_with_slow_client_loses_nothing(websocksy, peers):
    data = os.urandom(5 * 1024 * 1024)
    peer = peers.tcp_sender(data)
    srv = websocksy(*tcp_peer_args(peer, "-c", "framing=binary"))
    c = srv.raw(rcvbuf=32768)
    c.handshake()
    got = bytearray()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            op, p = c.read_message(timeout=10)
        except ConnectionClosed as e:
            assert e.frame.close_code == 1000, e.frame
            break
        got += p
        time.sleep(0.001)
    assert len(got) == len(data)
    assert bytes(got) == data
