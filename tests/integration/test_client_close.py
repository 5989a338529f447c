"""websocksy-client's close path (issue 13, parts 1 and 4).

- close-linger: v2ray-plugin's server loses data frames that arrive just
  before a close frame; websocksy-client waits close-linger (default 1 s,
  what v2ray-plugin's own client does) after its local EOF before closing.
  40 parallel 1 MiB uploads, each closed right after its last byte, must
  all reach the sink behind v2ray-plugin whole (length and SHA-256).
- the mux client answers a server's close frame with the same code and
  then closes the TCP connection (RFC 6455 5.5.1), as the per-connection
  tunnel does.
- close-linger=0 is accepted; a bad value is refused with a clear error.

Real binaries on 127.0.0.1 with free ports; every wait is bounded.
"""
import hashlib
import os
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

import rawws
from conftest import REPO, SANITIZER_MARKERS, StreamServer, free_port, wait_for
from test_sip003 import (CA, CERT, KEY, V2_WS_SERVER, V2_WSS_SERVER,
                         v2ray_plugin)

CLIENT = os.path.abspath(os.environ.get(
    "WEBSOCKSY_CLIENT_BIN", os.path.join(REPO, "build", "websocksy-client")))

WS_OPTS = "ws;host=example.com;path=/ws"
WSS_OPTS = "ws;tls;sni=localhost;ca=%s;host=localhost;path=/ws" % CA

UPLOADS = 40
UPLOAD_SIZE = 1 << 20

pytestmark = pytest.mark.skipif(
    not os.access(CLIENT, os.X_OK),
    reason="websocksy-client not built (%s)" % CLIENT)


# --------------------------------------------------------------- processes
class Proc:
    """A program in its own process group, output to a log file."""

    def __init__(self, cmd, log_path, env=None):
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=self._log,
                                     start_new_session=True)

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def wait_port(self, port, timeout=15.0):
        def up():
            assert self.proc.poll() is None, "exited early:\n" + self.log()
            try:
                socket.create_connection(("127.0.0.1", port), 0.3).close()
                return True
            except OSError:
                return False
        assert wait_for(up, timeout, 0.05), "no listener:\n" + self.log()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        self._log.close()
        log = self.log()
        for m in SANITIZER_MARKERS:
            assert m not in log, "sanitizer report:\n" + log[-6000:]


@pytest.fixture
def procs():
    started = []
    yield started
    for p in started:
        p.stop()


def start_client(procs, tmp_path, remote_port, opts):
    port = free_port()
    name = "client%d" % len(procs)
    p = Proc([CLIENT, "-v", "127.0.0.1:%d" % port,
              "127.0.0.1:%d" % remote_port, opts],
             str(tmp_path / (name + ".log")))
    procs.append(p)
    # not a probe connection: it would reach the sink as an empty upload
    assert wait_for(lambda: "listening on" in p.log() or
                    p.proc.poll() is not None, 10, 0.05), p.log()
    assert p.proc.poll() is None, p.log()
    p.port = port
    return p


def start_v2ray_server(procs, tmp_path, sink_port, tls):
    """v2ray-plugin as a SIP003 server plugin in front of the sink (no
    shadowsocks in between: it forwards the bytes as they are)."""
    v2 = v2ray_plugin()
    port = free_port()
    env = dict(os.environ, SS_REMOTE_HOST="127.0.0.1",
               SS_REMOTE_PORT=str(port), SS_LOCAL_HOST="127.0.0.1",
               SS_LOCAL_PORT=str(sink_port),
               SS_PLUGIN_OPTIONS=V2_WSS_SERVER if tls else V2_WS_SERVER)
    p = Proc([v2], str(tmp_path / "v2ray-server.log"), env)
    procs.append(p)
    p.wait_port(port)
    p.port = port
    return p


