#!/usr/bin/env python3
"""soak.py - websocksy under churn for a bounded time (make soak).

Starts build/websocksy (static backend, binary framing) in front of a TCP
echo peer run by this script, then keeps --clients WebSocket clients busy
for --seconds.  Each client loops over sessions; a session connects, does
the handshake, relays messages of random sizes (1 B .. 256 KiB, masked
with a random key or an all-zero one, sometimes fragmented, with pings)
and checks every echoed byte, then ends in one of these ways:

  clean      close frame 1000, wait for the answer and the EOF
  rst        SO_LINGER 0 + close: the server sees ECONNRESET
  halfopen   shutdown(SHUT_WR) without a close frame, wait for the EOF
  midframe   a frame header and half its payload, then FIN or RST
  peer_rst   the echo peer resets its side after the first echo: the
             client must get a close frame, never corrupted data
  idle       handshake, nothing sent, close (connection churn)

After a warm-up with the same load (so the server's buffer pool and the
allocator reach their steady size), the load pauses, the server goes
idle, and its VmRSS and open descriptors (/proc/PID/fd) are the baseline.
At the end the load stops the same way and both are measured again.

Fails (exit 1) when: any echoed byte differs or comes back out of order,
a clean session fails, the fd count differs from the baseline, or VmRSS
grew by more than --rss-slack-kb (default 4096 KiB) over the baseline.
"""
import argparse
import asyncio
import base64
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

KINDS = ("clean", "clean", "clean", "rst", "halfopen", "midframe",
         "peer_rst", "idle")
PEER_RST_MAGIC = b"PEER-RST"
ROUNDS = 4


# ------------------------------------------------------------------ helpers
def vmrss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1])
    return -1


