#!/usr/bin/python3
"""Loss benchmark: websocksy's KCP tunnel against kcptun and plain TCP over
a link with 25 ms one-way delay and 0/1/5/10 % random loss, in the same run.

    python3 tests/bench/loss.py [--quick] [--losses 0,1,5,10] [--delay MS]
                                [--size BYTES] [--cap S] [--pings N]
                                [--runs N] [--out FILE] [--build DIR]

Needs root (network namespaces, nftables, a TUN device); without it, or
without ip / nft / /dev/net/tun, it prints why and exits 0 (skipped).

The link (all of it made by this script, removed in every case):

    namespace A (10.77.0.1)  ==== veth ====  namespace B (10.77.0.2)
    tun wsyd0 10.78.0.1                      tun wsyd0 10.78.0.2
    build/bench/delay                        build/bench/delay

Traffic between 10.78.0.1 and 10.78.0.2 goes through the TUN devices: each
namespace's delay bridge (tests/bench/delay.c) reads the IP packets its
kernel sends, holds them --delay ms and passes them over the veth (as UDP)
to the other bridge, which writes them into its TUN device.  So both
directions carry the one-way delay, at the packet level, for TCP and UDP
alike.  Loss: an nftables rule on the input hook of each namespace drops
--loss % of the packets arriving from its TUN device (the receiving side:
a sender-side drop would be reported to the sender at once).

Transports (senders in A, receivers in B):
  tcp-<cc>   a plain TCP connection A -> B, TCP_CONGESTION=<cc> on both
             sockets: the host default, cubic and bbr (when available)
  websocksy  websocksy-client (A) -> KCP+PSK over UDP -> websocksy (B)
  kcptun     kcptun-client (A) -> kcptun-server (B), --crypt none
             --nocomp --ds 0 --ps 0 --mode fast3 (Debian's kcptun,
             installed with apt-get when missing; skipped when not)
Each tunnel carries the connection to the same sink in B (127.0.0.1).

Measurements per loss level (set with nft, counted, reported):
  ping      first: 64-byte ping-pong, --pings round trips (200; --quick
            100) after 3 warm-up ones, on one connection with TCP_NODELAY:
            p50 / p99.  All transports ping at the same time (they are
            light), bounded (20 s; --quick 10 s; "*" when cut short).
  transfer  then, one transport after another: --size bytes (4 MB) A -> B
            on a fresh connection; the time from the first byte sent
            (after connect: TCP's handshake is not counted) to the last
            byte received, by CLOCK_MONOTONIC, shared by both namespaces;
            sha256-checked.  The median of --runs (3; --quick 2), fewer
            once a series took 10 s.  Capped at --cap s (30; --quick 15):
            "did not finish" (dnf); a transport that did not finish at one
            loss level is not run at the higher ones (dnf~).
Idle RTT: the p50 ping of the first TCP transport at 0 % loss (else
2 x --delay).  Targets from issue 8, at 5 % loss: websocksy's transfer
<= 0.5 x kcptun's and <= the best TCP's; websocksy ping p99 <= 2.5 x idle
RTT.  A dnf counts as --cap in ratios (then a bound, marked).

Bounded: about 3 minutes (--quick: 0 and 5 % loss, about 1 minute); no
new measurement starts past the budget (215 s; --quick 80 s; near its
end a transfer's cap shrinks to what is left).  Prints a
table and writes tests/bench/results/loss.json (--out).  Standard library
only.

The same file is the load generator inside the namespaces (--role).
"""

import argparse
import datetime
import hashlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from benchlib import kill_group, machine

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.join(ROOT, "build")
DELAY = os.path.join(BUILD, "bench", "delay")
DELAY_SRC = os.path.join(ROOT, "tests", "bench", "delay.c")
RESULTS = os.path.join(ROOT, "tests", "bench", "results")
WEBSOCKSY = os.path.join(BUILD, "websocksy")
CLIENT = os.path.join(BUILD, "websocksy-client")
PLUGINS = os.path.join(BUILD, "plugins")
SELF = os.path.abspath(__file__)
PY = sys.executable or "/usr/bin/python3"

ADDR_A, ADDR_B = "10.77.0.1", "10.77.0.2"       # veth
TUN_A, TUN_B = "10.78.0.1", "10.78.0.2"         # delayed path
TUN = "wsyd0"
BRIDGE_PORT = 7000
SINK_PORT = 5001
WSY_UDP, WSY_LOCAL = 4000, 6001
KCPTUN_UDP, KCPTUN_LOCAL = 4001, 6002
PING_SIZE = 64
PING_WARMUP = 3
SERIES_S = 10.0         # no further run of a transfer after this much
MIN_CAP = 8.0           # the least budget a transfer is started with
TCP_CONGESTION = getattr(socket, "TCP_CONGESTION", 13)


# ---- roles inside the namespaces ----

def set_cc(sock, cc):
    if cc and cc != "-":
        sock.setsockopt(socket.IPPROTO_TCP, TCP_CONGESTION, cc.encode())