# ------------------------------------------------------------------- sink
def counting_sink(rec, srv):
    """Read to EOF, keeping only the length and the SHA-256."""
    rec.keep_data = False
    while not srv.stopping.is_set():
        d = srv.recv(rec)
        if d is None:
            continue
        if not d:
            rec.eof.set()
            return
        rec.add(d)


def upload(port, data, errors):
    """Connect, send everything, close at once (no shutdown, no wait)."""
    try:
        s = socket.create_connection(("127.0.0.1", port), 10)
        s.settimeout(60)
        s.sendall(data)
        s.close()
    except OSError as e:
        errors.append(repr(e))


def parallel_uploads(port, sink, n=UPLOADS, size=UPLOAD_SIZE):
    """n uploads at once; returns what the sink saw, as sorted
    (length, sha256) pairs, next to what was sent."""
    blobs = [os.urandom(size) for _ in range(n)]
    want = sorted((size, hashlib.sha256(b).hexdigest()) for b in blobs)
    errors = []
    ts = [threading.Thread(target=upload, args=(port, b, errors))
          for b in blobs]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    assert not errors, errors
    # every connection reaches the sink's EOF: truncated or not
    assert wait_for(lambda: len(sink.conns) >= n and
                    all(r.eof.is_set() or r.done.is_set()
                        for r in sink.conns), 60, 0.1), \
        "sink: %d connections, %d at EOF" % (
            len(sink.conns), sum(r.eof.is_set() for r in sink.conns))
    got = sorted((r.nbytes, r.sha.hexdigest()) for r in sink.conns)
    return want, got


def short(want, got):
    sizes = sorted(n for n, _ in got)
    return "%d of %d whole; sizes seen: %s" % (
        len(set(want) & set(got)), len(want), sizes[:10])


@pytest.mark.parametrize("tls", [False, True], ids=["ws", "wss"])
def test_upload_close_to_v2ray_plugin(procs, tmp_path, tls):
    """40 parallel 1 MiB uploads closed at once: all arrive whole."""
    sink = StreamServer(counting_sink)
    try:
        v2 = start_v2ray_server(procs, tmp_path, sink.port, tls)
        cli = start_client(procs, tmp_path, v2.port,
                           WSS_OPTS if tls else WS_OPTS)
        want, got = parallel_uploads(cli.port, sink)
        assert got == want, short(want, got) + "\n" + cli.log()[-3000:]
        assert ("open (wss)" if tls else "open (ws)") in cli.log()
    finally:
        sink.close()


# ------------------------------------------- the server's close, answered
class RawPeer(rawws.RawWS):
    """The server end of one WebSocket, on an accepted socket."""

    def __init__(self, sock, timeout=10.0):  # noqa: super() would connect
        self.sock = sock
        self.sock.settimeout(timeout)
        self.timeout = timeout
        self.buf = bytearray()
        self.closed = False

    def accept_upgrade(self):
        head = self.read_until(b"\r\n\r\n", limit=16384).decode()
        key = next(ln.split(":", 1)[1].strip() for ln in head.split("\r\n")
                   if ln.lower().startswith("sec-websocket-key:"))
        self.send(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket"
                   "\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n"
                   "\r\n" % rawws.accept_key(key)).encode())

    def send_server_frame(self, op, payload=b""):
        self.send(rawws.build_frame(op, payload, mask=False))

    def next_close(self, timeout=10.0):
        """Frames from the client up to its close (data skipped: the mux
        client's own frames); every one must be masked."""
        deadline = time.monotonic() + timeout
        while True:
            f = self.read_frame(timeout=max(0.01, deadline - time.monotonic()))
            assert f.masked, "client frame not masked: %r" % f
            if f.opcode == rawws.OP_CLOSE:
                return f


def raw_ws_listener():
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.bind(("127.0.0.1", 0))
    ls.listen(8)
    ls.settimeout(15)
    return ls


@pytest.mark.parametrize("mode", ["mux", "ws"])
@pytest.mark.parametrize("code", [4001, 1001, None], ids=["4001", "1001",
                                                          "empty"])
