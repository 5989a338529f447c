"""websocksy as a systemd service: log lines for stderr, the journal and
syslog; sd_notify (READY, STATUS, RELOADING, STOPPING, WATCHDOG) read from
a test NOTIFY_SOCKET; socket activation with systemd-socket-activate; the
privilege drop (user, group); `make install` of the units.

Each test runs the real binary with its own environment, so it starts the
process itself (the `websocksy` fixture takes no environment)."""
import datetime
import os
import re
import shutil
import signal
import socket
import subprocess
import time

import pytest

from conftest import (BIN, POLLER, REPO, SANITIZER_MARKERS, free_port,
                      short_tmpdir, stop_checked, tcp_peer_args, wait_for)
from rawws import OP_TEXT, RawWS

TS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


def echo_ok(port, text="ping?"):
    try:
        c = RawWS("127.0.0.1", port)
    except OSError:
        return False
    try:
        c.handshake()
        c.send_text(text)
        return c.read_message() == (OP_TEXT, text.encode())
    finally:
        c.close()


class Proc:
    """websocksy (or a wrapper around it: argv[0] is not BIN) with env
    added to ours, stderr in a file; stop() asserts a clean exit."""

    def __init__(self, argv, logpath, env=None, drop=()):
        e = dict(os.environ)
        for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID",
                  "JOURNAL_STREAM", "LISTEN_FDS", "LISTEN_PID",
                  "LISTEN_FDNAMES") + tuple(drop):
            e.pop(k, None)
        e.update(env or {})
        if POLLER:
            argv = list(argv) + ["-C", "poller=" + POLLER] \
                if not argv[-1].endswith(".ini") else list(argv)
        self.logpath = logpath
        self._log = open(logpath, "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=self._log,
                                     env=e)
        self.pid = self.proc.pid
        self.stopped = False

    def log(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode(errors="replace")

    def wait_log(self, text, timeout=10):
        ok = wait_for(lambda: text in self.log() or self.proc.poll() is not None,
                      timeout)
        assert ok and text in self.log(), "no %r in:\n%s" % (text, self.log())

    def stop(self):
        if not self.stopped:
            self.stopped = True
            stop_checked(self.proc, self._log, self.log, "websocksy", 10)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self._log.close()
        self.stopped = True


@pytest.fixture
def procs():
    started = []
    yield started
    errors = []
    for p in started:
        try:
            p.stop()
        except AssertionError as e:
            errors.append(str(e))
    if errors:
        pytest.fail("\n\n".join(errors))


def start(procs, tmp_path, args, env=None, name="err.log", **kw):
    p = Proc([BIN] + [str(a) for a in args], str(tmp_path / name), env, **kw)
    procs.append(p)
    return p


# ------------------------------------------------------------------ logging
def test_stderr_lines_have_iso8601_timestamps(procs, tmp_path, peers):
    peer = peers.tcp_echo()
    port = free_port()
    p = start(procs, tmp_path, ["-p", port, "-v"] + tcp_peer_args(peer))
    p.wait_log("listening on")
    assert echo_ok(port)
    p.stop()
    lines = p.log().splitlines()
    assert len(lines) >= 3, lines
    now = datetime.datetime.now(datetime.timezone.utc)
    for ln in lines:
        m = re.match(r"(%s) websocksy\[%d\]: (error|warn|info|debug): " % (TS, p.pid), ln)
        assert m, ln
        t = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%fZ")
        t = t.replace(tzinfo=datetime.timezone.utc)
        # UTC, and now: a clock off by hours (local time) would show
        assert abs((now - t).total_seconds()) < 600, (ln, now)


def journal_env(path):
    st = os.stat(path)
    return {"JOURNAL_STREAM": "%d:%d" % (st.st_dev, st.st_ino)}


def test_journal_stream_gets_priority_prefixes(procs, tmp_path, peers):
    """stderr is the journal's stream: "<N>level: text", no timestamp and
    no prog[pid] (journald adds both).  An error (a TLS reload of a broken
    certificate) is <3>, info is <6>."""
    certs = os.path.join(REPO, "tests", "certs")
    d = tmp_path / "tls"
    d.mkdir()
    shutil.copy(os.path.join(certs, "localhost.pem"), d / "c.pem")
    shutil.copy(os.path.join(certs, "localhost.key"), d / "k.pem")
    peer = peers.tcp_echo()
    port, tport = free_port(), free_port()
    log = tmp_path / "journal.log"
    log.write_bytes(b"")
    p = Proc([BIN, "-p", str(port), "-s", str(tport), "-C", "tls-cert=%s" % (d / "c.pem"),
              "-C", "tls-key=%s" % (d / "k.pem")] + tcp_peer_args(peer),
             str(log), journal_env(str(log)))
    procs.append(p)
    p.wait_log("listening on")
    assert echo_ok(port)
    (d / "c.pem").write_text("not a certificate\n")
    p.proc.send_signal(signal.SIGHUP)
    p.wait_log("tls reload failed")
    p.stop()
    lines = p.log().splitlines()
    assert any(re.match(r"<6>info: listening on ", ln) for ln in lines), lines
    assert any(re.match(r"<3>error: tls reload failed", ln) for ln in lines), lines
    for ln in lines:
        assert re.match(r"<[3467]>(error|warn|info|debug): ", ln), ln
        assert "websocksy[" not in ln and not re.search(TS, ln), ln


def test_journal_stream_of_another_file_keeps_timestamps(procs, tmp_path):
    """A JOURNAL_STREAM inherited by a process whose stderr goes elsewhere
    does not name its stderr: plain timestamped lines."""
    other = tmp_path / "other"
    other.write_text("")
    port = free_port()
    p = start(procs, tmp_path, ["-p", port, "-c", "host=127.0.0.1", "-c", "port=9"],
              env=journal_env(str(other)))
    p.wait_log("listening on")
    p.stop()
    assert re.search(r"^%s websocksy\[%d\]: info: listening on" % (TS, p.pid),
                     p.log(), re.M), p.log()
    assert "<6>" not in p.log()


def test_log_key_is_checked(tmp_path):
    r = subprocess.run([BIN, "-p", str(free_port()), "-C", "log=journal"],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
    assert r.returncode == 1
    assert b"-C log: 'journal': expected stderr or syslog" in r.stderr, r.stderr


def test_log_syslog(procs, tmp_path):
    """log = syslog: each line is a datagram to /dev/log, facility daemon,
    with the level's priority (<30> = daemon.info, <28> daemon.warning).
    Needs root and no syslog daemon of the machine's own at /dev/log."""
    if os.geteuid() != 0 or os.path.lexists("/dev/log"):
        pytest.skip("needs root and a free /dev/log")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        s.bind("/dev/log")
        s.settimeout(10)
        port = free_port()
        p = start(procs, tmp_path, ["-p", port, "-C", "log=syslog", "-c", "host=127.0.0.1",
                                    "-c", "port=9"])
        got = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(b"listening on" in g for g in got):
            try:
                got.append(s.recv(4096))
            except socket.timeout:
                break
        p.stop()
        try:
            while True:
                s.settimeout(1)
                got.append(s.recv(4096))
        except socket.timeout:
            pass
    finally:
        s.close()
        os.unlink("/dev/log")
    text = [g.decode(errors="replace") for g in got]
    assert any(re.match(r"<30>.*websocksy\[%d\]: info: listening on " % p.pid, t)
               for t in text), text
    assert any(re.match(r"<30>.*websocksy\[%d\]: info: stopped" % p.pid, t)
               for t in text), text
    assert "listening on" not in p.log(), p.log()
