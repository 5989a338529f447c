"""Limits: request line / header sizes, max-connections, backpressure memory,
many concurrent connections."""
import asyncio
import os
import socket
import threading
import time

import websockets

from conftest import run_async, tcp_peer_args, vmrss_kb, wait_for
from rawws import OP_BIN, OP_TEXT, build_frame
from test_handshake import check_error_response


def send_and_read_status(c, raw):
    """Send a (possibly huge) request; the server may answer and close before
    it has read everything, so send errors are ignored."""
    c.send_quiet(raw)
    return c.read_response()


def test_request_line_too_long_414(websocksy, peers):
    peer = peers.tcp_echo()
    srv = websocksy(*tcp_peer_args(peer))             # max-request-line = 8192
    c = srv.raw()
    r = send_and_read_status(c, c.request_bytes(path="/" + "a" * 9000))
    check_error_response(r, c, 414)


def test_request_line_limit_configurable(websocksy, peers):
    peer = peers.tcp_echo()
    srv = websocksy("-C", "max-request-line=100", *tcp_peer_args(peer))
    c = srv.raw()
    r = send_and_read_status(c, c.request_bytes(path="/" + "b" * 200))
    check_error_response(r, c, 414)
    ok = srv.raw()
    ok.handshake(path="/" + "b" * 50)


def test_request_line_without_end_414(websocksy, peers):
    """No CRLF at all yet but already longer than the limit."""
    peer = peers.tcp_echo()
    srv = websocksy("-C", "max-request-line=100", *tcp_peer_args(peer))
    c = srv.raw()
    r = send_and_read_status(c, b"GET /" + b"c" * 300)
    check_error_response(r, c, 414)


def test_headers_too_large_431(websocksy, peers):
    peer = peers.tcp_echo()
    srv = websocksy(*tcp_peer_args(peer))             # max-header-bytes = 16384
    c = srv.raw()
    hdrs = [("X-Filler-%d" % i, "v" * 1000) for i in range(20)]
    r = send_and_read_status(c, c.request_bytes(headers=hdrs))
    check_error_response(r, c, 431)


def test_single_huge_header_431(websocksy, peers):
    peer = peers.tcp_echo()
    srv = websocksy("-C", "max-header-bytes=2048", *tcp_peer_args(peer))
    c = srv.raw()
    r = send_and_read_status(c, c.request_bytes(headers=[("Cookie", "k=" + "z" * 4000)]))
    check_error_response(r, c, 431)


def test_too_many_headers_431(websocksy, peers):
    peer = peers.tcp_echo()
    srv = websocksy(*tcp_peer_args(peer))             # max-headers = 100
    c = srv.raw()
    hdrs = [("X-H%d" % i, "1") for i in range(101)]
    r = send_and_read_status(c, c.request_bytes(headers=hdrs))
    check_error_response(r, c, 431)
    # just below the limit is fine (95 extra + 5 standard headers = 100)
    ok = srv.raw()
    ok.handshake(headers=[("X-H%d" % i, "1") for i in range(95)])


def test_max_connections_503(websocksy, peers):
    peer = peers.tcp_echo()
    srv = websocksy("-C", "max-connections=2", *tcp_peer_args(peer))
    a = srv.ws()
    b = srv.ws()
    c = srv.raw()
    r = send_and_read_status(c, c.request_bytes())
    check_error_response(r, c, 503)
    # the two established ones still work
    for x in (a, b):
        x.send_text("still here")
        assert x.read_message() == (OP_TEXT, b"still here")
    # a slot frees up once one closes
    a.close()

    def try_again():
        n = srv.raw()
        n.send(n.request_bytes())
        r = n.read_response()
        n.close()
        return r.status == 101
    assert wait_for(try_again, 5, 0.1), "slot not freed after a client left"


# ------------------------------------------------------------- backpressure
def test_client_not_reading_does_not_grow_server(websocksy, peers):
    total = 50 * 1024 * 1024
    progress = {"sent": 0, "last": time.monotonic(), "done": False}
    stop = threading.Event()
    go = threading.Event()

    def flood(rec, srv):
        s = rec.sock
        s.settimeout(0.2)
        go.wait(10)
        progress["last"] = time.monotonic()
        chunk = os.urandom(65536)
        while progress["sent"] < total and not stop.is_set() and not srv.stopping.is_set():
            try:
                n = s.send(chunk)
            except socket.timeout:
                continue
            except OSError:
                break
            progress["sent"] += n
            progress["last"] = time.monotonic()
        progress["done"] = True

    peer = peers.tcp(flood)
    srv = websocksy(*tcp_peer_args(peer, "-c", "framing=binary"))
    c = srv.raw(rcvbuf=16384)
    c.handshake()
    peer.wait_conn()
    time.sleep(0.2)
    base = vmrss_kb(srv.pid)
    go.set()
    time.sleep(0.3)
    # wait until the flood stalls (no progress for 1 s), at most 20 s
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if progress["done"] or time.monotonic() - progress["last"] > 1.0:
            break
        time.sleep(0.1)
    peak = vmrss_kb(srv.pid)
    sent = progress["sent"]
    stop.set()
    growth_mb = (peak - base) / 1024.0
    print("client-not-reading: peer sent %.1f MB, server RSS %d -> %d kB"
          % (sent / 1048576.0, base, peak))
    assert sent < total, "peer could send all 50 MB to a client that does not read"
    assert growth_mb < 40, "server RSS grew by %.1f MB (peer sent %.1f MB)" % (
        growth_mb, sent / 1048576.0)
    # the data that did flow is intact and in order: read some of it back
    c.sock.settimeout(5)
    got, _ = c.read_bytes(min(sent, 1024 * 1024), timeout=10)
    assert len(got) >= min(sent, 1024 * 1024)


