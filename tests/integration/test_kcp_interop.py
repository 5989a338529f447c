"""Raw KCP interop: websocksy-client 'kcp;mux=0' -> a kcp-go echo server.

Chain: local TCP -> websocksy-client (one KCP conversation per local
connection, no mux, no envelope; client/kcpraw.c) -> UDP -> tests/kcpgo
`echo-server` (kcp-go, stream mode, no FEC, no crypt) -> the same bytes
back.  The other direction (kcp-go client -> websocksy's KCP listener) is
test_kcp_server.py.

Binaries: WEBSOCKSY_CLIENT_BIN (default <repo>/build/websocksy-client) and
build/kcpgo (make kcpgo; skipped when it is missing).  Loopback only, every
wait bounded.
"""
import hashlib
import os
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import REPO, SANITIZER_MARKERS, free_port, vmrss_kb, wait_for

CLIENT = os.path.abspath(os.environ.get(
    "WEBSOCKSY_CLIENT_BIN", os.path.join(REPO, "build", "websocksy-client")))

pytestmark = pytest.mark.skipif(not os.access(CLIENT, os.X_OK),
                                reason="no websocksy-client at %s" % CLIENT)

MB = 1024 * 1024


def kcpgo_bin():
    for base in (os.path.dirname(CLIENT), os.path.join(REPO, "build")):
        p = os.path.join(base, "kcpgo")
        if os.access(p, os.X_OK):
            return p
    pytest.skip("build/kcpgo not built (make kcpgo: needs golang-go and "
                "golang-github-xtaci-kcp-dev)")


class Proc:
    """A child whose stdout+stderr go to a file (no pipe to fill up)."""

    def __init__(self, tmp_path, name, args):
        self.path = str(tmp_path / (name + ".log"))
        self._out = open(self.path, "wb")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                     stdout=self._out, stderr=self._out)

    def log(self):
        with open(self.path, "rb") as f:
            return f.read().decode(errors="replace")

    def alive(self):
        return self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._out.close()
        return self.proc.returncode


@pytest.fixture
def kcp_echo(tmp_path):
    """kcp-go's echo server on a UDP port the kernel picked; (port, proc)."""
    p = Proc(tmp_path, "kcpgo", [kcpgo_bin(), "echo-server", "127.0.0.1:0"])
    assert wait_for(lambda: "listening " in p.log() or not p.alive(), 10), \
        p.log()
    m = re.search(r"listening 127\.0\.0\.1:(\d+)", p.log())
    assert m and p.alive(), p.log()
    yield int(m.group(1)), p
    p.stop(signal.SIGKILL)


@pytest.fixture
def raw_client(tmp_path, kcp_echo):
    """websocksy-client in raw KCP mode towards the kcp-go echo server."""
    made = []

    def start(options="kcp;mux=0"):
        port = free_port()
        c = Proc(tmp_path, "client%d" % len(made),
                 [CLIENT, "-v", "127.0.0.1:%d" % port,
                  "127.0.0.1:%d" % kcp_echo[0], options])
        c.port = port
        made.append(c)
        assert wait_for(lambda: "listening on" in c.log() or not c.alive(),
                        10), c.log()
        assert c.alive(), c.log()
        return c

    yield start
    for c in made:
        c.stop()
        log = c.log()
        for m in SANITIZER_MARKERS:
            assert m not in log, log[-4000:]


def echo_roundtrip(port, data, chunk=65536, half_close=False,
                   read_delay=0.0, timeout=60):
    """Send data through the relay while reading the echo; returns it."""
    s = socket.create_connection(("127.0.0.1", port), 10)
    s.settimeout(timeout)
    got = bytearray()
    err = []

    def writer():
        try:
            view = memoryview(data)
            for i in range(0, len(data), chunk):
                s.sendall(view[i:i + chunk])
            if half_close:
                s.shutdown(socket.SHUT_WR)
        except OSError as e:  # pragma: no cover - reported below
            err.append(e)

    w = threading.Thread(target=writer, daemon=True)
    w.start()
    if read_delay:
        time.sleep(read_delay)
    deadline = time.monotonic() + timeout
    try:
        while len(got) < len(data) and time.monotonic() < deadline:
            b = s.recv(1 << 20)
            if not b:
                break
            got += b
        w.join(max(0.0, deadline - time.monotonic()))
        assert not err, err
        return bytes(got), s
    except BaseException:
        s.close()
        raise


def sanitized(pid):
    with open("/proc/%d/maps" % pid) as f:
        return "libasan" in f.read()


