"""websocksy-client against the real websocksy server and plain peers.

Binary: env WEBSOCKSY_CLIENT_BIN, default <repo>/build/websocksy-client.
Chains: local TCP -> websocksy-client -> (ws / wss / tls / tcp) ->
websocksy or a Python peer -> TCP echo.
"""
import hashlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

import pytest

from conftest import REPO, free_port, run_binary, stop_checked, wait_for

CLIENT = os.path.abspath(os.environ.get(
    "WEBSOCKSY_CLIENT_BIN", os.path.join(REPO, "build", "websocksy-client")))
CERTS = os.path.join(REPO, "tests", "certs")

pytestmark = pytest.mark.skipif(not os.access(CLIENT, os.X_OK),
                                reason="no websocksy-client at %s" % CLIENT)


def server_has_tls():
    try:
        rc, out, err = run_binary(["--help"])
    except Exception:
        return False
    return "tls" in (out + err).lower()


class Client:
    def __init__(self, args, env, stderr_path, port):
        self.port = port
        self.stderr_path = stderr_path
        self._err = open(stderr_path, "wb")
        self.proc = subprocess.Popen([CLIENT] + list(args), env=env,
                                     stdin=subprocess.DEVNULL,
                                     stdout=self._err, stderr=self._err)
        self.stopped = False

    def stderr(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode(errors="replace")

    def wait_ready(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("client exited with %s:\n%s"
                                     % (self.proc.returncode, self.stderr()))
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                return self
            except OSError:
                time.sleep(0.02)
        raise AssertionError("client not listening:\n" + self.stderr())

    def stop(self):
        if self.stopped:
            return
        self.stopped = True
        stop_checked(self.proc, self._err, self.stderr, "client", 15)


@pytest.fixture
def client(tmp_path, websocksy):
    """client(remote_port, options, env=None) -> Client, listening.

    Depends on websocksy so that clients stop before the server."""
    made = []

    def start(remote_port, options, sip003=False, ready=True):
        port = free_port()
        env = dict(os.environ)
        if sip003:
            env.update(SS_REMOTE_HOST="127.0.0.1", SS_REMOTE_PORT=str(remote_port),
                       SS_LOCAL_HOST="127.0.0.1", SS_LOCAL_PORT=str(port),
                       SS_PLUGIN_OPTIONS=options)
            args = []
        else:
            args = ["127.0.0.1:%d" % port, "127.0.0.1:%d" % remote_port, options]
        c = Client(args, env, str(tmp_path / ("client%d.log" % len(made))), port)
        made.append(c)
        return c.wait_ready() if ready else c

    yield start
    errors = []
    for c in made:
        try:
            c.stop()
        except AssertionError as e:
            errors.append(str(e))
    if errors:
        pytest.fail("\n\n".join(errors))


def echo_through(port, data, timeout=60):
    """Send data through the tunnel, half-close, read to EOF."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    got = []

    def reader():
        while True:
            d = s.recv(1 << 18)
            if not d:
                return
            got.append(d)

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    t.join(timeout)
    s.close()
    assert not t.is_alive(), "no EOF from the tunnel"
    return b"".join(got)


def ws_server(websocksy, peer, *extra):
    return websocksy("-c", "host=127.0.0.1", "-c", "port=%d" % peer.port, *extra)


WS = "ws;host=example.com;path=/ws"


# ------------------------------------------------------------------ relay
def test_ws_10mb_identical(websocksy, peers, client):
    srv = ws_server(websocksy, peers.tcp_echo())
    c = client(srv.port, WS)
    data = os.urandom(10 << 20)
    got = echo_through(c.port, data)
    assert len(got) == len(data)
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    assert "open (ws)" in c.stderr()


@pytest.mark.parametrize("mask", ["skip", "standard", "fixed"])
def test_mask_modes(websocksy, peers, client, mask):
    srv = ws_server(websocksy, peers.tcp_echo())
    c = client(srv.port, WS + ";mask=" + mask)
    data = os.urandom(1 << 20)
    assert echo_through(c.port, data) == data


def test_20_concurrent(websocksy, peers, client):
    srv = ws_server(websocksy, peers.tcp_echo())
    c = client(srv.port, WS)
    blobs = [os.urandom(256 * 1024 + i) for i in range(20)]
    results = [None] * 20

    def one(i):
        results[i] = echo_through(c.port, blobs[i])

    ts = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert all(results[i] == blobs[i] for i in range(20))


def test_server_close_reaches_local(websocksy, peers, client):
    """The peer sends and closes: everything arrives, then EOF."""
    data = os.urandom(3 << 20)
    srv = ws_server(websocksy, peers.tcp_sender(data))
    c = client(srv.port, WS)
    s = socket.create_connection(("127.0.0.1", c.port), timeout=20)
    got = bytearray()
    while True:
        d = s.recv(1 << 18)
        if not d:
            break
        got += d
    s.close()
    assert bytes(got) == data


def test_raw_tcp(peers, client):
    echo = peers.tcp_echo()
    c = client(echo.port, "")
    data = os.urandom(4 << 20)
    assert echo_through(c.port, data) == data
    assert "open (tcp)" in c.stderr()


def test_remote_unreachable(client, tmp_path):
    c = client(free_port(), WS + ";timeout=2")
    s = socket.create_connection(("127.0.0.1", c.port), timeout=5)
    s.settimeout(5)
    try:
        assert s.recv(10) == b""
    except ConnectionResetError:
        pass
    s.close()
    assert wait_for(lambda: "connection refused" in c.stderr().lower())


# ------------------------------------------------------------------ options
@pytest.mark.parametrize("opts,key", [
    ("ws;host=a;path=/;bogus=1", "'bogus'"),
    ("ws;host=a", "'path="),
    ("ws;host;path=/", "'host'"),
    ("ws;host=a;path=/x\\qy", "'path'"),
    ("ws;host=a;path=/;mask=wat", "'mask'"),
    ("tls", "'sni="),
])
def test_bad_options_exit_1(opts, key):
    p = subprocess.run([CLIENT, "127.0.0.1:1", "127.0.0.1:2", opts],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=5)
    err = p.stderr.decode()
    assert p.returncode == 1, err
    assert key in err, err


def test_version_and_help():
    p = subprocess.run([CLIENT, "--version"], capture_output=True, timeout=5)
    assert p.returncode == 0
    assert p.stdout.decode().strip() == "websocksy-client 0.1.0"
    p = subprocess.run([CLIENT, "--help"], capture_output=True, timeout=5)
    assert p.returncode == 0 and b"mask=" in p.stdout


def test_bad_address_exit_1():
    p = subprocess.run([CLIENT, "::1:80", "127.0.0.1:2", ""],
                       capture_output=True, timeout=5)
    assert p.returncode == 1 and b"local address" in p.stderr


# ---------------------------------------------------------------------- TLS
class TLSEcho:
    """A Python TLS server (tests/certs/localhost) that echoes."""

    def __init__(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(CERTS, "localhost.pem"),
                            os.path.join(CERTS, "localhost.key"))
        self.ctx = ctx
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.t = threading.Thread(target=self._loop, daemon=True)
        self.t.start()

    def _loop(self):
        while not self.stop.is_set():
            try:
                c, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            threading.Thread(target=self._one, args=(c,), daemon=True).start()

    def _one(self, c):
        try:
            c.settimeout(10)
            s = self.ctx.wrap_socket(c, server_side=True)
            while True:
                d = s.recv(65536)
                if not d:
                    break
                s.sendall(d)
            s.close()
        except (OSError, ssl.SSLError):
            c.close()

    def close(self):
        self.stop.set()
        self.t.join(2)
        self.sock.close()


@pytest.fixture
def tls_echo():
    s = TLSEcho()
    yield s
    s.close()


def test_raw_tls_verified(client, tls_echo):
    c = client(tls_echo.port, "tls;sni=localhost;ca=" + os.path.join(CERTS, "ca.pem"))
    data = os.urandom(2 << 20)
    assert echo_through(c.port, data) == data
    assert "open (tls)" in c.stderr()


def test_raw_tls_wrong_name_refused(client, tls_echo):
    c = client(tls_echo.port, "tls;sni=other.test;ca=" + os.path.join(CERTS, "ca.pem"))
    s = socket.create_connection(("127.0.0.1", c.port), timeout=5)
    try:
        assert s.recv(10) == b""
    except ConnectionResetError:
        pass
    s.close()
    assert wait_for(lambda: "TLS handshake" in c.stderr())


def test_raw_tls_insecure(client, tls_echo):
    c = client(tls_echo.port, "tls;sni=other.test;insecure")
    assert echo_through(c.port, b"hello" * 1000) == b"hello" * 1000


def test_wss(websocksy, peers, client):
    if not server_has_tls():
        pytest.skip("websocksy has no TLS")
    echo = peers.tcp_echo()
    sport = free_port()
    srv = websocksy("-s", sport, "-C", "tls-cert=" + os.path.join(CERTS, "localhost.pem"),
                    "-C", "tls-key=" + os.path.join(CERTS, "localhost.key"),
                    "-c", "host=127.0.0.1", "-c", "port=%d" % echo.port)
    assert wait_for(lambda: _listening(sport))
    c = client(sport, WS + ";tls;sni=localhost;ca=" + os.path.join(CERTS, "ca.pem"))
    data = os.urandom(4 << 20)
    assert echo_through(c.port, data) == data
    assert "open (wss)" in c.stderr()
    srv.port  # keep the server alive until here


def _listening(port):
    try:
        socket.create_connection(("127.0.0.1", port), 0.3).close()
        return True
    except OSError:
        return False


# ------------------------------------------------------------------- SIP003
def test_sip003_env(websocksy, peers, client):
    srv = ws_server(websocksy, peers.tcp_echo())
    c = client(srv.port, WS + ";mask=skip", sip003=True)
    data = os.urandom(1 << 20)
    assert echo_through(c.port, data) == data


def test_sip003_missing_variable():
    env = dict(os.environ, SS_REMOTE_HOST="127.0.0.1", SS_LOCAL_HOST="127.0.0.1",
               SS_LOCAL_PORT="1")
    env.pop("SS_REMOTE_PORT", None)
    p = subprocess.run([CLIENT], env=env, capture_output=True, timeout=5)
    assert p.returncode != 0 and b"SS_REMOTE_PORT" in p.stderr


PARENT = r"""
import os, subprocess, sys
p = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(p.pid, flush=True)
sys.stdin.read()   # live until told
"""


def test_exits_when_parent_dies(peers):
    echo = peers.tcp_echo()
    port = free_port()
    env = dict(os.environ, SS_REMOTE_HOST="127.0.0.1", SS_REMOTE_PORT=str(echo.port),
               SS_LOCAL_HOST="127.0.0.1", SS_LOCAL_PORT=str(port),
               SS_PLUGIN_OPTIONS="")
    parent = subprocess.Popen([sys.executable, "-c", PARENT, CLIENT], env=env,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    pid = int(parent.stdout.readline())
    try:
        assert wait_for(lambda: _listening(port), 10)
        parent.kill()
        parent.wait(5)

        def gone():
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            # a zombie re-parented to us (or init) counts as gone
            try:
                with open("/proc/%d/stat" % pid) as f:
                    return f.read().split(")")[1].split()[0] == "Z"
            except OSError:
                return True
        assert wait_for(gone, 5), "client still running after its parent died"
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