def test_server_close_answered(procs, tmp_path, mode, code):
    """The server closes first: the client sends everything the server
    sent before its close to the local side (ws), answers with a close
    carrying the same code (an empty close for an empty one), then closes
    the TCP connection."""
    ls = raw_ws_listener()
    opts = WS_OPTS + (";mux" if mode == "mux" else "")
    try:
        cli = start_client(procs, tmp_path, ls.getsockname()[1], opts)
        local = socket.create_connection(("127.0.0.1", cli.port), 10)
        local.settimeout(15)
        c, _ = ls.accept()
        peer = RawPeer(c)
        try:
            peer.accept_upgrade()
            if mode == "ws":
                peer.send_server_frame(rawws.OP_BIN, b"tail before close")
            peer.send_server_frame(rawws.OP_CLOSE, rawws.close_payload(code))
            f = peer.next_close()
            assert f.close_code == code, (f, cli.log())
            assert f.close_reason == b"", f
            # the local side has not closed: the client ends the TCP
            # connection anyway, it is done with it
            assert peer.wait_eof(10), "client kept the TCP connection"
            if mode == "ws":
                got = b""
                while True:
                    d = local.recv(4096)
                    if not d:
                        break
                    got += d
                assert got == b"tail before close", got
            else:
                want = "the server closed the WebSocket (%d)" % (
                    code or 1005)
                assert wait_for(lambda: want in cli.log(), 10), cli.log()
        finally:
            peer.close()
            local.close()
    finally:
        ls.close()


def test_bad_frame_close_code_mux(procs, tmp_path):
    """A masked frame from the server is a protocol error: the mux client
    closes with 1002, as the per-connection tunnel does."""
    ls = raw_ws_listener()
    try:
        cli = start_client(procs, tmp_path, ls.getsockname()[1],
                           WS_OPTS + ";mux")
        local = socket.create_connection(("127.0.0.1", cli.port), 10)
        c, _ = ls.accept()
        peer = RawPeer(c)
        try:
            peer.accept_upgrade()
            peer.send(rawws.build_frame(rawws.OP_BIN, b"x", mask=True))
            f = peer.next_close()
            assert f.close_code == 1002, (f, cli.log())
            assert peer.wait_eof(10)
        finally:
            peer.close()
            local.close()
    finally:
        ls.close()


# ------------------------------------------------------ close-linger itself
def linger_exchange(procs, tmp_path, opts, server_closes=False):
    """Local sends b"up" and shuts down; the raw server reads it, sends
    b"down" (and, with server_closes, its close 1000).  Returns (seconds
    from the local EOF to the client's close frame, its code, what the
    local side received before its EOF, seconds until b"down" arrived)."""
    ls = raw_ws_listener()
    try:
        cli = start_client(procs, tmp_path, ls.getsockname()[1], opts)
        local = socket.create_connection(("127.0.0.1", cli.port), 10)
        local.settimeout(15)
        c, _ = ls.accept()
        peer = RawPeer(c, timeout=15)
        try:
            peer.accept_upgrade()
            local.sendall(b"up")
            local.shutdown(socket.SHUT_WR)
            t0 = time.monotonic()
            f = peer.read_frame(timeout=10)
            assert (f.opcode, f.payload) == (rawws.OP_BIN, b"up"), f
            peer.send_server_frame(rawws.OP_BIN, b"down")
            got = local.recv(4096)
            t_down = time.monotonic() - t0
            if server_closes:
                peer.send_server_frame(rawws.OP_CLOSE,
                                       rawws.close_payload(1000))
            f = peer.next_close(timeout=30)
            t_close = time.monotonic() - t0
            if not server_closes:
                peer.send_server_frame(rawws.OP_CLOSE, f.payload)
            while True:
                d = local.recv(4096)
                if not d:
                    break
                got += d
            return t_close, f.close_code, got, t_down
        finally:
            peer.close()
            local.close()
    finally:
        ls.close()


