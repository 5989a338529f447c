"""HTTP upgrade handshake: 101, error statuses, subprotocols, Origin,
pipelining, slow and byte-by-byte clients, unreachable peers."""
import socket
import time

import pytest

from conftest import closed_port, tcp_peer_args
from rawws import OP_TEXT, accept_key, build_frame


def check_error_response(r, c, status):
    """An HTTP error: real HTTP/1.1 response, text/plain, Content-Length,
    Connection: close, then the connection is closed."""
    assert r.status == status, r
    assert r.version == "HTTP/1.1", r
    assert r.get("Content-Type", "").lower().startswith("text/plain"), r
    cl = r.get("Content-Length")
    assert cl is not None and int(cl) == len(r.body), r
    assert "close" in r.get("Connection", "").lower(), r
    assert r.get("Sec-WebSocket-Accept") is None, r
    assert c.wait_eof(5), "connection not closed after %d" % status


def error_for(server, raw):
    c = server.raw()
    c.send(raw)
    return c.read_response(), c


def test_upgrade_101_headers(websocksy, peers):
    peer = peers.tcp_echo()
    srv = websocksy(*tcp_peer_args(peer))
    c = srv.raw()
    key = "AQIDBAUGBwgJCgsMDQ4PEA=="
    r = c.handshake(key=key)
    assert r.status == 101
    assert r.version == "HTTP/1.1"
    assert r.get("Upgrade", "").lower() == "websocket"
    assert "upgrade" in r.get("Connection", "").lower()
    assert r.get("Sec-WebSocket-Accept") == accept_key(key)
    assert r.get("Sec-WebSocket-Protocol") is None
    c.send_text("hi")
    assert c.read_message() == (OP_TEXT, b"hi")