def recv_line(sock, limit=256):
    buf = b""
    while not buf.endswith(b"\n"):
        b = sock.recv(1)
        if not b:
            raise ConnectionError("EOF before a line")
        buf += b
        if len(buf) > limit:
            raise ValueError("line too long")
    return buf.decode().strip()


def recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        b = sock.recv(n - len(buf))
        if not b:
            raise ConnectionError("EOF after %d of %d bytes" % (len(buf), n))
        buf += b
    return bytes(buf)


def serve_conn(c):
    """One sink connection: 'T SIZE CC' (count, hash, answer the time of
    the last byte) or 'P CC' (echo PING_SIZE-byte messages until EOF)."""
    try:
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        head = recv_line(c).split()
        set_cc(c, head[-1])
        if head[0] == "T":
            left, h = int(head[1]), hashlib.sha256()
            while left > 0:
                b = c.recv(min(left, 262144))
                if not b:
                    return
                h.update(b)
                left -= len(b)
            t = time.monotonic()
            c.sendall(("%.6f %s\n" % (t, h.hexdigest())).encode())
            c.recv(1)           # until the sender closes
        elif head[0] == "P":
            while True:
                m = recv_exact(c, PING_SIZE)
                c.sendall(m)
    except (OSError, ValueError, IndexError, ConnectionError):
        pass
    finally:
        c.close()


def role_server(args):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("0.0.0.0", args.port))
    ls.listen(64)
    print("ready", flush=True)
    while True:
        c, _ = ls.accept()
        threading.Thread(target=serve_conn, args=(c,), daemon=True).start()


def connect(host, port, cc, timeout):
    s = socket.socket()
    set_cc(s, cc)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.settimeout(timeout)
    s.connect((host, port))
    return s


def role_transfer(args):
    """Send args.size bytes; print one JSON line."""
    out = {"size": args.size}
    data = os.urandom(args.size)
    want = hashlib.sha256(data).hexdigest()
    start = time.monotonic()
    end = start + args.cap
    try:
        s = connect(args.host, args.port, args.cc, args.cap)
        out["connect_s"] = time.monotonic() - start
        view = memoryview(data)
        s.sendall(("T %d %s\n" % (args.size, args.cc)).encode())
        t0 = time.monotonic()
        off = 0
        while off < len(data):
            left = end - time.monotonic()
            if left <= 0:
                raise socket.timeout
            s.settimeout(left)
            off += s.send(view[off:off + 262144])
        s.settimeout(max(0.01, end - time.monotonic()))
        t_last, got = recv_line(s).split()
        s.close()
        if got != want:
            out["error"] = "sha256 mismatch"
        else:
            out["transfer_s"] = float(t_last) - t0
    except socket.timeout:
        out["dnf"] = True
    except (OSError, ValueError, ConnectionError) as e:
        out["error"] = str(e) or e.__class__.__name__
    print(json.dumps(out), flush=True)


def role_ping(args):
    """args.pings round trips of PING_SIZE bytes within args.cap seconds;
    print one JSON line with the round trips in ms."""
    out, rtts = {}, []
    end = time.monotonic() + args.cap
    msg = bytes(range(PING_SIZE))
    try:
        s = connect(args.host, args.port, args.cc, args.cap)
        s.sendall(("P %s\n" % args.cc).encode())
        for i in range(PING_WARMUP + args.pings):
            left = end - time.monotonic()
            if left <= 0:
                out["incomplete"] = True
                break
            s.settimeout(left)
            t = time.monotonic()
            s.sendall(msg)
            if recv_exact(s, PING_SIZE) != msg:
                out["error"] = "echo mismatch"
                break
            if i >= PING_WARMUP:
                rtts.append((time.monotonic() - t) * 1000.0)
        s.close()
    except socket.timeout:
        out["incomplete"] = True
    except (OSError, ConnectionError) as e:
        out["error"] = str(e) or e.__class__.__name__
    out["rtts_ms"] = [round(x, 3) for x in rtts]
    print(json.dumps(out), flush=True)


# ---- the driver ----

notes = []
procs = []
tmpdir = None


def note(msg):
    notes.append(msg)
    print("note: " + msg, flush=True)


def run(argv, timeout=20, check=True):
    r = subprocess.run([str(x) for x in argv], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(map(str, argv)),
                                       (r.stderr or r.stdout).strip()))
    return r


def skip(why, out=None):
    """Not runnable here: say why and exit 0 (an earlier result file is
    left as it is)."""
    print("loss benchmark skipped: " + why, flush=True)
    sys.exit(0)


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def write_json(path, doc):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    os.replace(path + ".tmp", path)


