"""websocksy's KCP listener (kcp-listen, core/kcpserve.c).

Raw KCP interop uses the test-only echo session framing
tests/plugins/framing_kcpecho.c, selected with -C kcp-framing=kcpecho, so
that a plain kcp-go peer (tests/kcpgo, no mux) checks the transport byte
for byte.  The PSK envelope, address moves and drops are driven by a small
KCP client written here from docs/KCP-MUX.md §6 (enough for loopback:
PUSH/ACK, in-order reassembly, resend on a timer).
"""
import hashlib
import os
import random
import signal
import socket
import struct
import subprocess
import time

import pytest

from conftest import BIN, REPO, free_port, wait_for

try:
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
except ImportError:  # pragma: no cover
    ChaCha20Poly1305 = None

PUSH, ACK, WASK, WINS = 81, 82, 83, 84
HDR = struct.Struct("<IBBHIIII")
MSS = 1400 - 24 - 36


def near_bin(*names):
    """A build product next to the binary under test, else in build/."""
    for base in (os.path.dirname(BIN), os.path.join(REPO, "build")):
        p = os.path.join(base, *names)
        if os.path.exists(p):
            return p
    return None


def kcpgo():
    p = near_bin("kcpgo")
    if p is None:
        pytest.skip("build/kcpgo not built (make kcpgo: needs golang-go "
                    "and golang-github-xtaci-kcp-dev)")
    return p


def echo_plugins():
    p = near_bin("testplugins", "framing_kcpecho.so")
    if p is None:
        pytest.skip("framing_kcpecho.so not built")
    return os.path.dirname(p)


def free_udp_port(host="127.0.0.1"):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.bind((host, 0))
    p = s.getsockname()[1]
    s.close()
    return p


def start_echo(websocksy, monkeypatch, *extra, listen="127.0.0.1"):
    """websocksy with a KCP listener whose sessions echo; returns
    (server, (host, port))."""
    port = free_udp_port("::1" if ":" in listen else "127.0.0.1")
    spec = ("[%s]:%d" if ":" in listen else "%s:%d") % (listen, port)
    srv = websocksy("-c", "host=127.0.0.1", "-c", "port=9",
                    "-C", "plugins=" + echo_plugins(),
                    "-C", "kcp-framing=kcpecho",
                    "-C", "kcp-listen=" + spec, *extra)
    assert wait_for(lambda: "listening on " + spec in srv.stderr(), 5), \
        srv.stderr()
    return srv, port


# ------------------------------------------------------------ mini KCP
class MiniKCP:
    """One KCP conversation in stream mode, for loopback tests only."""

    def __init__(self, conv, key=None, sock=None, addr=None):
        self.conv = conv
        self.aead = ChaCha20Poly1305(key) if key else None
        self.sock = sock
        self.addr = addr
        self.sn = 0
        self.rcv_nxt = 0
        self.ooo = {}
        self.unacked = {}          # sn -> segment bytes
        self.data = bytearray()
        self.sent = []             # every datagram sent, as sent

    def seal(self, pt, ts_ms=None):
        if self.aead is None:
            return pt
        if ts_ms is None:
            ts_ms = int(time.time() * 1000)
        nonce = os.urandom(12)
        return nonce + self.aead.encrypt(nonce, struct.pack(">Q", ts_ms) + pt,
                                          None)

    def open(self, dg):
        if self.aead is None:
            return dg
        pt = self.aead.decrypt(dg[:12], dg[12:], None)
        return pt[8:]

    def seg(self, cmd, sn, payload=b"", ts=0):
        return HDR.pack(self.conv, cmd, 0, 1024, ts, sn, self.rcv_nxt,
                        len(payload)) + payload

    def xmit(self, pt):
        dg = self.seal(pt)
        self.sent.append(dg)
        self.sock.sendto(dg, self.addr)

    def send(self, data):
        for i in range(0, len(data), MSS):
            s = self.seg(PUSH, self.sn, data[i:i + MSS],
                         ts=int(time.monotonic() * 1000) & 0xffffffff)
            self.unacked[self.sn] = s
            self.sn += 1
            self.xmit(s)

    def input(self, dg):
        p = self.open(dg)
        acks = b""
        off = 0
        while off + 24 <= len(p):
            conv, cmd, frg, wnd, ts, sn, una, ln = HDR.unpack_from(p, off)
            body = bytes(p[off + 24:off + 24 + ln])
            off += 24 + ln
            assert conv == self.conv
            for k in [k for k in self.unacked if k < una]:
                del self.unacked[k]
            if cmd == ACK:
                self.unacked.pop(sn, None)
            elif cmd == PUSH:
                if sn >= self.rcv_nxt:
                    self.ooo[sn] = body
                while self.rcv_nxt in self.ooo:
                    self.data += self.ooo.pop(self.rcv_nxt)
                    self.rcv_nxt += 1
                acks += self.seg(ACK, sn, ts=ts)
            elif cmd == WASK:
                acks += self.seg(WINS, 0)
        if acks:
            self.xmit(acks)

    def run_until(self, pred, timeout=5.0):
        """Receive (and resend every 200 ms) until pred() holds."""
        deadline = time.monotonic() + timeout
        resend = time.monotonic() + 0.2
        while not pred():
            now = time.monotonic()
            if now > deadline:
                return False
            if now > resend:
                for s in list(self.unacked.values()):
                    self.xmit(s)
                resend = now + 0.2
            self.sock.settimeout(max(0.01, min(resend, deadline) - now))
            try:
                dg, _ = self.sock.recvfrom(65536)
            except socket.timeout:
                continue
            self.input(dg)
        return True

    def echo(self, data, timeout=5.0):
        want = len(self.data) + len(data)
        self.send(data)
        assert self.run_until(lambda: len(self.data) >= want and
                              not self.unacked, timeout), \
            "echo of %d bytes: got %d" % (len(data), len(self.data))
        return bytes(self.data[want - len(data):want])


