"""The loadable backends against the real binary: file (routing by
endpoint, cookie and header; subprotocol rules; traversal safety; cache
reload) and unix (config/resolver.py; a resolver that never answers, one
that dies and comes back; the request it is sent)."""
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from conftest import BIN, REPO, run_binary, wait_for
from rawws import OP_TEXT

# the plugins built with the binary under test (build/ or build/san/)
PLUGINS = os.path.join(os.path.dirname(BIN), "plugins")
RESOLVER = os.path.join(REPO, "config", "resolver.py")


def need(name):
    if not os.path.exists(os.path.join(PLUGINS, "backend_%s.so" % name)):
        pytest.skip("backend_%s.so not built" % name)


def file_args(path, *exprs):
    args = ["-b", "file", "-C", "plugins=" + PLUGINS, "-c", "path=%s" % path]
    for e in exprs:
        args += ["-c", "expression=" + e]
    return args


def echo_through(srv, text="hi", **kw):
    """Handshake with kw, check an echo; returns the 101 response."""
    c = srv.raw()
    r = c.handshake(**kw)
    c.send_text(text)
    assert c.read_message() == (OP_TEXT, text.encode())
    c.close()
    return r


def status_of(srv, **kw):
    c = srv.raw()
    r = c.handshake(expect=None, **kw)
    c.close()
    return r.status


def routes(tmp_path, files):
    d = tmp_path / "routes"
    d.mkdir(exist_ok=True)
    for name, text in files.items():
        p = d / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return d


# ------------------------------------------------------------------ file
def test_file_routes_by_endpoint(websocksy, peers, tmp_path):
    need("file")
    a, b = peers.tcp_echo(), peers.tcp_echo()
    d = routes(tmp_path, {
        "a": "# peer a\n\ntcp://127.0.0.1:%d *\n" % a.port,
        "b": "127.0.0.1:%d * newline lf\n" % b.port,
    })
    srv = websocksy(*file_args(d, "%endpoint%"))
    echo_through(srv, path="/a")
    assert len(a.conns) == 1 and b.conns == []
    c = srv.raw()
    c.handshake(path="/b?x=1")
    c.send_text("l1\nl2\n")
    assert c.read_message() == (OP_TEXT, b"l1\n")
    assert c.read_message() == (OP_TEXT, b"l2\n")
    assert len(b.conns) == 1
    assert status_of(srv, path="/c") == 404
    assert status_of(srv, path="/") == 404


def test_file_routes_by_cookie_then_header_then_endpoint(websocksy, peers,
                                                         tmp_path):
    need("file")
    a, b, c = peers.tcp_echo(), peers.tcp_echo(), peers.tcp_echo()
    d = routes(tmp_path, {
        "ca": "tcp://127.0.0.1:%d *\n" % a.port,
        "hb": "tcp://127.0.0.1:%d *\n" % b.port,
        "ec": "tcp://127.0.0.1:%d *\n" % c.port,
    })
    srv = websocksy(*file_args(d, "%cookie:route%", "%header:X-Route%",
                               "%endpoint%"))
    echo_through(srv, path="/ec", headers=[("Cookie", "x=1; route=ca"),
                                           ("X-Route", "hb")])
    assert len(a.conns) == 1
    # header names are case-insensitive; a cookie without a file falls
    # through to the next expression
    echo_through(srv, path="/ec", headers=[("Cookie", "route=nofile"),
                                           ("x-route", "hb")])
    assert len(b.conns) == 1
    echo_through(srv, path="/ec")
    assert len(c.conns) == 1
    # the cookie in a second Cookie header, quoted
    echo_through(srv, path="/zz", headers=[("Cookie", "a=b"),
                                           ("Cookie", 'route="ca"')])
    assert len(a.conns) == 2
    assert status_of(srv, path="/zz", headers=[("X-Route", "none")]) == 404


def test_file_subprotocol_rules(websocksy, peers, tmp_path):
    need("file")
    a, b = peers.tcp_echo(), peers.tcp_echo()
    d = routes(tmp_path, {
        "s": "tcp://127.0.0.1:%d chat\ntcp://127.0.0.1:%d *\n" % (a.port, b.port),
        "only": "tcp://127.0.0.1:%d chat\n" % a.port,
    })
    srv = websocksy(*file_args(d))      # default expression: %endpoint%
    r = echo_through(srv, path="/s", headers=[("Sec-WebSocket-Protocol",
                                                "superchat, chat")])
    assert r.get("Sec-WebSocket-Protocol") == "chat", r
    assert len(a.conns) == 1
    # file order wins: "chat" is on the first line although offered second
    r = echo_through(srv, path="/s", headers=[("Sec-WebSocket-Protocol",
                                                "other, x")])
    assert r.get("Sec-WebSocket-Protocol") == "other", r
    assert len(b.conns) == 1
    r = echo_through(srv, path="/s")
    assert r.get("Sec-WebSocket-Protocol") is None, r
    assert len(b.conns) == 2
    assert status_of(srv, path="/only") == 404
    assert status_of(srv, path="/only", headers=[("Sec-WebSocket-Protocol",
                                                   "superchat")]) == 404