def check(got, data):
    if got != data:
        i = next((i for i, (a, b) in enumerate(zip(got, data)) if a != b),
                 min(len(got), len(data)))
        pytest.fail("echo differs at byte %d (got %d of %d bytes)"
                    % (i, len(got), len(data)))


def convs(log):
    return re.findall(r"kcp: conversation ([0-9a-f]{8}) to .* \(raw\)", log)


@pytest.mark.parametrize("size", [1 * MB, 8 * MB], ids=["1MB", "8MB"])
def test_raw_kcp_echo(raw_client, size):
    c = raw_client()
    data = os.urandom(size)
    got, s = echo_roundtrip(c.port, data)
    s.close()
    check(got, data)
    assert len(convs(c.log())) == 1, c.log()
    assert "raw kcp, no mux" in c.log()


def test_raw_kcp_concurrent(raw_client):
    """Several connections at once: one conversation each, no mix-up."""
    c = raw_client()
    n, size = 8, 2 * MB
    datas = [os.urandom(size) for _ in range(n)]
    results = [None] * n

    def one(i):
        try:
            got, s = echo_roundtrip(c.port, datas[i], chunk=16384 + 977 * i)
            s.close()
            results[i] = hashlib.sha256(got).hexdigest()
        except Exception as e:  # pragma: no cover - reported below
            results[i] = repr(e)

    ts = [threading.Thread(target=one, args=(i,), daemon=True)
          for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(90)
    for i in range(n):
        assert results[i] == hashlib.sha256(datas[i]).hexdigest(), \
            (i, results[i], c.log()[-3000:])
    cv = convs(c.log())
    assert len(cv) == n and len(set(cv)) == n, c.log()
    # every connection ends once its local side has gone (linger bounded)
    assert wait_for(lambda: c.log().count("closed: ") == n, 15), c.log()


def test_raw_kcp_half_close(raw_client):
    """Local EOF: everything sent is acked and the echo still arrives;
    then the client closes the connection itself (KCP has no FIN)."""
    c = raw_client()
    data = os.urandom(3 * MB + 123)
    got, s = echo_roundtrip(c.port, data, half_close=True)
    try:
        check(got, data)
        t0 = time.monotonic()
        assert s.recv(1) == b""
        # quiet period (1 s) after the last datagram, never the bound
        assert time.monotonic() - t0 < 8
    finally:
        s.close()
    assert wait_for(lambda: "closed: %d bytes up, %d down"
                    % (len(data), len(data)) in c.log(), 5), c.log()


def test_raw_kcp_slow_reader(raw_client):
    """A local reader that stalls: KCP's windows hold the data (bounded
    memory) and everything arrives once it reads again."""
    c = raw_client()
    data = os.urandom(16 * MB)
    rss0 = vmrss_kb(c.proc.pid)
    peak = [rss0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            try:
                peak[0] = max(peak[0], vmrss_kb(c.proc.pid))
            except (OSError, AssertionError):
                return
            time.sleep(0.05)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        got, s = echo_roundtrip(c.port, data, read_delay=3.0)
        s.close()
    finally:
        stop.set()
        t.join(5)
    check(got, data)
    # send buffer + receive window + one down buffer: a few MB, not 16
    # (ASan's quarantine keeps freed memory: no bound to check there)
    if not sanitized(c.proc.pid):
        assert peak[0] - rss0 < 12 * 1024, (rss0, peak[0])


def test_raw_kcp_options(tmp_path):
    """psk is refused with mux=0: kcp-go peers do not speak the envelope."""
    key = "A" * 43 + "="
    for opt, why in (("kcp;mux=0;psk=" + key, "'psk' cannot be used"),
                     ("kcp;mux=0;mux-window=65536", "needs 'mux'"),
                     ("kcp;mux=2", "'mux'")):
        p = subprocess.run([CLIENT, "127.0.0.1:%d" % free_port(),
                            "127.0.0.1:9", opt], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=5)
        assert p.returncode == 1, (opt, p.stderr)
        assert why in p.stderr.decode(), (opt, p.stderr)


def test_raw_kcp_sigterm(raw_client):
    """SIGTERM with a connection open: it ends as on local EOF (what was
    sent is acked first) and the client exits within the bound."""
    c = raw_client()
    s = socket.create_connection(("127.0.0.1", c.port), 10)
    try:
        s.settimeout(20)
        s.sendall(b"x" * 100000)
        got = b""
        while len(got) < 100000:
            b = s.recv(65536)
            assert b
            got += b
        assert got == b"x" * 100000
        t0 = time.monotonic()
        assert c.stop() == 0, c.log()
        assert time.monotonic() - t0 < 12, c.log()
        assert "closed: 100000 bytes up, 100000 down" in c.log(), c.log()
    finally:
        s.close()