def nfds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def frame(op, payload, fin=True, zero_key=False):
    """A masked client frame."""
    b0 = (0x80 if fin else 0) | op
    n = len(payload)
    if n < 126:
        hdr = struct.pack("!BB", b0, 0x80 | n)
    elif n < 65536:
        hdr = struct.pack("!BBH", b0, 0x80 | 126, n)
    else:
        hdr = struct.pack("!BBQ", b0, 0x80 | 127, n)
    key = b"\0\0\0\0" if zero_key else os.urandom(4)
    if zero_key or n == 0:
        return hdr + key + payload
    k = int.from_bytes(key * ((n + 3) // 4), "little")
    m = (int.from_bytes(payload, "little") ^ k) & ((1 << (8 * n)) - 1)
    return hdr + key + m.to_bytes(n, "little")


class Stats:
    def __init__(self):
        self.sessions = {k: 0 for k in set(KINDS)}
        self.bytes_checked = 0
        self.messages = 0
        self.failures = []
        self.unexpected = 0

    def fail(self, what):
        if len(self.failures) < 20:
            self.failures.append(what)


# --------------------------------------------------------------- echo peer
class EchoPeer:
    """Echoes every byte; a connection whose first bytes are
    PEER_RST_MAGIC is reset after the first echo."""

    def __init__(self):
        self.conns = 0

    async def handle(self, r, w):
        self.conns += 1
        first = True
        try:
            while True:
                d = await r.read(65536)
                if not d:
                    break
                w.write(d)
                await w.drain()
                if first and d.startswith(PEER_RST_MAGIC):
                    sock = w.get_extra_info("socket")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                    struct.pack("ii", 1, 0))
                    w.transport.abort()
                    return
                first = False
        except (ConnectionError, OSError):
            pass
        finally:
            w.close()


# ------------------------------------------------------------------ client
class Session:
    def __init__(self, port, stats, rnd):
        self.port = port
        self.stats = stats
        self.rnd = rnd

    async def read_frame(self, r):
        h = await r.readexactly(2)
        op, n = h[0] & 0x0F, h[1] & 0x7F
        if h[1] & 0x80:
            raise AssertionError("masked frame from the server")
        if n == 126:
            n = struct.unpack("!H", await r.readexactly(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", await r.readexactly(8))[0]
        return op, (await r.readexactly(n) if n else b"")

    async def handshake(self):
        r, w = await asyncio.open_connection("127.0.0.1", self.port)
        key = base64.b64encode(os.urandom(16)).decode()
        w.write(("GET /soak HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
                 "\r\n" % key).encode())
        head = await r.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise AssertionError("handshake: %r" % head[:80])
        return r, w

    async def echo(self, r, w, data, pieces=1, zero_key=False):
        """Send data as one message (maybe fragmented, with a ping in
        between) and read the echo back until every byte is checked."""
        rnd = self.rnd
        if pieces == 1:
            w.write(frame(2, data, zero_key=zero_key))
        else:
            cuts = sorted(rnd.randrange(len(data) + 1)
                          for _ in range(pieces - 1))
            parts = [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]
            for i, p in enumerate(parts):
                w.write(frame(2 if i == 0 else 0, p, fin=i == len(parts) - 1,
                              zero_key=zero_key))
                if i == 0:
                    w.write(frame(9, b"soak-ping"))
        await w.drain()
        got = 0
        while got < len(data):
            op, p = await asyncio.wait_for(self.read_frame(r), 20)
            if op == 10:
                continue                    # pong
            if op == 8:
                return got, p               # closed under us
            if op not in (1, 2):
                raise AssertionError("unexpected opcode %d" % op)
            if data[got:got + len(p)] != p:
                self.stats.fail("corrupt echo at byte %d of %d" %
                                (got, len(data)))
                raise AssertionError("corrupt echo")
            got += len(p)
            self.stats.bytes_checked += len(p)
        self.stats.messages += 1
        return got, None

    async def drain_to_eof(self, r, limit=15):
        try:
            while await asyncio.wait_for(r.read(65536), limit):
                pass
        except (ConnectionError, OSError, asyncio.TimeoutError):
            pass

    def size(self):
        x = self.rnd.random()
        if x < 0.5:
            return self.rnd.randrange(1, 200)
        if x < 0.9:
            return self.rnd.randrange(200, 16384)
        return self.rnd.randrange(16384, 262144)

    async def run(self, kind):
        rnd = self.rnd
        r, w = await self.handshake()
        sock = w.get_extra_info("socket")
        try:
            if kind == "peer_rst":
                data = PEER_RST_MAGIC + os.urandom(rnd.randrange(0, 2000))
                got, close = await self.echo(r, w, data)
                if close is None:
                    # the echo came back whole; the reset must close us
                    op, p = await asyncio.wait_for(self.read_frame(r), 20)
                    while op in (1, 2, 10):
                        op, p = await asyncio.wait_for(self.read_frame(r), 20)
                    if op != 8:
                        raise AssertionError("no close after peer reset")
                w.write(frame(8, b"\x03\xe8"))
                await w.drain()
                await self.drain_to_eof(r)
                return
            for _ in range(0 if kind == "idle" else rnd.randrange(1, 6)):
                data = os.urandom(self.size())
                pieces = 1 if rnd.random() < 0.7 else rnd.randrange(2, 6)
                got, close = await self.echo(r, w, data, pieces,
                                             zero_key=rnd.random() < 0.2)
                if close is not None:
                    raise AssertionError("server closed: %r" % close[:2])
            if kind in ("clean", "idle"):
                w.write(frame(8, b"\x03\xe8"))
                await w.drain()
                op, p = await asyncio.wait_for(self.read_frame(r), 20)
                while op in (1, 2, 10):
                    op, p = await asyncio.wait_for(self.read_frame(r), 20)
                if op != 8 or p[:2] != b"\x03\xe8":
                    raise AssertionError("close answer %d %r" % (op, p[:2]))
                await self.drain_to_eof(r)
            elif kind == "rst":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                struct.pack("ii", 1, 0))
            elif kind == "halfopen":
                sock.shutdown(socket.SHUT_WR)
                await self.drain_to_eof(r)
            elif kind == "midframe":
                n = rnd.randrange(10, 100000)
                w.write(frame(2, os.urandom(n))[:rnd.randrange(1, n)])
                await w.drain()
                if rnd.random() < 0.5:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                    struct.pack("ii", 1, 0))
                else:
                    sock.shutdown(socket.SHUT_WR)
                    await self.drain_to_eof(r)
        finally:
            w.transport.abort() if kind in ("rst", "midframe") else w.close()


async def client(port, stats, stop, seed):
    rnd = random.Random(seed)
    s = Session(port, stats, rnd)
    while not stop.is_set():
        kind = rnd.choice(KINDS)
        try:
            await asyncio.wait_for(s.run(kind), 60)
            stats.sessions[kind] += 1
        except AssertionError as e:
            stats.fail("%s: %s" % (kind, e))
        except (ConnectionError, OSError, asyncio.IncompleteReadError,
                asyncio.TimeoutError) as e:
            # only sessions that end abruptly by design may see errors
            if kind in ("clean", "idle", "halfopen"):
                stats.unexpected += 1
                stats.fail("%s: %s: %s" % (kind, type(e).__name__, e))
            else:
                stats.sessions[kind] += 1


# -------------------------------------------------------------------- main
async def load(port, stats, seconds, clients, seed):
    stop = asyncio.Event()
    tasks = [asyncio.ensure_future(client(port, stats, stop, seed + i))
             for i in range(clients)]
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.wait(tasks, timeout=90)
    for t in tasks:
        t.cancel()


def wait_idle(pid, base_fds, timeout=30):
    """Until the server holds no connection: its fd count stops falling
    (or reaches base_fds)."""
    deadline = time.monotonic() + timeout
    last, stable = nfds(pid), 0
    while time.monotonic() < deadline:
        time.sleep(0.25)
        n = nfds(pid)
        stable = stable + 1 if n == last else 0
        last = n
        if (base_fds is not None and n <= base_fds and stable >= 2) or \
                (base_fds is None and stable >= 8):
            break
    return last


def summary(stats):
    return ("sessions %s, %d messages, %d bytes checked" %
            (" ".join("%s=%d" % kv for kv in sorted(stats.sessions.items())),
             stats.messages, stats.bytes_checked))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "build",
        "websocksy"))
    ap.add_argument("--seconds", type=int, default=300)
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--rss-slack-kb", type=int, default=4096)
    ap.add_argument("--pool-kb", type=int, default=16384,
                    help="the server's buffer-pool, KiB (-C buffer-pool)")
    ap.add_argument("--seed", type=int, default=int(time.time()))
    a = ap.parse_args()
    seconds = max(10, min(a.seconds, 3600))
    warm = max(5, min(30, seconds // 10))
    print("soak: %s, %d s (+%d s warm-up), %d clients, seed %d" %
          (a.bin, seconds, warm, a.clients, a.seed), flush=True)

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    peer = EchoPeer()
    psrv = loop.run_until_complete(asyncio.start_server(
        peer.handle, "127.0.0.1", 0, backlog=1024))
    pport = psrv.sockets[0].getsockname()[1]
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="soak-websocksy-", suffix=".log",
                                      delete=False)
    proc = subprocess.Popen(
        [a.bin, "-p", str(port), "-l", "127.0.0.1", "-q", "-k", "0",
         "-c", "host=127.0.0.1", "-c", "port=%d" % pport,
         "-c", "framing=binary", "-C", "max-connections=100000",
         "-C", "buffer-pool=%d" % (a.pool_kb * 1024)],
        stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    ok = True
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("soak: websocksy did not start")
                time.sleep(0.05)
        fds0, rss0 = wait_idle(proc.pid, None, 5), vmrss_kb(proc.pid)
        print("soak: start       rss %6d KiB  fds %d" % (rss0, fds0))

        wstats = Stats()
        loop.run_until_complete(load(port, wstats, warm, a.clients, a.seed))
        fds1 = wait_idle(proc.pid, fds0)
        rss1 = vmrss_kb(proc.pid)
        print("soak: after warm-up rss %6d KiB  fds %d  (%s)" %
              (rss1, fds1, summary(wstats)), flush=True)

        # the run in ROUNDS parts, each followed by an idle checkpoint
        stats = Stats()
        t0 = time.monotonic()
        peak = [rss1]
        marks = [(rss1, fds1)]

        async def sample():
            while True:
                await asyncio.sleep(1)
                peak[0] = max(peak[0], vmrss_kb(proc.pid))
        sampler = loop.create_task(sample())
        for i in range(ROUNDS):
            part = seconds // ROUNDS + (seconds % ROUNDS if i == 0 else 0)
            loop.run_until_complete(load(port, stats, part, a.clients,
                                         a.seed + 100000 * (i + 1)))
            fds = wait_idle(proc.pid, fds1)
            marks.append((vmrss_kb(proc.pid), fds))
            print("soak: checkpoint %d rss %6d KiB  fds %d  (%.0f s, %d "
                  "sessions so far)" % (i + 1, marks[-1][0], fds,
                                        time.monotonic() - t0,
                                        sum(stats.sessions.values())),
                  flush=True)
        sampler.cancel()
        took = time.monotonic() - t0
        rss2, fds2 = marks[-1]
        rss_mid = marks[ROUNDS // 2][0]
        print("soak: end         rss %6d KiB  fds %d  (peak rss %d KiB)" %
              (rss2, fds2, peak[0]))
        print("soak: %s in %.0f s, %d peer connections" %
              (summary(stats), took, peer.conns))

        for st in (wstats, stats):
            for f in st.failures:
                print("soak: FAIL %s" % f)
            if st.failures or st.unexpected:
                ok = False
        if proc.poll() is not None:
            print("soak: FAIL websocksy exited with %s" % proc.returncode)
            ok = False
        bad_fds = [f for _, f in marks if f != fds1]
        if bad_fds:
            print("soak: FAIL fd count %d after warm-up, then %s" %
                  (fds1, [f for _, f in marks[1:]]))
            ok = False
        if rss2 - rss1 > a.rss_slack_kb + a.pool_kb:
            print("soak: FAIL VmRSS grew %d KiB since the warm-up (bound "
                  "%d KiB)" % (rss2 - rss1, a.rss_slack_kb + a.pool_kb))
            ok = False
        if rss2 - rss_mid > a.rss_slack_kb:
            print("soak: FAIL VmRSS grew %d KiB over the second half "
                  "(bound %d KiB)" % (rss2 - rss_mid, a.rss_slack_kb))
            ok = False
        print("soak: rss %+d KiB since warm-up (bound %d), %+d KiB over the "
              "second half (bound %d), fds %+d (bound 0)" %
              (rss2 - rss1, a.rss_slack_kb + a.pool_kb, rss2 - rss_mid,
               a.rss_slack_kb, fds2 - fds1))
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                rc = proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                rc = proc.wait()
            if rc != 0:
                print("soak: FAIL websocksy exit status %s" % rc)
                ok = False
        log.close()
        with open(log.name, "rb") as f:
            err = f.read().decode(errors="replace")
        for m in ("AddressSanitizer", "runtime error", "LeakSanitizer"):
            if m in err:
                print("soak: FAIL sanitizer report in %s" % log.name)
                ok = False
        psrv.close()
    print("soak: %s (server log %s)" % ("PASS" if ok else "FAIL", log.name))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