def test_file_traversal_gets_404(websocksy, peers, tmp_path):
    need("file")
    good, secret = peers.tcp_echo(), peers.tcp_echo()
    # files outside path name the secret peer: reading one would connect it
    (tmp_path / "secret").write_text("tcp://127.0.0.1:%d *\n" % secret.port)
    (tmp_path / "..secret").write_text("tcp://127.0.0.1:%d *\n" % secret.port)
    d = routes(tmp_path, {
        "ok": "tcp://127.0.0.1:%d *\n" % good.port,
        "sub/inner": "tcp://127.0.0.1:%d *\n" % secret.port,
        ".hidden": "tcp://127.0.0.1:%d *\n" % secret.port,
    })
    os.symlink(str(tmp_path / "secret"), str(d / "link"))
    srv = websocksy(*file_args(d, "%cookie:r%", "%header:X-R%",
                               "%endpoint%"))
    attempts = [
        dict(path="/../secret"), dict(path="/%2e%2e/secret"),
        dict(path="/..%2fsecret"), dict(path="//etc/passwd"),
        dict(path="/etc/passwd"), dict(path="/sub/inner"),
        dict(path="/.hidden"), dict(path="/link"), dict(path="/.."),
        dict(path="/x", headers=[("Cookie", "r=..")]),
        dict(path="/x", headers=[("Cookie", "r=../secret")]),
        dict(path="/x", headers=[("Cookie", "r=/etc/passwd")]),
        dict(path="/x", headers=[("X-R", "..")]),
        dict(path="/x", headers=[("X-R", "../secret")]),
        dict(path="/x", headers=[("X-R", "a\tb")]),
        dict(path="/x", headers=[("X-R", "o" * 300)]),
        dict(path="/" + "k" * 250),
    ]
    for kw in attempts:
        st = status_of(srv, **kw)
        # the core may refuse a path outright (400); never a route
        assert st in (404, 400), (kw, st)
        if kw["path"] == "/x" or kw["path"].startswith("/."):
            assert st == 404, (kw, st)
    assert secret.conns == [], "a file outside path was used"
    echo_through(srv, path="/ok")
    assert len(good.conns) == 1


def test_file_reloads_a_changed_file(websocksy, peers, tmp_path):
    need("file")
    a, b = peers.tcp_echo(), peers.tcp_echo()
    d = routes(tmp_path, {"r": "tcp://127.0.0.1:%d *\n" % a.port})
    srv = websocksy(*file_args(d, "%endpoint%"))
    echo_through(srv, path="/r")
    (d / "r").write_text("# moved\ntcp://127.0.0.1:%d *\n" % b.port)
    echo_through(srv, path="/r")
    assert len(a.conns) == 1 and len(b.conns) == 1
    (d / "r").unlink()
    assert status_of(srv, path="/r") == 404
    # bad lines are skipped with a warning naming the file and line
    (d / "r").write_text("garbage\ntcp://127.0.0.1:%d *\n" % a.port)
    echo_through(srv, path="/r")
    assert len(a.conns) == 2
    assert re.search(r"r:1: .*ignored", srv.stderr()), srv.stderr()
    # too large: not read, 404 and a warning
    (d / "big").write_text("#" * 70000 + "\ntcp://127.0.0.1:%d *\n" % a.port)
    assert status_of(srv, path="/big") == 404
    assert "64 KiB" in srv.stderr()


@pytest.mark.parametrize("args,msg", [
    ([], "path: required"),
    (["-c", "path=/nonexistent-wsy"], "path"),
    (["-c", "path=/", "-c", "expression=%bogus%"], "unknown variable"),
    (["-c", "path=/", "-c", "expression=%endpoint"], "unterminated"),
    (["-c", "path=/", "-c", "expression=/etc/%endpoint%"], "relative"),
    (["-c", "path=/", "-c", "color=red"], "unknown key"),
])
def test_file_config_errors(args, msg):
    need("file")
    rc, out, err = run_binary(["-b", "file", "-C", "plugins=" + PLUGINS] + args)
    assert rc == 1, err
    assert msg in err, err