def test_peer_not_reading_does_not_grow_server(websocksy, peers):
    """The other direction: the peer stops reading, the client floods."""
    peer = peers.tcp_manual()          # never reads
    srv = websocksy(*tcp_peer_args(peer, "-c", "framing=binary"))
    c = srv.ws()
    rec = peer.wait_conn()
    rec.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    time.sleep(0.2)
    base = vmrss_kb(srv.pid)
    frame = build_frame(OP_BIN, os.urandom(65536), mask_key=b"\0\0\0\0")
    c.sock.settimeout(0.2)
    sent = 0
    last = time.monotonic()
    deadline = time.monotonic() + 20
    while sent < 50 * 1024 * 1024 and time.monotonic() < deadline:
        if time.monotonic() - last > 1.0:
            break
        try:
            n = c.sock.send(frame)
        except socket.timeout:
            continue
        if n < len(frame):
            # finish this frame so the stream stays well-formed
            rest = frame[n:]
            while rest and time.monotonic() < deadline:
                try:
                    k = c.sock.send(rest)
                    rest = rest[k:]
                    sent += k
                except socket.timeout:
                    pass
            n = 0
        sent += n
        last = time.monotonic()
    peak = vmrss_kb(srv.pid)
    growth_mb = (peak - base) / 1024.0
    print("peer-not-reading: client sent %.1f MB, server RSS %d -> %d kB"
          % (sent / 1048576.0, base, peak))
    c.sock.settimeout(5)
    # end it from the peer side (the vanished-client case has its own test)
    rec.release.set()
    assert sent < 50 * 1024 * 1024, "client could push 50 MB to a peer that does not read"
    assert growth_mb < 40, "server RSS grew by %.1f MB" % growth_mb


def flood_client_to_stalled_peer(srv, peer, seconds=10):
    """Client floods a peer that never reads until the server stops reading."""
    c = srv.ws()
    rec = peer.wait_conn()
    frame = build_frame(OP_BIN, os.urandom(65536), mask_key=b"\0\0\0\0")
    c.sock.settimeout(0.5)
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            c.sock.sendall(frame)
    except socket.timeout:
        pass
    return c, rec


def test_client_reset_while_backpressured_is_reaped(websocksy, peers):
    """A client that vanishes while the server has stopped reading it (its
    peer never reads) must still be released: its FIN is stuck behind our
    zero window, so nothing arrives; send-timeout bounds the stall (nginx's
    send_timeout): with send-timeout=2 the descriptors go within seconds."""
    peer = peers.tcp_manual()
    srv = websocksy("-C", "close-timeout=2", "-C", "send-timeout=2",
                    *tcp_peer_args(peer, "-c", "framing=binary"))
    time.sleep(0.2)
    base = len(os.listdir("/proc/%d/fd" % srv.pid))
    c, rec = flood_client_to_stalled_peer(srv, peer)
    assert len(os.listdir("/proc/%d/fd" % srv.pid)) >= base + 2
    c.close()                       # unread data in its buffer: RST
    ok = wait_for(lambda: len(os.listdir("/proc/%d/fd" % srv.pid)) <= base, 6, 0.1)
    rec.release.set()
    assert ok, "connection of a vanished client still held 6 s later (send-timeout=2)"


# ---------------------------------------------------------------- concurrency
def test_500_concurrent_echo_connections(websocksy, peers):
    peer = peers.tcp_echo()
    srv = websocksy(*tcp_peer_args(peer))
    N = 500

    async def main():
        sem = asyncio.Semaphore(100)          # bound simultaneous handshakes
        conns = [None] * N

        async def open_one(i):
            async with sem:
                conns[i] = await websockets.connect(
                    srv.url, open_timeout=20, close_timeout=10, ping_interval=None,
                    compression=None)

        await asyncio.gather(*(open_one(i) for i in range(N)))
        try:
            async def echo(i):
                msg = "conn %d says hello" % i
                await conns[i].send(msg)
                got = await asyncio.wait_for(conns[i].recv(), 20)
                return got == msg

            results = await asyncio.gather(*(echo(i) for i in range(N)))
        finally:
            await asyncio.gather(*(c.close() for c in conns if c is not None),
                                 return_exceptions=True)
        return sum(results)

    ok = run_async(main(), 90)
    assert ok == N
    assert wait_for(lambda: len(peer.conns) == N, 5)


def _sends_until_reset(c, seconds):
    """Keep sending junk after the server's response and EOF; the time
    until the server's close shows as a reset, or None if none came."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        try:
            c.sock.sendall(b"junk after the response\r\n")
        except OSError:
            return time.monotonic() - t0
        time.sleep(0.05)
    return None


def test_response_linger_configurable(websocksy, peers):
    """After an error response the server reads and discards what the
    client still sends for response-linger, then closes."""
    peer = peers.tcp_echo()
    srv = websocksy("-C", "response-linger=0.3", *tcp_peer_args(peer))
    c = srv.raw()
    c.send(c.request_bytes(ws_version="99"))
    r = c.read_response()
    check_error_response(r, c, 426)
    t = _sends_until_reset(c, 5)
    assert t is not None, "still open 5 s after a 0.3 s response-linger"

    # A long linger keeps taking the client's bytes (no reset) meanwhile.
    srv2 = websocksy("-C", "response-linger=30", *tcp_peer_args(peer))
    c2 = srv2.raw()
    c2.send(c2.request_bytes(ws_version="99"))
    check_error_response(c2.read_response(), c2, 426)
    assert _sends_until_reset(c2, 1.5) is None