def test_close_linger_waits_for_the_server(procs, tmp_path):
    """Default 1 s: the close frame waits at least a good part of it, and
    data from the server meanwhile is delivered at once (not held for the
    linger: an 11 s linger shows it)."""
    t_close, code, got, t_down = linger_exchange(procs, tmp_path, WS_OPTS)
    assert code == 1000 and got == b"down", (code, got)
    assert t_close >= 0.8, "close %.3f s after the local EOF" % t_close
    # longer than the close wait (10 s): the linger is not cut short,
    # and still ends in a proper close
    t_close, code, got, t_down = linger_exchange(
        procs, tmp_path, WS_OPTS + ";close-linger=11")
    assert code == 1000 and got == b"down", (code, got)
    assert t_down < 8 and t_close >= 10, (t_down, t_close)


def test_close_linger_ends_when_the_server_closes(procs, tmp_path):
    """The server closes first: the client answers at once, a 30 s linger
    or not (bounded well below it)."""
    t_close, code, got, _ = linger_exchange(
        procs, tmp_path, WS_OPTS + ";close-linger=30", server_closes=True)
    assert code == 1000 and got == b"down", (code, got)
    assert t_close < 15, "answered %.1f s after the local EOF" % t_close


@pytest.mark.parametrize("mode", ["ws", "mux"])
def test_close_linger_zero_accepted(procs, tmp_path, mode):
    opts = WS_OPTS + ";close-linger=0" + (";mux" if mode == "mux" else "")
    if mode == "ws":
        t_close, code, got, _ = linger_exchange(procs, tmp_path, opts)
        assert code == 1000 and got == b"down", (code, got)
    else:
        start_client(procs, tmp_path, free_port(), opts)


@pytest.mark.parametrize("opts, want", [
    (WS_OPTS + ";close-linger=abc", "option 'close-linger': 'abc' is not "
     "a number of seconds from 0 to 60"),
    (WS_OPTS + ";close-linger=61", "'61' is not a number of seconds"),
    (WS_OPTS + ";close-linger=-1", "'-1' is not a number of seconds"),
    (WS_OPTS + ";close-linger=1.", "'1.' is not a number of seconds"),
    (WS_OPTS + ";close-linger", "option 'close-linger' needs a value"),
    ("close-linger=1", "option 'close-linger' needs 'ws'"),
])
def test_close_linger_bad_value_refused(opts, want):
    p = subprocess.run([CLIENT, "127.0.0.1:%d" % free_port(),
                        "127.0.0.1:%d" % free_port(), opts],
                       stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=10)
    err = p.stderr.decode(errors="replace")
    assert p.returncode == 1, (p.returncode, err)
    assert want in err, err


# ------------------------------------------ mux: the linger when stopping
@pytest.mark.parametrize("linger", [None, "0"], ids=["default", "0"])
def test_mux_stop_close_linger(websocksy, peers, tmp_path, linger):
    """Stopping (SIGTERM) with no stream left: the mux client keeps the
    channel close-linger (default 1 s) before its close frame, then exits
    0; the server sees a clean close 1001."""
    from test_client_mux import Client, run_many, ws_server
    srv = ws_server(websocksy, peers.tcp_echo())
    opts = "ws;host=a;path=/;mux" + (";close-linger=" + linger
                                     if linger else "")
    c = Client(tmp_path, "127.0.0.1:%d" % srv.port, opts, "muxlinger")
    try:
        run_many(c, 3, 65536)
        assert wait_for(lambda: c.log().count("closed:") >= 3, 10), c.log()
        t0 = time.monotonic()
        c.proc.send_signal(signal.SIGTERM)
        rc = c.proc.wait(20)
        took = time.monotonic() - t0
        assert rc == 0, c.log()
        if linger is None:
            assert took >= 0.8, "stopped %.3f s after SIGTERM" % took
        assert wait_for(lambda: "1001" in srv.stderr(), 10), \
            srv.stderr()[-3000:]
    finally:
        c.stop()