def test_file_example_config(websocksy, peers, tmp_path):
    """config/file-backend/websocksy.ini works as shipped (port and paths
    moved into the test's space; the peers become ours)."""
    need("file")
    peer = peers.tcp_echo()
    src = os.path.join(REPO, "config", "file-backend")
    d = routes(tmp_path, {})
    for name in os.listdir(os.path.join(src, "routes")):
        with open(os.path.join(src, "routes", name)) as f:
            text = f.read().replace("127.0.0.1:8002", "127.0.0.1:%d" % peer.port)
        (d / name).write_text(text)
    with open(os.path.join(src, "websocksy.ini")) as f:
        ini = f.read()
    ini = re.sub(r"(?m)^port = .*$", "port = {port}", ini)
    ini = re.sub(r"(?m)^plugins = .*$", "plugins = " + PLUGINS, ini)
    ini = re.sub(r"(?m)^path = .*$", "path = %s" % d, ini)
    srv = websocksy(ini=ini)
    c = srv.raw()
    r = c.handshake(path="/demo", headers=[("Sec-WebSocket-Protocol", "chat")])
    assert r.get("Sec-WebSocket-Protocol") == "chat"
    c.send_text("a\nb\n")
    assert c.read_message() == (OP_TEXT, b"a\n")
    c.close()
    echo_through(srv, path="/nothing")          # routes/default
    echo_through(srv, "x\n", path="/x", headers=[("Cookie", "route=demo")])
    assert len(peer.conns) == 3


# ------------------------------------------------------------------ unix
def unix_args(sock, *extra):
    return ["-b", "unix", "-C", "plugins=" + PLUGINS, "-c", "socket=" + sock] + list(extra)


class Resolver:
    """config/resolver.py as a child process."""

    def __init__(self, sock, *routes):
        self.sock = sock
        self.routes = routes
        self.start()

    def start(self):
        self.proc = subprocess.Popen([sys.executable, RESOLVER, self.sock] + list(self.routes),
                                     stdin=subprocess.DEVNULL)
        assert wait_for(lambda: self._up(), 10), "resolver did not start"

    def _up(self):
        s = socket.socket(socket.AF_UNIX)
        try:
            s.connect(self.sock)
            return True
        except OSError:
            return False
        finally:
            s.close()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(5)


@pytest.fixture
def resolvers():
    made = []

    def start(sock, *routes):
        r = Resolver(sock, *routes)
        made.append(r)
        return r
    yield start
    for r in made:
        r.kill()


class FakeResolver:
    """An in-test resolver: answer(request_text) -> the answer bytes, or
    None to hold the connection open without answering."""

    def __init__(self, path, answer):
        self.answer = answer
        self.requests = []
        self.held = []
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.bind(path)
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.stopping = threading.Event()
        self.t = threading.Thread(target=self._loop, daemon=True)
        self.t.start()

    def _loop(self):
        while not self.stopping.is_set():
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            c.settimeout(2)
            data = b""
            try:
                while b"\n\n" not in data:
                    d = c.recv(65536)
                    if not d:
                        break
                    data += d
            except OSError:
                pass
            text = data.decode("utf-8", "replace")
            self.requests.append(text)
            a = self.answer(text)
            if a is None:
                self.held.append(c)
                continue
            try:
                c.sendall(a)
            except OSError:
                pass
            c.close()

    def close(self):
        self.stopping.set()
        self.sock.close()
        self.t.join(2)
        for c in self.held:
            c.close()


@pytest.fixture
def fake_resolver():
    made = []

    def start(path, answer):
        f = FakeResolver(path, answer)
        made.append(f)
        return f
    yield start
    for f in made:
        f.close()


def test_unix_with_example_resolver(websocksy, peers, resolvers):
    need("unix")
    peer = peers.tcp_echo()
    sock = os.path.join(peers.sockdir(), "r.sock")
    resolvers(sock, "/echo=tcp://127.0.0.1:%d" % peer.port)
    srv = websocksy(*unix_args(sock))
    echo_through(srv, path="/echo")
    echo_through(srv, path="/echo?a=b", headers=[("Cookie", "x=1")])
    assert len(peer.conns) == 2
    assert status_of(srv, path="/other") == 404


