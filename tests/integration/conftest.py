"""Fixtures for the websocksy integration tests.

The tests run the real binary (env WEBSOCKSY_BIN, default <repo>/build/websocksy)
against real peers on loopback.  Everything is bounded in time.
"""
import asyncio
import hashlib
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rawws  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.abspath(os.environ.get("WEBSOCKSY_BIN", os.path.join(REPO, "build", "websocksy")))
SANITIZER_MARKERS = ("AddressSanitizer", "runtime error", "LeakSanitizer",
                     "UndefinedBehaviorSanitizer")

# 500 concurrent connections need ~1000 descriptors here and in the server
# (which inherits our limits)
_soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
_want = 8192 if _hard == resource.RLIM_INFINITY else min(_hard, 8192)
if _soft != resource.RLIM_INFINITY and _soft < _want:
    resource.setrlimit(resource.RLIMIT_NOFILE, (_want, _hard))


def pytest_collection_modifyitems(config, items):
    if not os.access(BIN, os.X_OK):
        skip = pytest.mark.skip(reason="websocksy binary not found at %s" % BIN)
        for it in items:
            it.add_marker(skip)


# --------------------------------------------------------------------- utils
def free_port(family=socket.AF_INET, kind=socket.SOCK_STREAM):
    s = socket.socket(family, kind)
    s.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def closed_port():
    """A TCP port on 127.0.0.1 where nothing listens."""
    return free_port()


