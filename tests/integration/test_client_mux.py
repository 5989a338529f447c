"""websocksy-client's mux modes against the real websocksy.

  ws;host=..;path=..;mux   every local connection is a stream of ONE
                           WebSocket (server: framing kcp-mux plugin)
  kcp[;psk=KEY]            every local connection is a stream of ONE KCP
                           session over UDP (server: kcp-listen)

Chains: local TCP -> websocksy-client -> one WebSocket / one KCP session
-> websocksy -> TCP echo peer.  Binaries: WEBSOCKSY_CLIENT_BIN (default
<repo>/build/websocksy-client) and the conftest's websocksy.  Loopback
only, every wait bounded.
"""
import base64
import hashlib
import os
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import (BIN, REPO, free_port, stop_checked, tcp_peer_args,
                      wait_for)

CLIENT = os.path.abspath(os.environ.get(
    "WEBSOCKSY_CLIENT_BIN", os.path.join(REPO, "build", "websocksy-client")))

pytestmark = pytest.mark.skipif(not os.access(CLIENT, os.X_OK),
                                reason="no websocksy-client at %s" % CLIENT)

MB2 = 2 * 1024 * 1024


def plugin_dir():
    env = os.environ.get("WEBSOCKSY_PLUGINS")
    if env:
        return os.path.abspath(env)
    near = os.path.join(os.path.dirname(BIN), "plugins")
    if os.path.isfile(os.path.join(near, "framing_kcp-mux.so")):
        return near
    return os.path.join(REPO, "build", "plugins")


def need_plugin():
    if not os.path.isfile(os.path.join(plugin_dir(), "framing_kcp-mux.so")):
        pytest.skip("framing_kcp-mux.so not built")


