"""Static web root: plain GETs served from a directory, traversal-safe."""
import os

import pytest

from conftest import tcp_peer_args
from rawws import OP_TEXT, RawWS

INDEX = b"<!doctype html><title>websocksy</title><p>hello from the web root</p>\n"
SECRET = b"TOP-SECRET-CONTENT-outside-root\n"


@pytest.fixture
def webroot(tmp_path):
    root = tmp_path / "www"
    (root / "sub").mkdir(parents=True)
    (root / "index.html").write_bytes(INDEX)
    (root / "style.css").write_bytes(b"body { color: red }\n")
    (root / "app.js").write_bytes(b"console.log(1);\n")
    (root / "notes.txt").write_bytes(b"plain notes\n")
    (root / "sub" / "index.html").write_bytes(b"<p>sub index</p>\n")
    (root / "sub" / "page.html").write_bytes(b"<p>sub page</p>\n")
    (tmp_path / "secret.txt").write_bytes(SECRET)
    os.symlink(str(tmp_path / "secret.txt"), str(root / "leak.txt"))
    os.symlink(str(tmp_path), str(root / "outside"))
    os.symlink("index.html", str(root / "inside-link.html"))
    return root


def get(port, path, method="GET", host="127.0.0.1", extra=""):
    c = RawWS(host, port)
    c.send(("%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s\r\n" % (method, path, port, extra))
           .encode("latin-1"))
    r = c.read_response(body=(method != "HEAD"))
    return r, c


def test_get_index(websocksy, peers, webroot):
    peer = peers.tcp_echo()
    srv = websocksy("-w", str(webroot), *tcp_peer_args(peer))
    r, c = get(srv.port, "/")
    assert r.status == 200, r
    assert r.get("Content-Type", "").lower().startswith("text/html"), r
    assert int(r.get("Content-Length")) == len(INDEX)
    assert r.body == INDEX


def test_get_files_content_types(websocksy, peers, webroot):
    peer = peers.tcp_echo()
    srv = websocksy("-C", "web=%s" % webroot, *tcp_peer_args(peer))
    for path, ctype, body in [("/index.html", "text/html", INDEX),
                              ("/style.css", "text/css", b"body { color: red }\n"),
                              ("/app.js", "javascript", b"console.log(1);\n"),
                              ("/notes.txt", "text/plain", b"plain notes\n"),
                              ("/sub/page.html", "text/html", b"<p>sub page</p>\n"),
                              ("/inside-link.html", "text/html", INDEX),
                              ("/index.html?v=3", "text/html", INDEX)]:
        r, c = get(srv.port, path)
        assert r.status == 200, (path, r)
        assert ctype in r.get("Content-Type", "").lower(), (path, r)
        assert r.body == body, path
        c.close()


def test_head(websocksy, peers, webroot):
    peer = peers.tcp_echo()
    srv = websocksy("-w", str(webroot), *tcp_peer_args(peer))
    r, c = get(srv.port, "/", method="HEAD")
    assert r.status == 200, r
    assert int(r.get("Content-Length")) == len(INDEX)
    # no body follows the head: the next bytes (if any) are not the file
    c.sock.settimeout(0.5)
    try:
        extra = c.sock.recv(65536)
    except OSError:
        extra = b""
    assert INDEX not in bytes(c.buf) + extra


def test_missing_file_404(websocksy, peers, webroot):
    peer = peers.tcp_echo()
    srv = websocksy("-w", str(webroot), *tcp_peer_args(peer))
    r, c = get(srv.port, "/nope.html")
    assert r.status == 404, r


@pytest.mark.parametrize("path", [
    "/../secret.txt",
    "/%2e%2e/secret.txt",
    "/%2E%2E/secret.txt",
    "/sub/../../secret.txt",
    "/sub/%2e%2e/%2e%2e/secret.txt",
    "/..%2fsecret.txt",
    "/%2e%2e%2fsecret.txt",
    "/leak.txt",
    "/outside/secret.txt",
])
def test_traversal_404(websocksy, peers, webroot, path):
    peer = peers.tcp_echo()
    srv = websocksy("-w", str(webroot), *tcp_peer_args(peer))
    r, c = get(srv.port, path)
    assert r.status == 404, (path, r)
    assert SECRET not in r.body
    try:
        rest = c.read_all_until_eof(2)
    except OSError:
        rest = bytes(c.buf)
    assert SECRET not in rest


def test_web_root_and_websocket_on_one_port(websocksy, peers, webroot):
    peer = peers.tcp_echo()
    srv = websocksy("-w", str(webroot), *tcp_peer_args(peer))
    r, c = get(srv.port, "/")
    assert r.status == 200
    ws = RawWS("127.0.0.1", srv.port)
    ws.handshake()
    ws.send_text("both")
    assert ws.read_message() == (OP_TEXT, b"both")


def test_no_web_root_plain_get_426(websocksy, peers):
    peer = peers.tcp_echo()
    srv = websocksy(*tcp_peer_args(peer))
    r, c = get(srv.port, "/")
    assert r.status == 426, r
    assert r.get("Content-Type", "").lower().startswith("text/plain")
    assert INDEX not in r.body
