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


def start_client(procs, tmp_path, remote_port, opts, name="client"):
    port = free_port()
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