def apt_install(pkg, binary):
    if shutil.which(binary):
        return True
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    print("installing %s" % pkg, flush=True)
    for argv in (["apt-get", "install", "-y", "-qq", pkg],
                 ["apt-get", "update", "-qq"],
                 ["apt-get", "install", "-y", "-qq", pkg]):
        try:
            subprocess.run(argv, env=env, stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=180)
        except (OSError, subprocess.TimeoutExpired) as e:
            note("apt-get failed: %s" % e)
            return False
        if shutil.which(binary):
            return True
    return False


def build_delay():
    if os.access(DELAY, os.X_OK) and \
            os.path.getmtime(DELAY) >= os.path.getmtime(DELAY_SRC):
        return
    os.makedirs(os.path.dirname(DELAY), exist_ok=True)
    print("building %s" % DELAY, flush=True)
    run([os.environ.get("CC", "cc"), "-O2", "-std=gnu11", "-D_GNU_SOURCE",
         "-Wall", "-Wextra", "-o", DELAY, DELAY_SRC], timeout=120)


class Net:
    """Two namespaces, a veth pair, a TUN device and a delay bridge in
    each; nftables tables for loss.  Unique names per run."""

    def __init__(self, delay_ms):
        tag = "%d%04x" % (os.getpid(), int.from_bytes(os.urandom(2), "big"))
        self.a, self.b = "wsyA" + tag, "wsyB" + tag
        self.delay_ms = delay_ms
        self.made = []

    def up(self):
        a, b = self.a, self.b
        for ns in (a, b):
            run(["ip", "netns", "add", ns])
            self.made.append(ns)
        run(["ip", "-n", a, "link", "add", "wsyva", "type", "veth",
             "peer", "name", "wsyvb", "netns", b])
        for ns, dev, addr, tun, peer in (
                (a, "wsyva", ADDR_A, TUN_A, TUN_B),
                (b, "wsyvb", ADDR_B, TUN_B, TUN_A)):
            ip = ["ip", "-n", ns]
            run(ip + ["link", "set", "lo", "up"])
            run(ip + ["addr", "add", addr + "/24", "dev", dev])
            # Room for a 1500-byte packet plus the bridge's UDP header.
            run(ip + ["link", "set", dev, "mtu", "9000", "up"])
            run(ip + ["tuntap", "add", "dev", TUN, "mode", "tun"])
            run(ip + ["addr", "add", tun, "peer", peer, "dev", TUN])
            run(ip + ["link", "set", TUN, "mtu", "1500", "txqueuelen",
                      "10000", "up"])
            # Each connection starts from scratch, not from the metrics
            # (ssthresh) an earlier one left for this destination.
            run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w",
                 "net.ipv4.tcp_no_metrics_save=1"])
            nft = ["ip", "netns", "exec", ns, "nft"]
            run(nft + ["add", "table", "inet", "loss"])
            run(nft + ["add", "chain", "inet", "loss", "in",
                       "{ type filter hook input priority 0; }"])
        for ns, local, remote in ((a, ADDR_A, ADDR_B), (b, ADDR_B, ADDR_A)):
            # The bridges are the link: real-time priority keeps their
            # timing when the machine is busy (they sleep in ppoll).
            rt = ["chrt", "-f", "10"] if shutil.which("chrt") else []
            p = spawn(ns, rt + [DELAY, "-i", TUN, "-d", self.delay_ms,
                           "-l", "%s:%d" % (local, BRIDGE_PORT),
                           "-r", "%s:%d" % (remote, BRIDGE_PORT)],
                      "delay-" + ns, stdout=subprocess.PIPE)
            wait_ready(p, 5)

    def set_loss(self, pct):
        """A counter of every packet from the TUN device, then the drop
        rule with its own counter (so the real loss can be reported)."""
        for ns in (self.a, self.b):
            nft = ["ip", "netns", "exec", ns, "nft"]
            run(nft + ["flush", "chain", "inet", "loss", "in"])
            run(nft + ["add", "rule", "inet", "loss", "in", "iifname",
                       TUN, "counter"])
            if pct > 0:
                run(nft + ["add", "rule", "inet", "loss", "in", "iifname",
                           TUN, "numgen", "random", "mod", "100", "<",
                           str(pct), "counter", "drop"])

    def counters(self):
        """{namespace: [packets in, packets dropped, other]}: the nft
        counters since set_loss; other: drops counted by the TUN device
        and the bridge's UDP socket (RcvbufErrors) since the start."""
        out = {}
        for ns in (self.a, self.b):
            c = [0, 0, 0]
            try:
                r = run(["ip", "netns", "exec", ns, "nft", "-j", "list",
                         "chain", "inet", "loss", "in"], check=False)
                rules = [o["rule"] for o in json.loads(r.stdout)["nftables"]
                         if "rule" in o]
                for i, rule in enumerate(rules[:2]):
                    for e in rule["expr"]:
                        if "counter" in e:
                            c[i] = e["counter"]["packets"]
                r = run(["ip", "-n", ns, "-s", "-j", "link", "show", TUN],
                        check=False)
                st = json.loads(r.stdout)[0]["stats64"]
                c[2] = st["rx"]["dropped"] + st["tx"]["dropped"]
                # The bridge's UDP socket on the veth: receive buffer full.
                r = run(["ip", "netns", "exec", ns, "cat", "/proc/net/snmp"],
                        check=False)
                udp = [l.split() for l in r.stdout.splitlines()
                       if l.startswith("Udp:")]
                c[2] += int(udp[1][udp[0].index("RcvbufErrors")])
            except (ValueError, KeyError, IndexError, OSError):
                pass
            out[ns[:4]] = c
        return out

    def down(self):
        for ns in self.made:
            try:
                run(["ip", "netns", "del", ns], check=False)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.made = []