def udp_sock(host="127.0.0.1"):
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                      socket.SOCK_DGRAM)
    s.bind((host, 0))
    return s


def silent(sock, secs=1.0):
    """True if nothing at all arrives on sock for secs."""
    sock.settimeout(secs)
    try:
        sock.recvfrom(65536)
    except socket.timeout:
        return True
    return False


def opened(srv):
    return srv.stderr().count("session open")


def new_key():
    return os.urandom(32)


def b64(key):
    import base64
    return base64.b64encode(key).decode()


# --------------------------------------------------- kcp-go interop (no key)
def run_kcpgo_clients(addr, sizes, timeout=60):
    procs = [subprocess.Popen([kcpgo(), "client", addr, str(n), str(i + 1)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for i, n in enumerate(sizes)]
    outs = []
    for p in procs:
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
        outs.append((p.returncode, out.decode(), err.decode()))
    return outs


def test_kcpgo_client_echo_byte_identical(websocksy, monkeypatch):
    kcpgo()
    srv, port = start_echo(websocksy, monkeypatch)
    # the client compares the echo byte for byte and says "ok SIZE"
    sizes = [1, 1376, 1377, 100000, 2 << 20, 2 << 20, 2 << 20, 2 << 20]
    for (rc, out, err), n in zip(run_kcpgo_clients("127.0.0.1:%d" % port,
                                                   sizes), sizes):
        assert rc == 0 and out.startswith("ok %d " % n), (rc, out, err,
                                                          srv.stderr())
    assert opened(srv) == len(sizes)


def test_kcpgo_dual_stack(websocksy, monkeypatch):
    kcpgo()
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    port = free_udp_port("::1")
    spec = "[::]:%d" % port
    srv = websocksy("-c", "host=127.0.0.1", "-c", "port=9",
                    "-C", "plugins=" + echo_plugins(),
                    "-C", "kcp-framing=kcpecho",
                    "-C", "kcp-listen=" + spec)
    assert wait_for(lambda: "listening on " + spec in srv.stderr(), 5)
    for addr in ("127.0.0.1:%d" % port, "[::1]:%d" % port):
        (rc, out, err), = run_kcpgo_clients(addr, [300000])
        assert rc == 0 and out.startswith("ok 300000 "), (addr, out, err)


def test_mini_client_echo_no_key(websocksy, monkeypatch):
    srv, port = start_echo(websocksy, monkeypatch)
    s = udp_sock()
    k = MiniKCP(0x1234abcd, sock=s, addr=("127.0.0.1", port))
    data = bytes(random.Random(3).getrandbits(8) for _ in range(5000))
    assert k.echo(data) == data
    assert wait_for(lambda: "kcp conv 1234abcd 127.0.0.1:%d: session open"
                    % s.getsockname()[1] in srv.stderr(), 2), srv.stderr()


# ----------------------------------------------- what must not get an answer
def test_no_key_stray_segments_allocate_nothing(websocksy, monkeypatch):
    """Without a key only a plausible first PUSH (sn 0, una 0) opens a
    session; an ACK, a later PUSH or junk for an unknown conv is dropped
    without an answer."""
    srv, port = start_echo(websocksy, monkeypatch)
    s = udp_sock()
    addr = ("127.0.0.1", port)
    k = MiniKCP(0x0badf00d, sock=s, addr=addr)
    s.sendto(k.seg(PUSH, 5, b"late"), addr)
    s.sendto(k.seg(ACK, 0), addr)
    s.sendto(k.seg(WASK, 0), addr)
    s.sendto(os.urandom(100), addr)
    s.sendto(b"\0" * 10, addr)
    bad = bytearray(k.seg(PUSH, 0, b"x"))
    bad[20] = 200           # len past the end: malformed
    s.sendto(bytes(bad), addr)
    assert silent(s, 1.0)
    assert opened(srv) == 0, srv.stderr()


def test_no_key_move_refused_unless_allowed(websocksy, monkeypatch):
    srv, port = start_echo(websocksy, monkeypatch)
    a, b = udp_sock(), udp_sock()
    k = MiniKCP(0x600d0001, sock=a, addr=("127.0.0.1", port))
    assert k.echo(b"first") == b"first"
    k.sock = b
    k.send(b"second")
    assert silent(b, 1.0)                 # the moved sender hears nothing
    assert "moved" not in srv.stderr()
    k.sock = a                            # the old address still works
    assert k.run_until(lambda: bytes(k.data) == b"firstsecond", 3)


def test_no_key_move_allowed(websocksy, monkeypatch):
    srv, port = start_echo(websocksy, monkeypatch, "-C", "kcp-allow-move=1")
    a, b = udp_sock(), udp_sock()
    k = MiniKCP(0x600d0002, sock=a, addr=("127.0.0.1", port))
    assert k.echo(b"first") == b"first"
    k.sock = b
    assert k.echo(b"second") == b"second"
    assert "moved from 127.0.0.1:%d to 127.0.0.1:%d" % (
        a.getsockname()[1], b.getsockname()[1]) in srv.stderr()


def test_session_limit(websocksy, monkeypatch):
    srv, port = start_echo(websocksy, monkeypatch, "-C", "kcp-sessions=2")
    socks = [udp_sock() for _ in range(3)]
    ks = [MiniKCP(0x51000000 + i, sock=socks[i], addr=("127.0.0.1", port))
          for i in range(3)]
    assert ks[0].echo(b"a") == b"a"
    assert ks[1].echo(b"b") == b"b"
    ks[2].send(b"c")
    assert silent(socks[2], 1.0)
    assert opened(srv) == 2


def test_session_timeout(websocksy, monkeypatch):
    srv, port = start_echo(websocksy, monkeypatch,
                           "-C", "kcp-session-timeout=1")
    s = udp_sock()
    k = MiniKCP(0x7100aaaa, sock=s, addr=("127.0.0.1", port))
    assert k.echo(b"hi") == b"hi"
    assert wait_for(lambda: "kcp conv 7100aaaa" in srv.stderr() and
                    "no input for 1000 ms" in srv.stderr(), 4), srv.stderr()


# ------------------------------------------------------------ with a key
def need_aead():
    if ChaCha20Poly1305 is None:
        pytest.skip("python3-cryptography missing")


def test_psk_echo_and_address_move(websocksy, monkeypatch):
    """A client that changes its source address (a new socket, the same
    conv) keeps its session when the datagrams authenticate."""
    need_aead()
    key = new_key()
    srv, port = start_echo(websocksy, monkeypatch, "-C", "kcp-psk=" + b64(key))
    a, b, c = udp_sock(), udp_sock(), udp_sock()
    k = MiniKCP(0x5e55a001, key=key, sock=a, addr=("127.0.0.1", port))
    data = os.urandom(20000)
    assert k.echo(data) == data
    k.sock = b
    assert k.echo(b"after the move") == b"after the move"
    assert "kcp conv 5e55a001: moved from 127.0.0.1:%d to 127.0.0.1:%d" % (
        a.getsockname()[1], b.getsockname()[1]) in srv.stderr()
    k.sock = c
    more = os.urandom(50000)
    assert k.echo(more) == more
    assert opened(srv) == 1, srv.stderr()


def test_psk_forged_and_replayed_get_no_reply(websocksy, monkeypatch):
    need_aead()
    key = new_key()
    srv, port = start_echo(websocksy, monkeypatch, "-C", "kcp-psk=" + b64(key))
    addr = ("127.0.0.1", port)
    # a genuine session, whose datagrams we capture
    a = udp_sock()
    k = MiniKCP(0x5e55b001, key=key, sock=a, addr=addr)
    assert k.echo(b"genuine") == b"genuine"
    captured = list(k.sent)
    assert opened(srv) == 1

    spy = udp_sock()
    other = MiniKCP(0x5e55b002, key=new_key(), sock=spy, addr=addr)
    plain = MiniKCP(0x5e55b003, sock=spy, addr=addr)
    stale = MiniKCP(0x5e55b004, key=key, sock=spy, addr=addr)
    forged = [
        os.urandom(200),                              # junk
        b"",                                          # empty
        os.urandom(36),                               # envelope, no body
        plain.seg(PUSH, 0, b"no envelope"),           # plain KCP
        other.seal(other.seg(PUSH, 0, b"wrong key")),  # another key
        stale.seal(stale.seg(PUSH, 0, b"old"),        # 60 s old
                   ts_ms=int(time.time() * 1000) - 60000),
        stale.seal(stale.seg(PUSH, 0, b"future"),     # 60 s ahead
                   ts_ms=int(time.time() * 1000) + 60000),
    ]
    tampered = bytearray(captured[0])
    tampered[20] ^= 1
    forged.append(bytes(tampered))                    # a flipped bit
    for dg in forged:
        spy.sendto(dg, addr)
    # replays: every datagram of the genuine session, from a new address
    for dg in captured:
        spy.sendto(dg, addr)
    assert silent(spy, 1.5)
    # ... and from the genuine address too (the old socket hears nothing
    # new: no echo of a replayed PUSH, no ACK)
    for dg in captured:
        a.sendto(dg, addr)
    assert silent(a, 1.0)
    err = srv.stderr()
    assert opened(srv) == 1, err
    assert "moved" not in err
    for conv in ("5e55b002", "5e55b003", "5e55b004"):
        assert conv not in err
    # the genuine session still works afterwards
    k.sock = a
    assert k.echo(b"still here") == b"still here"


def test_psk_bad_key_refused_at_start(websocksy, monkeypatch):
    from conftest import run_binary
    rc, out, err = run_binary(["-p", "0", "-c", "host=127.0.0.1",
                               "-c", "port=9",
                               "-C", "kcp-listen=127.0.0.1:%d" %
                               free_udp_port(), "-C", "kcp-psk=c2hvcnQ="])
    assert rc != 0 and "kcp-psk" in err, err


def test_shutdown_with_sessions(websocksy, monkeypatch):
    """SIGTERM with open sessions: clean exit (the fixture checks status
    and sanitizer reports), every session logged as closed."""
    srv, port = start_echo(websocksy, monkeypatch)
    socks = [udp_sock() for _ in range(3)]
    for i, s in enumerate(socks):
        k = MiniKCP(0x5d000000 + i, sock=s, addr=("127.0.0.1", port))
        assert k.echo(b"x" * 3000) == b"x" * 3000
    srv.stop()
    assert srv.stderr().count("kcpecho: closed") == 3, srv.stderr()


# ------------------------------------------- the kcp-mux plugin over KCP
def mux_frame(ftype, flags, sid, payload=b""):
    return (struct.pack(">I", len(payload))[1:] + bytes((ftype, flags))
            + struct.pack(">I", sid) + payload)


def mux_frames(buf):
    """Complete frames in buf as (type, flags, stream, payload)."""
    out, off = [], 0
    while off + 9 <= len(buf):
        n = int.from_bytes(buf[off:off + 3], "big")
        if off + 9 + n > len(buf):
            break
        out.append((buf[off + 3], buf[off + 4],
                    int.from_bytes(buf[off + 5:off + 9], "big") & 0x7fffffff,
                    bytes(buf[off + 9:off + 9 + n])))
        off += 9 + n
    return out


@pytest.mark.parametrize("with_key", [False, True])
def test_mux_stream_over_kcp(websocksy, peers, with_key):
    """The real kcp-mux plugin behind the KCP listener: handshake, one
    stream to kcp-peer, data echoed by a TCP peer, FIN both ways."""
    if with_key:
        need_aead()
    so = near_bin("plugins", "framing_kcp-mux.so")
    if so is None:
        pytest.skip("framing_kcp-mux.so not built")
    echo = peers.tcp_echo()
    key = new_key() if with_key else None
    port = free_udp_port()
    args = ["-c", "host=127.0.0.1", "-c", "port=9",
            "-C", "plugins=" + os.path.dirname(so),
            "-C", "kcp-listen=127.0.0.1:%d" % port,
            "-C", "kcp-peer=tcp://127.0.0.1:%d" % echo.port]
    if key:
        args += ["-C", "kcp-psk=" + b64(key)]
    srv = websocksy(*args)
    assert wait_for(lambda: "listening on 127.0.0.1:%d" % port
                    in srv.stderr(), 5)
    s = udp_sock()
    k = MiniKCP(random.randrange(1, 1 << 32), key=key, sock=s,
                addr=("127.0.0.1", port))
    data = hashlib.sha256(b"seed").digest() * 300       # 9600 bytes
    k.send(mux_frame(4, 0, 0) + mux_frame(1, 0, 1) +
           mux_frame(0, 0, 1, data) + mux_frame(0, 1, 1))

    def got():
        fr = mux_frames(k.data)
        body = b"".join(p for t, f, sid, p in fr if t == 0 and sid == 1)
        fin = any(t == 0 and f & 1 and sid == 1 for t, f, sid, p in fr)
        return body, fin

    assert k.run_until(lambda: got()[1], 10), (mux_frames(k.data),
                                                srv.stderr())
    fr = mux_frames(k.data)
    assert fr[0][0] == 4 and not fr[0][1] & 1        # server SETTINGS
    assert any(t == 4 and f & 1 for t, f, sid, p in fr)   # its ACK
    assert any(t == 1 and sid == 1 and not f & 1 for t, f, sid, p in fr)
    assert got()[0] == data
    assert echo.wait_conn(0).nbytes == len(data)


def test_mux_shutdown_sends_goaway_and_drains(websocksy, peers):
    """SIGTERM with a kcp-mux stream open: the client gets a GOAWAY (last
    stream 1, no error, a reason), the open stream keeps relaying, and
    once it is finished the session closes and the server exits, well
    before close-timeout."""
    so = near_bin("plugins", "framing_kcp-mux.so")
    if so is None:
        pytest.skip("framing_kcp-mux.so not built")
    echo = peers.tcp_echo()
    port = free_udp_port()
    srv = websocksy("-c", "host=127.0.0.1", "-c", "port=9",
                    "-C", "plugins=" + os.path.dirname(so),
                    "-C", "close-timeout=30",
                    "-C", "kcp-listen=127.0.0.1:%d" % port,
                    "-C", "kcp-peer=tcp://127.0.0.1:%d" % echo.port)
    assert wait_for(lambda: "listening on 127.0.0.1:%d" % port
                    in srv.stderr(), 5)
    k = MiniKCP(random.randrange(1, 1 << 32), sock=udp_sock(),
                addr=("127.0.0.1", port))

    def body():
        return b"".join(p for t, f, sid, p in mux_frames(k.data)
                        if t == 0 and sid == 1)

    k.send(mux_frame(4, 0, 0) + mux_frame(1, 0, 1) +
           mux_frame(0, 0, 1, b"before"))
    assert k.run_until(lambda: body() == b"before", 10), srv.stderr()

    t0 = time.monotonic()
    srv.signal(signal.SIGTERM)

    def goaway():
        return [p for t, f, sid, p in mux_frames(k.data) if t == 7]
    assert k.run_until(lambda: goaway(), 5), (mux_frames(k.data),
                                              srv.stderr())
    p = goaway()[0]
    assert struct.unpack(">II", p[:8]) == (1, 0), p
    assert p[8:] == b"server shutdown", p
    assert srv.proc.poll() is None          # still draining

    # The open stream still works; no new one is accepted.
    k.send(mux_frame(0, 0, 1, b" after") + mux_frame(1, 0, 3))
    assert k.run_until(lambda: body() == b"before after", 5), srv.stderr()
    assert k.run_until(lambda: any(
        t == 1 and sid == 3 and f & 1 for t, f, sid, p in
        mux_frames(k.data)), 5), mux_frames(k.data)     # RST for 3

    # Finish it: FIN both ways, then the session closes and websocksy
    # exits by itself.
    k.send(mux_frame(0, 1, 1))
    rc = None
    deadline = time.monotonic() + 10
    while rc is None and time.monotonic() < deadline:
        k.run_until(lambda: False, 0.2)     # keep acking
        rc = srv.proc.poll()
    assert rc == 0, srv.stderr()
    assert time.monotonic() - t0 < 10       # not the 30 s close-timeout
    assert "closing (1000 goaway)" in srv.stderr(), srv.stderr()
    srv.stop()