def test_unix_resolver_never_answers_503(websocksy, peers, fake_resolver):
    need("unix")
    sock = os.path.join(peers.sockdir(), "r.sock")
    fake_resolver(sock, lambda req: None)
    srv = websocksy(*unix_args(sock, "-c", "timeout=0.5"))
    t0 = time.monotonic()
    assert status_of(srv, path="/x") == 503
    took = time.monotonic() - t0
    assert 0.4 <= took < 3, took
    assert "did not answer within 500 ms" in srv.stderr(), srv.stderr()


def test_unix_resolver_down_then_back(websocksy, peers, resolvers):
    need("unix")
    peer = peers.tcp_echo()
    sock = os.path.join(peers.sockdir(), "r.sock")
    route = "/e=127.0.0.1:%d" % peer.port
    # not started yet: no socket file (ENOENT)
    srv = websocksy(*unix_args(sock))
    assert status_of(srv, path="/e") == 503
    assert "answering 503" in srv.stderr()
    r = resolvers(sock, route)
    echo_through(srv, path="/e")
    # killed mid-run: the socket file stays, nobody listens (ECONNREFUSED)
    r.kill()
    assert status_of(srv, path="/e") == 503
    assert status_of(srv, path="/e") == 503
    r.start()
    echo_through(srv, path="/e")
    assert len(peer.conns) == 2


def test_unix_request_and_answer_fields(websocksy, peers, fake_resolver):
    need("unix")
    peer = peers.tcp_echo()
    sock = os.path.join(peers.sockdir(), "r.sock")
    ans = ("peer tcp://127.0.0.1:%d protocol chat framing newline "
           "framing-config lf\n" % peer.port).encode()
    fr = fake_resolver(sock, lambda req: ans)
    srv = websocksy(*unix_args(sock))
    c = srv.raw()
    r = c.handshake(path="/room/1?k=v", headers=[
        ("Sec-WebSocket-Protocol", "superchat, chat"),
        ("X-Odd", "back\\slash")])
    assert r.get("Sec-WebSocket-Protocol") == "chat", r
    c.send_text("a\nb")
    assert c.read_message() == (OP_TEXT, b"a\n")
    c.close()
    req = fr.requests[0]
    lines = req.split("\n")
    assert req.endswith("\n\n"), req
    assert "endpoint /room/1" in lines
    assert "query k=v" in lines
    assert "protocol superchat" in lines and "protocol chat" in lines
    assert "header X-Odd: back\\\\slash" in lines, req
    assert any(re.match(r"client 127\.0\.0\.1 \d+$", ln) for ln in lines), req
    assert "tls 0" in lines
    assert any(re.match(r"id \d+$", ln) for ln in lines), req


@pytest.mark.parametrize("answer,status", [
    (b"status 403\n", 403),
    (b"status 200\n", 500),
    (b"hello\n", 500),
    (b"peer tcp://127.0.0.1:1 protocol notoffered\n", 500),
    (b"peer tcp://127.0.0.1:1 color red\n", 500),
    (b"", 503),                         # closed without an answer
])
def test_unix_bad_or_refusing_answers(websocksy, peers, fake_resolver, answer, status):
    need("unix")
    sock = os.path.join(peers.sockdir(), "r.sock")
    fake_resolver(sock, lambda req: answer)
    srv = websocksy(*unix_args(sock))
    assert status_of(srv, path="/x") == status


def test_unix_client_gone_while_resolving(websocksy, peers, fake_resolver):
    """cancel(): the client leaves while the resolver is thinking; the
    server stays healthy and the held resolver connection is closed."""
    need("unix")
    sock = os.path.join(peers.sockdir(), "r.sock")
    fr = fake_resolver(sock, lambda req: None)
    srv = websocksy(*unix_args(sock, "-c", "timeout=30", "-C", "handshake-timeout=0.5"))
    c = srv.raw()
    c.send(c.request_bytes(path="/x"))
    r = c.read_response(timeout=5)
    # the core's deadline passed while the backend was asked: 503
    assert r.status == 503, r
    assert wait_for(lambda: len(fr.held) == 1, 5)
    held = fr.held[0]
    held.settimeout(5)
    assert held.recv(10) == b"", "the resolver connection was not closed"


@pytest.mark.parametrize("args,msg", [
    ([], "socket: required"),
    (["-c", "socket=/tmp/x", "-c", "timeout=0"], "timeout"),
    (["-c", "socket=/tmp/x", "-c", "timeout=abc"], "timeout"),
    (["-c", "socket=/" + "s" * 200], "socket"),
])
def test_unix_config_errors(args, msg):
    need("unix")
    rc, out, err = run_binary(["-b", "unix", "-C", "plugins=" + PLUGINS] + args)
    assert rc == 1, err
    assert msg in err, err