def spawn(ns, argv, name, stdout=None):
    """A child in namespace ns (ip netns exec execs it: the pid is the
    program's own), its stderr (and stdout unless piped) in a log file."""
    log = open(os.path.join(tmpdir, "%s.%d.log" % (name, len(procs))), "w+b")
    p = subprocess.Popen(["ip", "netns", "exec", ns] + [str(x) for x in argv],
                         stdin=subprocess.DEVNULL,
                         stdout=stdout if stdout else log, stderr=log,
                         start_new_session=True)
    p.name, p.log = name, log
    procs.append(p)
    return p


def log_tail(p, n=400):
    try:
        p.log.flush()
        p.log.seek(0)
        return p.log.read().decode(errors="replace").strip()[-n:]
    except (OSError, ValueError):
        return ""


def wait_ready(p, timeout):
    """Wait for the child's 'ready' line on its piped stdout."""
    box = []
    t = threading.Thread(target=lambda: box.append(p.stdout.readline()),
                         daemon=True)
    t.start()
    t.join(timeout)
    if not box or not box[0].startswith(b"ready"):
        raise RuntimeError("%s did not start: %s" % (p.name, log_tail(p)))


def stop(p):
    kill_group(p, wait=2)


def stop_all():
    for p in reversed(procs):
        try:
            stop(p)
        except (OSError, subprocess.TimeoutExpired):
            pass


# ---- transports and measurements ----

class Transport:
    def __init__(self, name, host, port, cc="-", kind="tcp"):
        self.name, self.host, self.port, self.cc = name, host, port, cc
        self.kind = kind
        self.skip = None            # reason, when not measured
        self.dnf_at = None          # the loss at which a transfer was dnf


def role_argv(role, t, args, **kw):
    argv = [PY, SELF, "--role", role, "--host", t.host, "--port", t.port,
            "--cc", t.cc]
    for k, v in kw.items():
        argv += ["--" + k, v]
    return [str(x) for x in argv]


def in_a(net, argv, timeout):
    """Run a role in namespace A; its JSON line, or an error dict."""
    try:
        r = run(["ip", "netns", "exec", net.a] + argv, timeout=timeout,
                check=False)
    except subprocess.TimeoutExpired:
        return {"error": "timeout"}
    lines = r.stdout.strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, ValueError):
        return {"error": (r.stderr.strip() or "no output")[-300:]}


def transfer(net, t, size, cap):
    return in_a(net, role_argv("transfer", t, None, size=size, cap=cap),
                cap + 15)


def warm_up(net, t):
    """The tunnel carries a small transfer (its processes may still be
    starting: a few tries).  Returns None or the reason it does not."""
    last = None
    for _ in range(6):
        r = transfer(net, t, 65536, 8)
        if "transfer_s" in r:
            return None
        last = r.get("error", "did not finish")
        time.sleep(0.5)
    return last


def pings(net, ts, n, cap):
    """Ping-pong on every transport at once; {name: result}."""
    running = {}
    for t in ts:
        argv = ["ip", "netns", "exec", net.a] + role_argv(
            "ping", t, None, pings=n, cap=cap)
        p = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, start_new_session=True)
        p.name, p.log = "ping-" + t.name, None
        procs.append(p)         # stopped by stop_all() if we are
        running[t.name] = p
    out = {}
    for name, p in running.items():
        try:
            so, se = p.communicate(timeout=cap + 15)
            out[name] = json.loads(so.strip().splitlines()[-1])
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.communicate()
            out[name] = {"error": "timeout", "rtts_ms": []}
        except (IndexError, ValueError):
            out[name] = {"error": (se.strip() or "no output")[-300:],
                         "rtts_ms": []}
    return out