def run_async(coro, timeout=30):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def wait_for(pred, timeout=5.0, interval=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(interval)
    return bool(pred())


def vmrss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


def short_tmpdir():
    """A short directory for unix socket paths (sun_path is 108 bytes)."""
    return tempfile.mkdtemp(prefix="wsy", dir="/tmp")


def run_binary(args, cwd=None, timeout=5):
    """Run websocksy to completion (for --help, config errors...)."""
    p = subprocess.run([BIN] + list(args), cwd=cwd, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    out, err = p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")
    for m in SANITIZER_MARKERS:
        assert m not in err, "sanitizer report:\n" + err
    return p.returncode, out, err


# -------------------------------------------------------------------- server
def stop_checked(proc, logfile, read_log, name, timeout):
    """SIGTERM proc (if it still runs), then assert that it exits 0 within
    timeout seconds with no sanitizer report in its log; read_log() gives
    the log's text, logfile (its open file) is closed."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
        logfile.close()
        raise AssertionError("%s did not exit within %g s of SIGTERM:\n%s"
                             % (name, timeout, read_log()[-4000:]))
    logfile.close()
    err = read_log()
    for m in SANITIZER_MARKERS:
        assert m not in err, "sanitizer report from %s:\n%s" % (
            name, err[-8000:])
    assert rc == 0, "%s exited with status %s:\n%s" % (name, rc, err[-4000:])


# `make test-poll` reruns a subset with WEBSOCKSY_POLLER=poll: servers
# started here get it as their `poller` key (clients read the variable).
POLLER = os.environ.get("WEBSOCKSY_POLLER", "")


def with_poller_ini(text):
    """The INI text with `poller = POLLER` in [core], when set."""
    if not POLLER or re.search(r"^\s*poller\s*=", text, re.M):
        return text
    if re.search(r"^\s*\[core\]", text, re.M):
        return re.sub(r"^(\s*\[core\][^\n]*\n)", r"\g<1>poller = %s\n" % POLLER,
                      text, count=1, flags=re.M)
    return text + "\n[core]\npoller = %s\n" % POLLER


class Server:
    def __init__(self, args, cwd, stderr_path, port, probe_hosts):
        self.args = args
        self.port = port
        self.stderr_path = stderr_path
        self.probe_hosts = probe_hosts
        self.stopped = False
        self._err = open(stderr_path, "wb")
        self.proc = subprocess.Popen([BIN] + list(args), cwd=cwd, stdin=subprocess.DEVNULL,
                                     stdout=self._err, stderr=self._err)
        self.pid = self.proc.pid

    @property
    def url(self):
        return "ws://127.0.0.1:%d/" % self.port

    def stderr(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode(errors="replace")

    def wait_ready(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("websocksy %s exited with %s before listening:\n%s"
                                     % (self.args, self.proc.returncode, self.stderr()))
            for h in self.probe_hosts:
                try:
                    s = socket.create_connection((h, self.port), timeout=0.5)
                    s.close()
                    self.wait_listening_line(deadline)
                    self.check_poller()
                    return self
                except OSError:
                    pass
            time.sleep(0.02)
        raise AssertionError("websocksy %s not listening on %d within %ss:\n%s"
                             % (self.args, self.port, timeout, self.stderr()))

    def wait_listening_line(self, deadline):
        """The sockets listen a moment before the "listening on" line is
        written (every socket is bound before the first line): a test that
        reads the start-up lines right after the port answers must not
        race them.  Servers told to be quiet (-q, log-level) are not
        waited for."""
        quiet = "-q" in self.args or any("log-level" in a for a in self.args)
        if not quiet and self.args and os.path.isfile(self.args[0]):
            with open(self.args[0], errors="replace") as f:
                quiet = "log-level" in f.read()
        if quiet:
            return
        end = min(deadline, time.monotonic() + 5)
        while time.monotonic() < end:
            if "listening on" in self.stderr() or self.proc.poll() is not None:
                return
            time.sleep(0.01)

    def check_poller(self):
        """Under `make test-poll`, a server that logs at info level says it
        uses the poller asked for."""
        want = POLLER
        for a in self.args:
            if a.startswith("poller="):
                want = a[len("poller="):]   # the test asked for one itself
        err = self.stderr()
        if POLLER and want and "listening on" in err:
            assert "poller: %s" % want in err, err

    def raw(self, host="127.0.0.1", **kw):
        return rawws.RawWS(host, self.port, **kw)

    def ws(self, host="127.0.0.1", **kw):
        """A raw client that has completed the handshake."""
        c = rawws.RawWS(host, self.port)
        c.handshake(**kw)
        return c

    def signal(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)

    def wait_exit(self, timeout=5.0):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self):
        """SIGTERM, then assert a clean exit within 5 s and no sanitizer report."""
        if self.stopped:
            return
        self.stopped = True
        stop_checked(self.proc, self._err, self.stderr, "websocksy", 5)


@pytest.fixture
def websocksy(tmp_path, peers):
    """Factory: websocksy(*args, ini=None, port=None, probe=...) -> Server.

    Without ini, "-p PORT" is added unless args contain -p.  With ini (the
    file text; "{port}" is replaced by the port), the file is written to
    tmp_path and passed as the only argument.  Depends on `peers` so that at
    teardown the clients are closed, then the server stopped, then the peers."""
    servers = []

    def start(*args, ini=None, port=None, probe=("127.0.0.1",), ready=True):
        args = [str(a) for a in args]
        if port is None:
            port = free_port()
        if ini is not None:
            path = tmp_path / "websocksy.ini"
            path.write_text(with_poller_ini(ini.replace("{port}", str(port))))
            args = [str(path)]
        elif "-p" in args:
            port = int(args[args.index("-p") + 1])
        else:
            args = ["-p", str(port)] + args
        if (ini is None and POLLER and args and not args[0].endswith((".ini", ".cfg"))
                and not any(a.startswith("poller=") for a in args)):
            args = ["-C", "poller=" + POLLER] + args
        s = Server(args, str(tmp_path), str(tmp_path / ("stderr%d.log" % len(servers))),
                   port, probe)
        servers.append(s)
        if ready:
            s.wait_ready()
        return s

    yield start
    rawws.close_all()
    errors = []
    for s in servers:
        try:
            s.stop()
        except AssertionError as e:
            errors.append(str(e))
    if errors:
        pytest.fail("\n\n".join(errors))


# --------------------------------------------------------------------- peers
class ConnRecord:
    """What a peer saw on one connection."""
    def __init__(self, sock):
        self.sock = sock
        self.data = bytearray()
        self.sha = hashlib.sha256()
        self.nbytes = 0
        self.eof = threading.Event()     # peer saw EOF from websocksy
        self.done = threading.Event()    # handler finished
        self.sent = 0
        self.error = None
        self.keep_data = True

    def add(self, d):
        self.sha.update(d)
        self.nbytes += len(d)
        if self.keep_data:
            self.data += d


class StreamServer:
    """A listening TCP / unix stream socket; each accepted connection runs
    handler(rec, server) in its own thread."""

    def __init__(self, handler, family=socket.AF_INET, addr=("127.0.0.1", 0)):
        self.handler = handler
        self.family = family
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        if family != socket.AF_UNIX:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(addr)
        self.sock.listen(1024)
        self.sock.settimeout(0.2)
        self.addr = self.sock.getsockname()
        self.stopping = threading.Event()
        self.conns = []
        self.cond = threading.Condition()
        self.threads = []
        self.t = threading.Thread(target=self._accept_loop, daemon=True)
        self.t.start()

    @property
    def port(self):
        return self.addr[1]

    def _accept_loop(self):
        while not self.stopping.is_set():
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            c.settimeout(0.5)
            rec = ConnRecord(c)
            with self.cond:
                self.conns.append(rec)
                self.cond.notify_all()
            t = threading.Thread(target=self._run, args=(rec,), daemon=True)
            self.threads.append(t)
            t.start()

    def _run(self, rec):
        try:
            self.handler(rec, self)
        except Exception as e:  # recorded for the test to inspect
            rec.error = e
        finally:
            try:
                rec.sock.close()
            except OSError:
                pass
            rec.done.set()

    def wait_conn(self, index=0, timeout=5.0):
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.conns) <= index:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("peer got no connection #%d" % index)
                self.cond.wait(left)
            return self.conns[index]

    def recv(self, rec):
        """recv that honours stop; returns b'' on EOF, None on timeout."""
        try:
            return rec.sock.recv(262144)
        except socket.timeout:
            return None
        except (ConnectionResetError, BrokenPipeError):
            return b""

    def close(self):
        self.stopping.set()
        try:
            self.sock.close()
        except OSError:
            pass
        self.t.join(2)
        for r in list(self.conns):
            r.done.wait(2)
        if self.family == socket.AF_UNIX:
            try:
                os.unlink(self.addr)
            except OSError:
                pass


def echo_handler(rec, srv):
    s = rec.sock
    while not srv.stopping.is_set():
        d = srv.recv(rec)
        if d is None:
            continue
        if not d:
            rec.eof.set()
            return
        rec.add(d)
        s.settimeout(10)
        try:
            s.sendall(d)
        except OSError:
            return
        finally:
            s.settimeout(0.5)
        rec.sent += len(d)


def make_sink_handler(on_eof=None, hold=False):
    """Record everything until EOF; then call on_eof(rec) (may send a reply);
    then close, or with hold=True keep the socket open until stopped."""
    def handler(rec, srv):
        while not srv.stopping.is_set():
            d = srv.recv(rec)
            if d is None:
                continue
            if not d:
                rec.eof.set()
                break
            rec.add(d)
        if on_eof is not None and rec.eof.is_set():
            on_eof(rec)
        while hold and not srv.stopping.is_set():
            time.sleep(0.05)
    return handler


def make_sender_handler(data, delay=0.0):
    """Send data, then close (a real close(), not a shutdown)."""
    def handler(rec, srv):
        if delay:
            time.sleep(delay)
        rec.sock.settimeout(30)
        rec.sock.sendall(data)
        rec.sent = len(data)
    return handler


def manual_handler(rec, srv):
    """Leave the connection to the test (rec.sock); closes when stopped or
    when the test sets rec.done-equivalent rec.release."""
    rec.release = threading.Event()
    while not srv.stopping.is_set() and not rec.release.is_set():
        time.sleep(0.02)


class DgramEcho:
    """UDP or unix-dgram echo: each datagram is sent back to its sender."""

    def __init__(self, family=socket.AF_INET, addr=("127.0.0.1", 0)):
        self.family = family
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.bind(addr)
        self.sock.settimeout(0.2)
        self.addr = self.sock.getsockname()
        self.received = []      # (sender address, datagram)
        self.stopping = threading.Event()
        self.t = threading.Thread(target=self._loop, daemon=True)
        self.t.start()

    @property
    def port(self):
        return self.addr[1]

    def _loop(self):
        while not self.stopping.is_set():
            try:
                d, a = self.sock.recvfrom(262144)
            except socket.timeout:
                continue
            except OSError:
                return
            self.received.append((a, d))
            try:
                if a:
                    self.sock.sendto(d, a)
            except OSError:
                pass

    def close(self):
        self.stopping.set()
        self.t.join(2)
        self.sock.close()
        if self.family == socket.AF_UNIX:
            try:
                os.unlink(self.addr)
            except OSError:
                pass


@pytest.fixture
def peers():
    """Factory for peers; all are closed at teardown.

    peers.tcp_echo(), peers.tcp_sink(on_eof=None, hold=False),
    peers.tcp_sender(data), peers.tcp_manual(), peers.tcp6_echo(),
    peers.unix_echo(), peers.udp_echo(), peers.unix_dgram_echo()"""
    made = []
    dirs = []

    class P:
        @staticmethod
        def tcp(handler, family=socket.AF_INET, host="127.0.0.1"):
            s = StreamServer(handler, family, (host, 0))
            made.append(s)
            return s

        @staticmethod
        def tcp_echo():
            return P.tcp(echo_handler)

        @staticmethod
        def tcp6_echo():
            return P.tcp(echo_handler, socket.AF_INET6, "::1")

        @staticmethod
        def tcp_sink(on_eof=None, hold=False):
            return P.tcp(make_sink_handler(on_eof, hold))

        @staticmethod
        def tcp_sender(data, delay=0.0):
            return P.tcp(make_sender_handler(data, delay))

        @staticmethod
        def tcp_manual():
            return P.tcp(manual_handler)

        @staticmethod
        def sockdir():
            d = short_tmpdir()
            dirs.append(d)
            return d

        @staticmethod
        def unix_echo():
            path = os.path.join(P.sockdir(), "echo.sock")
            s = StreamServer(echo_handler, socket.AF_UNIX, path)
            made.append(s)
            return s

        @staticmethod
        def udp_echo():
            s = DgramEcho(socket.AF_INET, ("127.0.0.1", 0))
            made.append(s)
            return s

        @staticmethod
        def unix_dgram_echo():
            path = os.path.join(P.sockdir(), "dgram.sock")
            s = DgramEcho(socket.AF_UNIX, path)
            made.append(s)
            return s

    yield P
    for s in made:
        s.close()
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)


def tcp_peer_args(peer, *extra):
    """-c flags that point the static backend at a TCP peer on 127.0.0.1."""
    return ["-c", "host=127.0.0.1", "-c", "port=%d" % peer.port] + list(extra)