def genpsk():
    p = subprocess.run([CLIENT, "--genpsk"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=5)
    assert p.returncode == 0, p.stderr
    return p.stdout.decode().strip()


class Client:
    def __init__(self, tmp_path, remote, options, name="client"):
        self.port = free_port()
        self.path = str(tmp_path / (name + ".log"))
        self._err = open(self.path, "wb")
        self.proc = subprocess.Popen(
            [CLIENT, "-v", "127.0.0.1:%d" % self.port, remote, options],
            stdin=subprocess.DEVNULL, stdout=self._err, stderr=self._err)
        self.stopped = False
        # ready when it logs its listener: a probe connection would open
        # the tunnel and spoil the one-upgrade count
        assert wait_for(lambda: "listening on" in self.log()
                        or self.proc.poll() is not None, 10), self.log()
        assert self.proc.poll() is None, self.log()

    def log(self):
        with open(self.path, "rb") as f:
            return f.read().decode(errors="replace")

    def connect(self, timeout=60):
        return socket.create_connection(("127.0.0.1", self.port), timeout)

    def stop(self):
        if self.stopped:
            return
        self.stopped = True
        stop_checked(self.proc, self._err, self.log, "client", 15)


@pytest.fixture
def client(tmp_path):
    made = []

    def start(remote, options, name="client"):
        c = Client(tmp_path, remote, options, name + str(len(made)))
        made.append(c)
        return c

    yield start
    for c in made:
        c.stop()


def ws_server(websocksy, echo, port=None):
    need_plugin()
    return websocksy("-v", "-C", "plugins=" + plugin_dir(),
                     "-c", "framing=kcp-mux", *tcp_peer_args(echo), port=port)


def kcp_server(websocksy, echo, psk=None):
    need_plugin()
    udp = free_port(kind=socket.SOCK_DGRAM)
    args = ["-v", "-C", "plugins=" + plugin_dir(),
            "-C", "kcp-listen=127.0.0.1:%d" % udp,
            "-C", "kcp-peer=tcp://127.0.0.1:%d" % echo.port]
    if psk:
        # 50 x 2 MB both ways is ~150k datagrams in a few seconds: the
        # default replay cache (1048576 slots) holds them for its 30 s
        args += ["-C", "kcp-psk=" + psk]
    try:
        srv = websocksy(*args, *tcp_peer_args(echo))
    except AssertionError as e:
        if "not available" in str(e):
            pytest.skip("websocksy built without kcp-listen")
        raise
    return srv, udp


def exchange(c, data, results, i):
    """Send data, half-close, read the echo to EOF; results[i] = ok."""
    try:
        s = c.connect()
        t = threading.Thread(target=lambda: (s.sendall(data),
                                             s.shutdown(socket.SHUT_WR)))
        t.start()
        got = bytearray()
        while True:
            d = s.recv(262144)
            if not d:
                break
            got += d
        t.join(60)
        s.close()
        results[i] = hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    except OSError as e:
        results[i] = repr(e)


def run_many(c, n, size, timeout=120, srv=None):
    blobs = [os.urandom(size) for _ in range(n)]
    results = [None] * n
    ts = [threading.Thread(target=exchange, args=(c, blobs[i], results, i))
          for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout)
    assert results == [True] * n, (results, c.log()[-3000:],
                                   srv.stderr()[-3000:] if srv else "")


def upgrades(srv):
    # one kcp-mux session per upgraded WebSocket (the fixture's readiness
    # probe connects too, but never upgrades)
    return srv.stderr().count("kcp-mux: window")


# ------------------------------------------------------------------ tests
def test_genpsk():
    a, b = genpsk(), genpsk()
    assert len(a) == 44 and a != b
    assert len(base64.b64decode(a, validate=True)) == 32


def test_options_rejected(tmp_path):
    for opt, why in (("mux", "needs 'ws'"), ("kcp;ws;host=a;path=/", "kcp"),
                     ("kcp;psk=short", "psk"), ("psk=" + "A" * 43 + "=", "needs 'kcp'"),
                     ("kcp;kcp-mtu=10", "kcp-mtu")):
        p = subprocess.run([CLIENT, "127.0.0.1:1", "127.0.0.1:2", opt],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=5)
        assert p.returncode == 1, (opt, p.stderr)
        assert why in p.stderr.decode(), (opt, p.stderr)


def test_ws_mux_50_streams_one_upgrade(websocksy, peers, client):
    srv = ws_server(websocksy, peers.tcp_echo())
    c = client("127.0.0.1:%d" % srv.port, "ws;host=a;path=/;mux")
    run_many(c, 50, MB2)
    assert upgrades(srv) == 1, srv.stderr()[-3000:]
    assert "ws tunnel up" in c.log()


def test_wss_mux_50_streams_one_upgrade(websocksy, peers, client):
    """The mux over wss: the client's TLS batches records like the
    server's; 50 streams of 2 MB each way, byte-identical."""
    need_plugin()
    certs = os.path.join(REPO, "tests", "certs")
    sport = free_port()
    srv = websocksy("-v", "-C", "plugins=" + plugin_dir(),
                    "-c", "framing=kcp-mux", "-s", str(sport),
                    "-C", "tls-cert=" + os.path.join(certs, "localhost.pem"),
                    "-C", "tls-key=" + os.path.join(certs, "localhost.key"),
                    *tcp_peer_args(peers.tcp_echo()))

    def listening():
        try:
            socket.create_connection(("127.0.0.1", sport), 1).close()
            return True
        except OSError:
            return False
    assert wait_for(listening, 5)
    c = client("127.0.0.1:%d" % sport, "ws;tls;sni=localhost;ca=%s;"
               "host=localhost;path=/;mux" % os.path.join(certs, "ca.pem"))
    run_many(c, 50, MB2)
    assert upgrades(srv) == 1, srv.stderr()[-3000:]
    assert "ws tunnel up" in c.log()
    assert "TLS1.3" in srv.stderr(), srv.stderr()[-3000:]


@pytest.mark.parametrize("with_psk", [False, True], ids=["plain", "psk"])
def test_kcp_50_streams_one_session(websocksy, peers, client, with_psk):
    key = genpsk() if with_psk else None
    srv, udp = kcp_server(websocksy, peers.tcp_echo(), key)
    opt = "kcp" + (";psk=" + key if key else "")
    c = client("127.0.0.1:%d" % udp, opt)
    run_many(c, 50, MB2, srv=srv)
    assert c.log().count("kcp: conversation") == 1, c.log()[-3000:]
    assert srv.stderr().count("session open") == 1, srv.stderr()[-3000:]


@pytest.mark.parametrize("mode", ["ws", "kcp"])
def test_stalled_reader_does_not_stall_others(websocksy, peers, client, mode):
    echo = peers.tcp_echo()
    if mode == "ws":
        srv = ws_server(websocksy, echo)
        c = client("127.0.0.1:%d" % srv.port, "ws;host=a;path=/;mux")
    else:
        srv, udp = kcp_server(websocksy, echo)
        c = client("127.0.0.1:%d" % udp, "kcp")
    # the stalled one: 40 MB out, nothing read back: more than the stream
    # window and every socket buffer on the way (loopback autotuning lets
    # each hold several MB) can take
    big = os.urandom(40 * 1024 * 1024)
    stalled = c.connect()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sent = threading.Event()

    def send_big():
        try:
            stalled.sendall(big)
            stalled.shutdown(socket.SHUT_WR)
            sent.set()
        except OSError:
            pass
    threading.Thread(target=send_big, daemon=True).start()
    time.sleep(1.0)
    assert not sent.is_set(), "the stalled stream took 40 MB unread"
    t0 = time.monotonic()
    run_many(c, 10, 1024 * 1024, timeout=60)
    assert time.monotonic() - t0 < 30
    # now read it: everything arrives, byte-identical
    got = bytearray()
    stalled.settimeout(60)
    while True:
        d = stalled.recv(262144)
        if not d:
            break
        got += d
    assert sent.wait(10)
    assert hashlib.sha256(got).digest() == hashlib.sha256(big).digest()
    stalled.close()


def test_ws_killed_streams_reset_then_reconnect(websocksy, peers, client):
    echo = peers.tcp_echo()
    srv = ws_server(websocksy, echo)
    port = srv.port
    c = client("127.0.0.1:%d" % port, "ws;host=a;path=/;mux")
    # open streams, mid-transfer: data echoed, not finished
    socks = []
    for _ in range(5):
        s = c.connect(timeout=10)
        s.sendall(b"x" * 100000)
        got = 0
        while got < 100000:
            got += len(s.recv(65536))
        socks.append(s)
    srv.proc.kill()
    srv.proc.wait(5)
    srv.stopped = True
    for s in socks:
        s.settimeout(10)
        try:
            assert s.recv(65536) == b""
        except ConnectionResetError:
            pass
        s.close()
    assert wait_for(lambda: "tunnel down" in c.log(), 5), c.log()
    srv2 = ws_server(websocksy, echo, port=port)
    run_many(c, 5, 200000)
    assert upgrades(srv2) == 1, srv2.stderr()[-3000:]
    assert c.log().count("ws tunnel up") == 2


def test_kcp_psk_client_moves_keeps_streams(websocksy, peers, client):
    key = genpsk()
    srv, udp = kcp_server(websocksy, peers.tcp_echo(), key)
    c = client("127.0.0.1:%d" % udp, "kcp;psk=" + key)
    done = threading.Event()

    def mover():
        # two moves while the transfers run
        for _ in range(2):
            if done.wait(0.4):
                return
            c.proc.send_signal(signal.SIGUSR1)
    threading.Thread(target=mover, daemon=True).start()
    try:
        run_many(c, 10, 8 * 1024 * 1024)
    finally:
        done.set()
    assert "moved to local port" in c.log(), c.log()[-3000:]
    assert "moved from" in srv.stderr(), srv.stderr()[-3000:]
    assert c.log().count("kcp: conversation") == 1