def pct(xs, q):
    xs = sorted(xs)
    if not xs:
        return None
    k = max(0, min(len(xs) - 1, int(-(-q * len(xs) // 100)) - 1))
    return xs[k]


def start_websocksy(net, key, args):
    server = spawn(net.b, [WEBSOCKSY, "-p", "0", "-C", "plugins=" + PLUGINS,
                           "-C", "kcp-listen=%s:%d" % (TUN_B, WSY_UDP),
                           "-C", "kcp-psk=" + key,
                           "-C", "kcp-peer=tcp://127.0.0.1:%d" % SINK_PORT,
                           "-C", "kcp-replay-cache=1048576"] +
                   [x for kv in args.wsy_server for x in ("-C", kv)],
                   "websocksy")
    time.sleep(0.3)
    client = spawn(net.a, [CLIENT, "127.0.0.1:%d" % WSY_LOCAL,
                           "%s:%d" % (TUN_B, WSY_UDP),
                           ";".join(["kcp", "psk=" + key] + args.wsy_client)],
                   "websocksy-client")
    return [server, client]


KCPTUN_OPTS = ["--crypt", "none", "--nocomp", "--ds", "0", "--ps", "0",
               "--mode", "fast3", "--quiet"]


def start_kcptun(net):
    server = spawn(net.b, ["kcptun-server", "-l", "%s:%d" % (TUN_B, KCPTUN_UDP),
                           "-t", "127.0.0.1:%d" % SINK_PORT] + KCPTUN_OPTS,
                   "kcptun-server")
    time.sleep(0.3)
    client = spawn(net.a, ["kcptun-client", "-l", "127.0.0.1:%d" % KCPTUN_LOCAL,
                           "-r", "%s:%d" % (TUN_B, KCPTUN_UDP)] + KCPTUN_OPTS,
                   "kcptun-client")
    return [server, client]


def tcp_transports(net):
    r = run(["ip", "netns", "exec", net.a, "sysctl", "-n",
             "net.ipv4.tcp_congestion_control"], check=False)
    default = r.stdout.strip() or "cubic"
    try:
        with open("/proc/sys/net/ipv4/tcp_available_congestion_control") as f:
            avail = f.read().split()
    except OSError:
        avail = [default]
    out = [Transport("tcp-%s" % default, TUN_B, SINK_PORT, default)]
    out[0].default = True
    for cc in ("cubic", "bbr"):
        if cc == default:
            continue
        t = Transport("tcp-" + cc, TUN_B, SINK_PORT, cc)
        if cc not in avail:
            # Loading the module is allowed for root; try once.
            run(["modprobe", "tcp_" + cc], check=False)
            with open("/proc/sys/net/ipv4/"
                      "tcp_available_congestion_control") as f:
                if cc not in f.read().split():
                    t.skip = "%s is not available on this kernel" % cc
        out.append(t)
    return out


# ---- report ----

def tval(r, cap):
    """Transfer time for ratios: a dnf counts as the cap (a bound)."""
    if r is None:
        return None, False
    if r.get("transfer_s") is not None:
        return r["transfer_s"], False
    if r.get("dnf"):
        return float(r.get("cap_s", cap)), True
    return None, False


def fmt_transfer(r):
    if r is None:
        return "-"
    if r.get("transfer_s") is not None:
        return "%.2f" % r["transfer_s"]
    if r.get("dnf"):
        return "dnf" + ("~" if r.get("presumed") else "")
    return "err"


def fmt_ping(r):
    if not r or r.get("p50_ms") is None:
        return "-"
    s = "%.0f/%.0f" % (r["p50_ms"], r["p99_ms"])
    return s + ("*" if r.get("incomplete") or r.get("error") else "")


def bound(num_dnf, den_dnf):
    """What a ratio with a capped (dnf) side is: the ratio of the caps when
    both did not finish, at least it when the numerator did not, at most it
    when the denominator did not; None when it is exact."""
    if num_dnf and den_dnf:
        return "unknown"
    if num_dnf:
        return "lower"
    if den_dnf:
        return "upper"
    return None


def analyse(doc, cap):
    """Ratios per loss level and the issue's targets (at 5 %)."""
    idle = doc["idle_rtt_ms"]
    tcp_names = [t["name"] for t in doc["transports"] if t["kind"] == "tcp"
                 and not t.get("skip")]
    for loss, row in doc["results"].items():
        w, wb = tval(row.get("websocksy", {}).get("transfer"), cap)
        k, kb = tval(row.get("kcptun", {}).get("transfer"), cap)
        # The best TCP only when every TCP transport has a result here.
        best, bname, bb = None, None, False
        for n in tcp_names:
            v, b = tval(row.get(n, {}).get("transfer"), cap)
            if v is None:
                best, bname = None, None
                break
            if best is None or v < best:
                best, bname, bb = v, n, b
        rat = {"best_tcp": bname}
        if w is not None and k is not None:
            rat["websocksy_vs_kcptun"] = round(w / k, 3)
            rat["websocksy_vs_kcptun_bound"] = bound(wb, kb)
        if w is not None and best is not None:
            rat["websocksy_vs_best_tcp"] = round(w / best, 3)
            rat["websocksy_vs_best_tcp_bound"] = bound(wb, bb)
        wp = row.get("websocksy", {}).get("ping") or {}
        if wp.get("p99_ms") is not None and idle:
            rat["websocksy_p99_vs_idle_rtt"] = round(wp["p99_ms"] / idle, 3)
        for n in tcp_names + ["kcptun"]:
            p = row.get(n, {}).get("ping") or {}
            if p.get("p99_ms") is not None and idle:
                rat["%s_p99_vs_idle_rtt" % n] = round(p["p99_ms"] / idle, 3)
        doc["ratios"][loss] = rat
    r5 = doc["ratios"].get("5")
    targets = []
    if r5 is not None:
        for key, limit, what in (
                ("websocksy_vs_kcptun", 0.5,
                 "transfer time <= 0.5 x kcptun's at 5 % loss"),
                ("websocksy_vs_best_tcp", 1.0,
                 "transfer time <= best TCP's (%s) at 5 %% loss"
                 % r5.get("best_tcp")),
                ("websocksy_p99_vs_idle_rtt", 2.5,
                 "ping p99 <= 2.5 x idle RTT at 5 % loss")):
            v = r5.get(key)
            targets.append({"target": what, "value": v, "limit": limit,
                            "pass": None if v is None else v <= limit})
    doc["targets"] = targets


def table(doc):
    losses = list(doc["results"].keys())
    names = [t["name"] for t in doc["transports"]]
    lines = []
    w = max(len(n) for n in names) + 12
    head = "".join("%11s" % (l + " %") for l in losses)
    lines.append("%-*s%s" % (w, "transfer %s (s)" % doc["params"]["size_h"],
                             head))
    for t in doc["transports"]:
        n = t["name"] + (" (default)" if t.get("default") else "")
        if t.get("skip"):
            lines.append("%-*s  skipped: %s" % (w, n, t["skip"]))
            continue
        lines.append("%-*s%s" % (w, n, "".join(
            "%11s" % fmt_transfer(doc["results"][l].get(t["name"], {})
                                  .get("transfer")) for l in losses)))
    lines.append("")
    lines.append("%-*s%s" % (w, "ping p50/p99 (ms)", head))
    for t in doc["transports"]:
        if t.get("skip"):
            continue
        n = t["name"] + (" (default)" if t.get("default") else "")
        lines.append("%-*s%s" % (w, n, "".join(
            "%11s" % fmt_ping(doc["results"][l].get(t["name"], {})
                              .get("ping")) for l in losses)))
    lines.append("")
    lines.append("idle RTT %.1f ms (%s); dnf = did not finish in %d s "
                 "(dnf~: not run, dnf at a lower loss); * = ping run "
                 "incomplete (cap)" % (
                     doc["idle_rtt_ms"], doc["idle_rtt_from"],
                     doc["params"]["cap_s"]))
    if doc.get("link"):
        lines.append("loss measured by the nft counters: " + ", ".join(
            "%s %% -> %s" % (l, "-" if v["loss_pct"] is None else
                            "%.2f %%" % v["loss_pct"])
            for l, v in doc["link"].items()) + "; other drops (TUN "
            "devices, bridge sockets): %d" % sum(
                v["other_drops"] for v in doc["link"].values()))
    if doc.get("loadavg_start"):
        lines.append("load average %s at the start, %s at the end "
                     "(the machine's other work adds noise)" % (
                         doc["loadavg_start"][0],
                         doc.get("loadavg_end", ["?"])[0]))
    for l, r in doc["ratios"].items():
        parts = []
        for key, label in (("websocksy_vs_kcptun", "vs kcptun"),
                           ("websocksy_vs_best_tcp", "vs best TCP")):
            if key in r:
                parts.append("%s %s%.2fx" % (
                    label, {"lower": ">=", "upper": "<=", "unknown": "?"}.get(
                        r.get(key + "_bound"), ""), r[key]))
        if "websocksy_p99_vs_idle_rtt" in r:
            parts.append("p99 %.2fx idle RTT" % r["websocksy_p99_vs_idle_rtt"])
        lines.append("websocksy at %s %% loss: %s" % (l, ", ".join(parts)))
    for t in doc["targets"]:
        lines.append("target: %-52s %s (%s)" % (
            t["target"],
            {True: "PASS", False: "FAIL", None: "n/a"}[t["pass"]],
            "-" if t["value"] is None else "%.2f" % t["value"]))
    return "\n".join(lines)


# ---- main ----

def measure(net, args, transports, doc, started):
    def left():
        return args.budget - (time.monotonic() - started)

    idle_from, other = None, 0
    for loss in args.losses:
        key = str(loss)
        row = doc["results"].setdefault(key, {})
        net.set_loss(loss)
        try:
            measure_level(net, args, transports, loss, row, left)
        finally:
            c = net.counters()
            pk = sum(v[0] for v in c.values())
            dr = sum(v[1] for v in c.values())
            doc["link"][key] = {
                "packets": pk, "dropped": dr,
                "loss_pct": round(100.0 * dr / pk, 2) if pk else None,
                "other_drops": sum(v[2] for v in c.values()) - other}
            other = sum(v[2] for v in c.values())
            print("  %3d %% link: %d packets in, %d dropped (%.2f %%)" % (
                loss, pk, dr, 100.0 * dr / pk if pk else 0), flush=True)
        for name, r in row.items():
            p = r.get("ping") or {}
            if loss == 0 and idle_from is None and name.startswith("tcp-") \
                    and p.get("p50_ms"):
                doc["idle_rtt_ms"] = p["p50_ms"]
                idle_from = "p50 of %s at 0 %% loss" % name
    if idle_from:
        doc["idle_rtt_from"] = idle_from


def measure_level(net, args, transports, loss, row, left):
    """Pings first (all transports at once, bounded), then the transfers
    one after another."""
    live = [t for t in transports if not t.skip]
    if left() < args.ping_cap + 5:
        note("budget: pings at %d %% not run" % loss)
    else:
        for name, r in pings(net, live, args.pings, args.ping_cap).items():
            rtts = r.pop("rtts_ms")
            r["n"] = len(rtts)
            if rtts:
                r["p50_ms"] = round(pct(rtts, 50), 2)
                r["p99_ms"] = round(pct(rtts, 99), 2)
                r["max_ms"] = round(max(rtts), 2)
                r["mean_ms"] = round(sum(rtts) / len(rtts), 2)
                r["worst_ms"] = sorted(rtts)[-5:]
            row.setdefault(name, {})["ping"] = r
            print("  %3d %% %-12s ping %s (n=%d)" % (
                loss, name, fmt_ping(r), r["n"]), flush=True)
    for t in live:
        if t.dnf_at is not None:
            # Not finishing at a lower loss: no better at this one (saves
            # the cap's worth of time for the others).
            row.setdefault(t.name, {})["transfer"] = {
                "dnf": True, "presumed": "did not finish at %d %% loss"
                % t.dnf_at}
            print("  %3d %% %-12s transfer dnf (presumed: dnf at %d %%)" % (
                loss, t.name, t.dnf_at), flush=True)
            continue
        runs, spent = [], 0.0
        for _ in range(args.runs):
            if spent > SERIES_S:
                break           # slow enough that one run says it
            # Near the end of the budget the cap shrinks (a dnf then
            # records the cap it had).
            cap = min(args.cap, left() - 3)
            if cap < MIN_CAP:
                note("budget: %s transfer at %d %% not run" % (
                    t.name, loss))
                break
            r = transfer(net, t, args.size, cap)
            if r.get("dnf") and cap < args.cap:
                r["cap_s"] = round(cap, 1)
            runs.append(r)
            print("  %3d %% %-12s transfer %s" % (
                loss, t.name, fmt_transfer(r)), flush=True)
            if "transfer_s" not in r:
                if r.get("dnf"):
                    t.dnf_at = loss
                break           # dnf or error: not again
            spent += r["transfer_s"]
        if runs:
            # The median of the runs that finished; a dnf or an error stops
            # the series and stands when no run finished.
            ok = [r["transfer_s"] for r in runs if "transfer_s" in r]
            res = dict(runs[-1])
            res.pop("connect_s", None)
            if ok:
                res = {"transfer_s": statistics.median(ok)}
                if len(ok) < len(runs):
                    res["later_run"] = runs[-1]
            res["runs"] = [r.get("transfer_s") for r in runs]
            row.setdefault(t.name, {})["transfer"] = res

def size_arg(s):
    s = s.strip().lower()
    mult = {"k": 1024, "m": 1024 * 1024}.get(s[-1:], 1)
    return int(s.rstrip("km")) * mult


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--role", help=argparse.SUPPRESS)
    ap.add_argument("--host", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--cc", default="-", help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true",
                    help="0 and 5 %% loss, 100 pings, 15 s cap, 2 runs "
                    "(< 90 s)")
    ap.add_argument("--losses", help="loss levels in %% (0,1,5,10)")
    ap.add_argument("--delay", type=int, default=25,
                    help="one-way delay in ms (25)")
    ap.add_argument("--size", type=size_arg, default=4 * 1024 * 1024,
                    help="transfer size (4m)")
    ap.add_argument("--cap", type=float, help="transfer cap in s (30)")
    ap.add_argument("--pings", type=int, help="round trips (200)")
    ap.add_argument("--ping-cap", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--runs", type=int,
                    help="transfers per transport and loss, median "
                    "(3; --quick 2)")
    ap.add_argument("--budget", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=os.path.join(RESULTS, "loss.json"))
    ap.add_argument("--build", default=BUILD,
                    help="where websocksy, websocksy-client and plugins/ "
                    "are (build)")
    ap.add_argument("--wsy-client", action="append", default=[],
                    metavar="KEY=VALUE", help="an extra websocksy-client "
                    "transport option (mux-window=4194304); repeatable")
    ap.add_argument("--wsy-server", action="append", default=[],
                    metavar="KEY=VALUE", help="an extra websocksy -C "
                    "option (kcp-mux-config=window=4194304); repeatable")
    args = ap.parse_args()
    global WEBSOCKSY, CLIENT, PLUGINS
    WEBSOCKSY = os.path.join(os.path.abspath(args.build), "websocksy")
    CLIENT = os.path.join(os.path.abspath(args.build), "websocksy-client")
    PLUGINS = os.path.join(os.path.abspath(args.build), "plugins")

    if args.role == "server":
        return role_server(args)
    if args.role == "transfer":
        return role_transfer(args)
    if args.role == "ping":
        return role_ping(args)

    q = args.quick
    args.losses = [int(x) for x in (args.losses or
                                    ("0,5" if q else "0,1,5,10")).split(",")]
    args.cap = args.cap or (15.0 if q else 30.0)
    args.runs = args.runs or (2 if q else 3)
    args.pings = args.pings or (100 if q else 200)
    args.ping_cap = args.ping_cap or (10.0 if q else 20.0)
    args.budget = args.budget or (80.0 if q else 215.0)

    if os.geteuid() != 0:
        skip("needs root (network namespaces, nftables, a TUN device)",
             args.out)
    for tool in ("ip", "nft"):
        if not shutil.which(tool) and not (
                tool == "nft" and apt_install("nftables", "nft")):
            skip("%s is missing" % tool, args.out)
    if not os.path.exists("/dev/net/tun"):
        skip("no /dev/net/tun", args.out)
    try:
        build_delay()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        skip("cannot build the delay bridge: %s" % e, args.out)
    have_kcptun = apt_install("kcptun", "kcptun-client") and \
        shutil.which("kcptun-server") is not None
    have_wsy = all(os.access(p, os.X_OK) for p in (WEBSOCKSY, CLIENT))

    def on_signal(sig, frame):
        raise SystemExit("signal %d" % sig)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    global tmpdir
    started = time.monotonic()
    tmpdir = tempfile.mkdtemp(prefix="wsy-loss-")
    net = Net(args.delay)
    doc = {"date": now_iso(), "machine": machine(),
           "params": {"delay_ms_one_way": args.delay, "losses_pct":
                      args.losses, "size": args.size,
                      "size_h": "%g MB" % (args.size / 1048576),
                      "cap_s": int(args.cap), "pings": args.pings,
                      "ping_size": PING_SIZE, "runs": args.runs,
                      "quick": q, "websocksy_client_opts": args.wsy_client,
                      "websocksy_server_opts": args.wsy_server, "link": "veth + TUN delay bridges "
                      "(tests/bench/delay.c), loss by nftables numgen on "
                      "the receiving side"},
           "transports": [], "results": {}, "ratios": {}, "link": {},
           "idle_rtt_ms": 2.0 * args.delay,
           "idle_rtt_from": "2 x one-way delay (no 0 % TCP ping)",
           "notes": notes}
    try:
        net.up()
        sink = spawn(net.b, [PY, SELF, "--role", "server", "--port",
                             SINK_PORT], "sink", stdout=subprocess.PIPE)
        wait_ready(sink, 10)
        transports = []
        wsy = Transport("websocksy", "127.0.0.1", WSY_LOCAL, kind="kcp")
        transports.append(wsy)
        if not have_wsy:
            wsy.skip = "build/websocksy or websocksy-client not built"
        else:
            key = run([WEBSOCKSY, "--genpsk"]).stdout.strip()
            start_websocksy(net, key, args)
            wsy.skip = warm_up(net, wsy)
        kt = Transport("kcptun", "127.0.0.1", KCPTUN_LOCAL, kind="kcp")
        transports.append(kt)
        if not have_kcptun:
            kt.skip = "Debian's kcptun is not installed and apt-get failed"
        else:
            start_kcptun(net)
            kt.skip = warm_up(net, kt)
        transports += tcp_transports(net)
        for t in transports:
            if t.skip:
                note("%s skipped: %s" % (t.name, t.skip))
            d = {"name": t.name, "kind": t.kind, "cc": t.cc}
            if getattr(t, "default", False):
                d["default"] = True
            if t.skip:
                d["skip"] = t.skip
            doc["transports"].append(d)
        doc["versions"] = {"kcptun": run(["kcptun-client", "-v"],
                                         check=False).stdout.strip()
                           if have_kcptun else None}
        doc["loadavg_start"] = [round(x, 2) for x in os.getloadavg()]
        measure(net, args, transports, doc, started)
        doc["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stop_all()
        for p in procs:
            if p.name.startswith("delay-"):
                tail = log_tail(p, 300)
                if "queue-full 0 " not in tail and tail:
                    note("bridge %s: %s" % (p.name, tail))
        net.down()
        shutil.rmtree(tmpdir, ignore_errors=True)
    doc["elapsed_s"] = round(time.monotonic() - started, 1)
    analyse(doc, args.cap)
    write_json(args.out, doc)
    print()
    print(table(doc))
    print("\nwrote %s (%.0f s)" % (os.path.relpath(args.out, ROOT),
                                   doc["elapsed_s"]))


if __name__ == "__main__":
    sys.exit(main())