def test_header_names_and_tokens_case_insensitive(websocksy, peers):
    peer = peers.tcp_echo()
    srv = websocksy(*tcp_peer_args(peer))
    c = srv.raw()
    c.send(("GET /x?y=1 HTTP/1.1\r\nhost: 127.0.0.1\r\nupgrade: WebSocket\r\n"
            "connection: keep-alive, Upgrade\r\nsec-websocket-key: %s\r\n"
            "sec-websocket-version: 13\r\nUser-Agent: test\r\n\r\n"
            % "dGhlIHNhbXBsZSBub25jZQ==").encode())
    r = c.read_response()
    assert r.status == 101, r
    assert r.get("Sec-WebSocket-Accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    c.send_text("ok")
    assert c.read_message() == (OP_TEXT, b"ok")


def test_version_8_gets_426(websocksy, peers):
    peer = peers.tcp_echo()
    srv = websocksy(*tcp_peer_args(peer))
    r, c = error_for(srv, srv.raw().request_bytes(ws_version="8"))
    check_error_response(r, c, 426)
    assert r.get("Sec-WebSocket-Version") == "13", r
    assert peer.conns == [], "peer connected for a refused handshake"


@pytest.mark.parametrize("kind", ["short_key", "not_base64", "missing_key", "missing_host",
                                  "bad_upgrade", "bad_connection", "garbage_line"])
def test_bad_request_400(websocksy, peers, kind):
    peer = peers.tcp_echo()
    srv = websocksy(*tcp_peer_args(peer))
    c = srv.raw()
    if kind == "short_key":
        raw = c.request_bytes(key="AAAAAAAAAAAAAAAAAAAA")          # 15 bytes decoded
    elif kind == "not_base64":
        raw = c.request_bytes(key="this is not a key!!!!!!!")
    elif kind == "missing_key":
        raw = c.request_bytes(omit=("sec-websocket-key",))
    elif kind == "missing_host":
        raw = c.request_bytes(omit=("host",))
    elif kind == "bad_upgrade":
        raw = c.request_bytes(omit=("upgrade",), headers=[("Upgrade", "h2c-bogus")])
    elif kind == "bad_connection":
        raw = c.request_bytes(omit=("connection",), headers=[("Connection", "keep-alive")])
    else:
        raw = b"this is not http\r\n\r\n"
    c.send(raw)
    r = c.read_response()
    check_error_response(r, c, 400)
    assert peer.conns == []


def test_post_gets_405(websocksy, peers):
    peer = peers.tcp_echo()
    srv = websocksy(*tcp_peer_args(peer))
    r, c = error_for(srv, srv.raw().request_bytes(method="POST"))
    check_error_response(r, c, 405)
    assert "GET" in r.get("Allow", ""), r


def test_http2_gets_505(websocksy, peers):
    peer = peers.tcp_echo()
    srv = websocksy(*tcp_peer_args(peer))
    r, c = error_for(srv, srv.raw().request_bytes(version="HTTP/2.0"))
    check_error_response(r, c, 505)


def test_plain_get_without_web_root_gets_426(websocksy, peers):
    peer = peers.tcp_echo()
    srv = websocksy(*tcp_peer_args(peer))
    r, c = error_for(srv, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    check_error_response(r, c, 426)


def test_peer_unreachable_502(websocksy):
    srv = websocksy("-c", "host=127.0.0.1", "-c", "port=%d" % closed_port())
    c = srv.raw()
    c.send(c.request_bytes())
    r = c.read_response()
    check_error_response(r, c, 502)
    assert b"101" not in r.raw_head.split(b"\r\n")[0]


def test_peer_unreachable_unix_502(websocksy, peers):
    path = peers.sockdir() + "/nobody.sock"
    srv = websocksy("-c", "host=unix://" + path)
    r, c = error_for(srv, srv.raw().request_bytes())
    check_error_response(r, c, 502)


def test_pipelined_first_frame(websocksy, peers):
    peer = peers.tcp_echo()
    srv = websocksy(*tcp_peer_args(peer))
    c = srv.raw()
    c.send(c.request_bytes() + build_frame(OP_TEXT, b"first") + build_frame(OP_TEXT, b"second"))
    r = c.read_response()
    assert r.status == 101, r
    data, _ = c.read_bytes(len("firstsecond"))
    assert data == b"firstsecond"


def test_one_byte_per_segment(websocksy, peers):
    peer = peers.tcp_echo()
    srv = websocksy(*tcp_peer_args(peer))
    c = srv.raw(nodelay=True)
    raw = c.request_bytes() + build_frame(OP_TEXT, b"slowly")
    for i in range(len(raw)):
        c.send(raw[i:i + 1])
        time.sleep(0.002)
    r = c.read_response()
    assert r.status == 101, r
    data, _ = c.read_bytes(6)
    assert data == b"slowly"


def test_slow_handshake_times_out(websocksy, peers):
    peer = peers.tcp_echo()
    srv = websocksy("-C", "handshake-timeout=1", *tcp_peer_args(peer))
    c = srv.raw()
    t0 = time.monotonic()
    raw = c.request_bytes()
    c.send(raw[:len(raw) // 2])
    got = c.read_all_until_eof(timeout=4.0)
    dt = time.monotonic() - t0
    assert 0.5 <= dt <= 3.0, "closed after %.2fs" % dt
    if got:
        assert got.startswith(b"HTTP/1.1 408"), got
    assert peer.conns == []


def test_subprotocol_selected_only_if_offered(websocksy, peers):
    peer = peers.tcp_echo()
    srv = websocksy(*tcp_peer_args(peer, "-c", "protocol=chat"))
    c = srv.raw()
    r = c.handshake(headers=[("Sec-WebSocket-Protocol", "superchat, chat")])
    assert r.get("Sec-WebSocket-Protocol") == "chat", r
    c2 = srv.raw()
    r2 = c2.handshake(headers=[("Sec-WebSocket-Protocol", "superchat")])
    assert r2.get("Sec-WebSocket-Protocol") is None, r2
    c3 = srv.raw()
    r3 = c3.handshake()
    assert r3.get("Sec-WebSocket-Protocol") is None, r3
    c3.send_text("x")
    assert c3.read_message() == (OP_TEXT, b"x")


def test_subprotocol_star_picks_first(websocksy, peers):
    peer = peers.tcp_echo()
    srv = websocksy(*tcp_peer_args(peer, "-c", "protocol=*"))
    c = srv.raw()
    r = c.handshake(headers=[("Sec-WebSocket-Protocol", "binary, base64"),
                             ("Sec-WebSocket-Protocol", "other")])
    assert r.get("Sec-WebSocket-Protocol") == "binary", r
    c2 = srv.raw()
    r2 = c2.handshake()
    assert r2.get("Sec-WebSocket-Protocol") is None, r2


def test_no_protocol_configured_selects_none(websocksy, peers):
    peer = peers.tcp_echo()
    srv = websocksy(*tcp_peer_args(peer))
    c = srv.raw()
    r = c.handshake(headers=[("Sec-WebSocket-Protocol", "chat")])
    assert r.get("Sec-WebSocket-Protocol") is None, r


def test_origin_allow_list(websocksy, peers):
    peer = peers.tcp_echo()
    srv = websocksy("-C", "origin=http://a.example, https://b.example", *tcp_peer_args(peer))
    r, c = error_for(srv, srv.raw().request_bytes(headers=[("Origin", "http://evil.example")]))
    check_error_response(r, c, 403)
    assert peer.conns == []
    for origin in ("http://a.example", "https://b.example"):
        c = srv.raw()
        c.handshake(headers=[("Origin", origin)])
        c.send_text(origin)
        assert c.read_message() == (OP_TEXT, origin.encode())


def test_origin_allow_list_space_separated(websocksy, peers):
    peer = peers.tcp_echo()
    srv = websocksy("-C", "origin=http://a.example https://b.example", *tcp_peer_args(peer))
    r, c = error_for(srv, srv.raw().request_bytes(headers=[("Origin", "https://a.example")]))
    check_error_response(r, c, 403)
    srv.raw().handshake(headers=[("Origin", "https://b.example")])


def test_handshake_with_websockets_client(websocksy, peers):
    import websockets
    from conftest import run_async
    peer = peers.tcp_echo()
    srv = websocksy(*tcp_peer_args(peer))

    async def main():
        async with websockets.connect(srv.url, open_timeout=5, close_timeout=5,
                                      ping_interval=None, compression=None,
                                      subprotocols=None) as ws:
            await ws.send("hello")
            return await asyncio_wait(ws.recv())

    assert run_async(main(), 15) == "hello"


async def asyncio_wait(aw, t=5):
    import asyncio
    return await asyncio.wait_for(aw, t)


def test_peer_connect_timeout_502(websocksy):
    """A peer whose accept queue is full never completes the TCP handshake."""
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(0)
    filler = socket.create_connection(lst.getsockname(), timeout=2)
    try:
        srv = websocksy("-C", "connect-timeout=1", "-c", "host=127.0.0.1",
                        "-c", "port=%d" % lst.getsockname()[1])
        c = srv.raw()
        t0 = time.monotonic()
        c.send(c.request_bytes())
        r = c.read_response(timeout=6)
        dt = time.monotonic() - t0
        check_error_response(r, c, 502)
        assert 0.7 <= dt <= 4, "502 after %.2fs with connect-timeout=1" % dt
    finally:
        filler.close()
        lst.close()


def test_request_with_pipelined_frames_and_close(websocksy, peers):
    peer = peers.tcp_sink()
    srv = websocksy(*tcp_peer_args(peer))
    c = srv.raw()
    c.send(c.request_bytes() + build_frame(OP_TEXT, b"all ") + build_frame(OP_TEXT, b"at once")
           + build_frame(8, b"\x03\xe8"))
    assert c.read_response().status == 101
    f = c.read_close()
    assert f.close_code == 1000
    rec = peer.wait_conn()
    assert rec.eof.wait(5)
    assert bytes(rec.data) == b"all at once"


def test_handshake_timeout_decimal(websocksy, peers):
    peer = peers.tcp_echo()
    srv = websocksy("-C", "handshake-timeout=0.5", *tcp_peer_args(peer))
    c = srv.raw()
    t0 = time.monotonic()
    c.send(b"GET / HTTP/1.1\r\n")
    got = c.read_all_until_eof(timeout=3.0)
    dt = time.monotonic() - t0
    assert 0.2 <= dt <= 2.0, "closed after %.2fs with handshake-timeout=0.5" % dt
    if got:
        assert got.startswith(b"HTTP/1.1 408"), got


def test_unresolvable_peer_host(websocksy):
    srv = websocksy("-C", "handshake-timeout=3", "-c", "host=no-such-host.invalid",
                    "-c", "port=80")
    c = srv.raw()
    c.send(c.request_bytes())
    r = c.read_response(timeout=6)
    assert r.status in (502, 408), r
    check_error_response(r, c, r.status)


def test_origin_not_checked_without_allow_list(websocksy, peers):
    peer = peers.tcp_echo()
    srv = websocksy(*tcp_peer_args(peer))
    c = srv.raw()
    c.handshake(headers=[("Origin", "http://anything.example")])


def test_header_line_without_colon_400(websocksy, peers):
    peer = peers.tcp_echo()
    srv = websocksy(*tcp_peer_args(peer))
    c = srv.raw()
    raw = c.request_bytes(headers=[("X-Bad", "1")])
    c.send(raw.replace(b"X-Bad: 1", b"this line has no colon"))
    r = c.read_response()
    check_error_response(r, c, 400)
