#!/usr/bin/python3
"""make bench: websocksy side by side with a direct connection, socat,
haproxy (TCP mode) and websockify, in one run; websocksy over ws and wss;
and the tunnel row (tests/bench/tunnel.py) when that script exists.

Every figure is the median of --runs runs (3 by default).  Results go to
tests/bench/results/latest.json and latest.md; the table is printed too.
Only 127.0.0.1 is used.  Bounded: every child has a deadline and the full
run stays under 10 minutes (--quick: about 1 minute).
"""

import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import free_port, kill_group, version_of, wait_port

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.join(ROOT, "build")
BENCH = os.path.join(BUILD, "bench")
RESULTS = os.path.join(ROOT, "tests", "bench", "results")
WEBSOCKSY = os.path.join(BUILD, "websocksy")
LOADGEN = os.path.join(BENCH, "loadgen")
ECHO = os.path.join(BENCH, "echo")
TUNNEL = os.path.join(ROOT, "tests", "bench", "tunnel.py")
CERTS = os.path.join(ROOT, "tests", "certs")
TLS_ARGS = ["--tls", "--sni", "localhost", "--ca",
            os.path.join(CERTS, "ca.pem")]
HOST = "127.0.0.1"
TICK = os.sysconf("SC_CLK_TCK")

notes = []          # skipped references and limits, for the report
procs = []          # everything we started, stopped at exit


def note(msg):
    notes.append(msg)
    print("note: " + msg, flush=True)


# ---- environment ----

def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for want in (1048576, 262144, hard):
        if want == resource.RLIM_INFINITY or want < soft:
            continue
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(want, hard)))
            break
        except (ValueError, OSError):
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
                break
            except (ValueError, OSError):
                continue
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def ensure_tools(names):
    """Install the Debian packages of missing tools; return what exists."""
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        cmd = []
        if os.geteuid() != 0:
            if shutil.which("sudo") is None:
                note("cannot install %s: not root and no sudo"
                     % " ".join(missing))
                return {n: shutil.which(n) for n in names}
            cmd = ["sudo", "-n"]
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        print("installing: " + " ".join(missing), flush=True)
        try:
            subprocess.run(cmd + ["apt-get", "update", "-qq"], env=env,
                           timeout=180, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            subprocess.run(cmd + ["apt-get", "install", "-y", "-qq"]
                           + missing, env=env, timeout=300,
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as e:
            note("apt-get failed: %s" % e)
    found = {n: shutil.which(n) for n in names}
    for n, p in found.items():
        if p is None:
            note("%s is not available: its reference is skipped" % n)
    return found


def machine():
    model, mhz = "unknown", ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and model == "unknown":
                    model = line.split(":", 1)[1].strip()
                if line.startswith("cpu MHz") and not mhz:
                    mhz = line.split(":", 1)[1].strip()
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            mem = f.readline().split(":", 1)[1].strip()
    except OSError:
        pass
    return {"cpu": model, "cpu_mhz": mhz, "nproc": os.cpu_count(),
            "kernel": platform.release(), "memory": mem,
            "python": platform.python_version()}


# ---- processes ----

def start(argv, port, name):
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    procs.append(p)
    if not wait_port(port, p):
        stop(p)
        raise RuntimeError("%s did not start: %s" % (name, " ".join(argv)))
    return p


def stop(p):
    kill_group(p)
    if p in procs:
        procs.remove(p)


def stop_all():
    for p in list(procs):
        stop(p)


def loadgen(args, timeout):
    """One loadgen run: its JSON line, plus its own CPU time."""
    argv = [LOADGEN] + [str(a) for a in args]
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        r = subprocess.run(argv, capture_output=True, text=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"ok": False, "last_error": "loadgen timed out"}
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    lines = [l for l in r.stdout.splitlines() if l.startswith("{")]
    if not lines:
        return {"ok": False, "last_error": "no output: " + r.stderr.strip()}
    out = json.loads(lines[-1])
    out["loadgen_cpu_s"] = round(ru1.ru_utime - ru0.ru_utime +
                                 ru1.ru_stime - ru0.ru_stime, 3)
    return out


def aead_speeds():
    """GB/s per AEAD on one core (tests/bench/aead.c), or {}."""
    tool = os.path.join(BENCH, "aead")
    if not os.access(tool, os.X_OK):
        return {}
    try:
        r = subprocess.run([tool, "0.5"], capture_output=True, text=True,
                           timeout=30)
        return {k: v for k, v in json.loads(r.stdout).items()
                if isinstance(v, float)}
    except (subprocess.TimeoutExpired, ValueError):
        return {}


def proc_kb(pid, field):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_pids(pid):
    """pid and all its descendants (websockify forks one per client)."""
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
            ppid = int(st[st.rindex(")") + 2:].split()[1])
        except (OSError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def tree_cpu_s(pid):
    """CPU seconds (user + system, reaped children included) of pid and
    its live descendants (socat and websockify fork per connection)."""
    total = 0
    for p in tree_pids(pid):
        try:
            with open("/proc/%d/stat" % p) as f:
                st = f.read()
            fl = st[st.rindex(")") + 2:].split()
            total += sum(int(x) for x in fl[11:15])
        except (OSError, ValueError):
            pass
    return total / TICK


def tree_pss_kb(pid):
    total = 0
    for p in tree_pids(pid):
        try:
            with open("/proc/%d/smaps_rollup" % p) as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total


# ---- targets ----

class Target:
    def __init__(self, name, kind, argv_fn, tool=None, zero_mask=False,
                 tls=False):
        self.name = name        # column name
        self.kind = kind        # "tcp" or "ws"
        self.argv_fn = argv_fn  # port -> argv
        self.tool = tool
        self.zero_mask = zero_mask
        self.tls = tls          # loadgen speaks TLS (wss)

    def lg(self):
        """loadgen's transport arguments for this target."""
        return (["--ws"] if self.kind == "ws" else ["--tcp"]) + \
            (TLS_ARGS if self.tls else []) + \
            (["--zero-mask"] if self.zero_mask else [])


def haproxy_argv(echo_port, maxconn):
    cfg = tempfile.NamedTemporaryFile("w", prefix="bench-haproxy-",
                                      suffix=".cfg", delete=False)
    cfg.write("global\n"
              "    nbthread 1\n"
              "    maxconn %d\n"
              "defaults\n"
              "    mode tcp\n"
              "    timeout connect 5s\n"
              "    timeout client 120s\n"
              "    timeout server 120s\n"
              "frontend fe\n"
              "    bind %s:@PORT@\n"
              "    maxconn %d\n"
              "    default_backend be\n"
              "backend be\n"
              "    server echo %s:%d maxconn %d\n"
              % (maxconn, HOST, maxconn, HOST, echo_port, maxconn))
    cfg.close()
    path = cfg.name

    def argv(port):
        with open(path) as f:
            text = f.read()
        real = path + ".%d" % port
        with open(real, "w") as f:
            f.write(text.replace("@PORT@", str(port)))
        return ["haproxy", "-db", "-f", real]
    return argv


def websocksy_argv(echo_port, extra=(), tls=False):
    def argv(port):
        listen = (["-p", "0", "-s", str(port),
                   "-C", "tls-cert=" + os.path.join(CERTS, "localhost.pem"),
                   "-C", "tls-key=" + os.path.join(CERTS, "localhost.key")]
                  if tls else ["-p", str(port)])
        return [WEBSOCKSY] + listen + [
            "-l", HOST, "-c", "host=" + HOST, "-c", "port=%d" % echo_port,
            "-c", "framing=binary", "-k", "0", "-q",
            "-C", "max-connections=200000"] + list(extra)
    return argv


def websocksy_has_tls():
    try:
        r = subprocess.run([WEBSOCKSY, "--help"], capture_output=True,
                           text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "tls-cert" in (r.stdout + r.stderr)


# ---- measurements ----

def measure_target(t, cfg, echo_port, echo_pid):
    """Every non-idle figure of one target; runs x each, one server."""
    port = free_port()
    res = {}
    try:
        p = start(t.argv_fn(port), port, t.name)
    except RuntimeError as e:
        note(str(e))
        return res
    lg = t.lg()
    T = cfg.seconds
    jobs = [("bulk_1", lg + ["-p", port, "-c", 1, "-s", 16384,
                             "-t", T, "bulk"], T + 40),
            ("bulk_64", lg + ["-p", port, "-c", 64, "-s", 16384,
                              "-t", T, "bulk"], T + 40)]
    if not t.zero_mask:
        for size, key in ((64, "pp_64"), (4096, "pp_4k")):
            jobs.append((key, lg + ["-p", port, "-s", size, "-n",
                                    cfg.pp_count, "-t", 20, "pingpong"], 40))
        if t.kind == "ws":
            jobs.append(("hs", lg + ["-p", port, "-c", cfg.hs_workers,
                                     "-s", 64, "-t", cfg.hs_seconds,
                                     "--src-spread", 8, "handshakes"],
                         cfg.hs_seconds + 30))
    for r in range(cfg.runs):
        for key, args, tmo in jobs:
            c0, w0 = tree_cpu_s(p.pid), time.monotonic()
            e0 = tree_cpu_s(echo_pid)
            out = loadgen(args, tmo)
            c1, w1 = tree_cpu_s(p.pid), time.monotonic()
            e1 = tree_cpu_s(echo_pid)
            if out.get("bytes_per_s"):
                # server CPU per GB echoed, over the whole loadgen run
                # (connect, warm-up and drain at about the same rate);
                # "all": server + load generator + echo peer, i.e. what
                # the run cost the machine
                gb = out["bytes_per_s"] * (w1 - w0) / 1e9
                out["server_cpu_s"] = round(c1 - c0, 3)
                out["echo_cpu_s"] = round(e1 - e0, 3)
                out["server_cpu_s_per_gb"] = round((c1 - c0) / gb, 3)
                out["all_cpu_s_per_gb"] = round(
                    (c1 - c0 + e1 - e0 + out["loadgen_cpu_s"]) / gb, 3)
            res.setdefault(key, []).append(out)
            if not out.get("ok"):
                note("%s %s run %d: %s" % (t.name, key, r + 1,
                                           out.get("last_error", "failed")))
            if p.poll() is not None:
                note("%s exited during %s" % (t.name, key))
                return res
    if cfg.perf and t.name in ("websocksy", "websocksy-wss"):
        res["profile"] = profile(p.pid, port, t, cfg)
    stop(p)
    return res


def perf_run(pid, lg_args, timeout):
    """perf record -g of pid while one loadgen run lasts; top symbols."""
    data = os.path.join(tempfile.gettempdir(), "bench-perf-%d.data"
                        % os.getpid())
    pr = subprocess.Popen(["perf", "record", "-q", "-g", "-p", str(pid),
                           "-o", data], stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    out = loadgen(lg_args, timeout)
    pr.send_signal(signal.SIGINT)
    try:
        pr.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pr.kill()
        pr.wait()

    def report(sort):
        try:
            r = subprocess.run(["perf", "report", "-i", data, "--stdio",
                                "--no-children", "--sort", sort, "-g",
                                "none", "--percent-limit", "0.3"],
                               capture_output=True, text=True, timeout=120)
        except subprocess.TimeoutExpired:
            return []
        rows = []
        for line in r.stdout.splitlines():
            f = line.split()
            if f and f[0].endswith("%") and not line.startswith("#"):
                rows.append(f)
        return rows

    by_dso = [(f[0], " ".join(f[1:])) for f in report("dso")]
    syms = report("dso,symbol")
    top = ["%-7s %-22s %s" % (f[0], f[1][:22], " ".join(f[3:4]))
           for f in syms[:15]]
    user = ["%-7s %-22s %s" % (f[0], f[1][:22], " ".join(f[3:4]))
            for f in syms if f[2] == "[.]"][:15]
    try:
        os.unlink(data)
    except OSError:
        pass
    return {"loadgen": out, "dso": by_dso[:8], "top": top, "user": user}


def strace_run(pid, lg_args, timeout):
    """strace -c -f of pid during one loadgen run; calls per message."""
    path = os.path.join(tempfile.gettempdir(), "bench-strace-%d.txt"
                        % os.getpid())
    st = subprocess.Popen(["strace", "-c", "-f", "-p", str(pid), "-o", path],
                          stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    out = loadgen(lg_args, timeout)
    st.send_signal(signal.SIGINT)
    try:
        st.wait(timeout=30)
    except subprocess.TimeoutExpired:
        st.kill()
        st.wait()
    calls = {}
    try:
        with open(path) as f:
            for line in f:
                fl = line.split()
                if len(fl) >= 5 and fl[0][0].isdigit() and \
                        fl[-1] != "total" and fl[3].isdigit():
                    calls[fl[-1]] = int(fl[3])
        os.unlink(path)
    except OSError:
        pass
    msgs = out.get("frames") or 0
    per = {k: round(v / msgs, 3) for k, v in calls.items()} if msgs else {}
    return {"loadgen": out, "messages": msgs, "calls": calls,
            "per_message": per,
            "total_per_message": round(sum(calls.values()) / msgs, 3)
            if msgs else None}


def profile(pid, port, t, cfg):
    """perf and strace of websocksy: bulk with 64 connections and the 64 B
    ping-pong (messages = data frames the client got back)."""
    lg = t.lg() + ["-p", port]
    T = cfg.perf
    work = {"bulk_64": lg + ["-c", 64, "-s", 16384, "-t", T, "bulk"],
            "pp_64": lg + ["-s", 64, "-n", 1000000, "-t", T, "pingpong"]}
    out = {}
    for key, args in work.items():
        d = out.setdefault(key, {})
        if shutil.which("perf"):
            d["perf"] = perf_run(pid, args, T + 40)
        if shutil.which("strace"):
            d["strace"] = strace_run(pid, args, T + 40)
    return out


def read_ready(p, timeout):
    """The idle loadgen's "ready N FAILED" line, or None."""
    import select
    end = time.monotonic() + timeout
    buf = b""
    while time.monotonic() < end:
        r, _, _ = select.select([p.stdout], [], [], 0.5)
        if r:
            chunk = os.read(p.stdout.fileno(), 4096)
            if not chunk:
                return None
            buf += chunk
            for line in buf.decode(errors="replace").splitlines():
                if line.startswith("ready "):
                    f = line.split()
                    return int(f[1]), int(f[2])
        if p.poll() is not None:
            return None
    return None


def idle_rss(t, n, cfg, open_limit, pss=False):
    """Memory per idle connection: fresh server, before/after n opens."""
    port = free_port()
    try:
        p = start(t.argv_fn(port), port, t.name)
    except RuntimeError as e:
        note(str(e))
        return None
    time.sleep(0.3)
    before = tree_pss_kb(p.pid) if pss else proc_kb(p.pid, "VmRSS")
    lg = subprocess.Popen([LOADGEN] + t.lg() + ["-p", str(port), "-c", str(n),
                           "--src-spread", "8", "--concurrency",
                           str(cfg.idle_concurrency), "-t", str(open_limit),
                           "--timeout", "5", "--hold", "300", "idle"],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    ready = read_ready(lg, open_limit + 30)
    time.sleep(0.5)
    after = tree_pss_kb(p.pid) if pss else proc_kb(p.pid, "VmRSS")
    nfd = 0
    try:
        nfd = len(os.listdir("/proc/%d/fd" % p.pid))
    except OSError:
        pass
    lg.send_signal(signal.SIGTERM)
    try:
        out, _ = lg.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        lg.kill()
        out, _ = lg.communicate()
    final = {}
    for line in out.decode(errors="replace").splitlines():
        if line.startswith("{"):
            final = json.loads(line)
    stop(p)
    est = ready[0] if ready else 0
    return {"requested": n, "established": est,
            "alive_at_end": final.get("alive_at_end", 0),
            "rss_before_kb": before, "rss_after_kb": after,
            "server_fds": nfd, "measure": "PSS of the process tree"
            if pss else "VmRSS",
            "bytes_per_conn": round((after - before) * 1024 / est)
            if est else None,
            "last_error": final.get("last_error", "")}


# ---- figures, ratios, report ----

# key, label, source job, field, scale, better ("hi" or "lo")
METRICS = [
    ("bulk_1", "bulk, 1 conn (MB/s)", "bulk_1", "bytes_per_s", 1e-6, "hi"),
    ("bulk_64", "bulk, 64 conns (MB/s)", "bulk_64", "bytes_per_s", 1e-6,
     "hi"),
    ("pp_64_p50", "ping-pong 64 B p50 (us)", "pp_64", "p50_us", 1, "lo"),
    ("pp_64_p99", "ping-pong 64 B p99 (us)", "pp_64", "p99_us", 1, "lo"),
    ("pp_4k_p50", "ping-pong 4 KiB p50 (us)", "pp_4k", "p50_us", 1, "lo"),
    ("pp_4k_p99", "ping-pong 4 KiB p99 (us)", "pp_4k", "p99_us", 1, "lo"),
    ("cpu_1", "server CPU s per GB, bulk 1", "bulk_1", "server_cpu_s_per_gb",
     1, "lo"),
    ("cpu_64", "server CPU s per GB, bulk 64", "bulk_64",
     "server_cpu_s_per_gb", 1, "lo"),
    ("acpu_1", "all CPU s per GB, bulk 1", "bulk_1", "all_cpu_s_per_gb",
     1, "lo"),
    ("acpu_64", "all CPU s per GB, bulk 64", "bulk_64", "all_cpu_s_per_gb",
     1, "lo"),
    ("hs", "handshakes/s", "hs", "handshakes_per_s", 1, "hi"),
    ("rss_1k", "RSS per idle conn, 1 000 (B)", None, None, 1, "lo"),
    ("rss_10k", "RSS per idle conn, 10 000 (B)", None, None, 1, "lo"),
]
REFS = ["socat", "haproxy", "websockify"]


def median_of(runs, field, scale):
    vals = [r[field] for r in runs if r.get("ok") and field in r]
    if not vals:
        return None
    return statistics.median(vals) * scale


def fmt(v, key):
    if v is None:
        return "-"
    if key.startswith("bulk"):
        return "%.0f" % v
    if key.startswith("pp"):
        return "%.1f" % v
    if key.startswith("cpu") or key.startswith("acpu"):
        return "%.2f" % v
    return "%.0f" % v


def build_table(cols, fig):
    head = ["figure"] + cols + ["wsy/" + r for r in REFS] + ["wss/ws"]
    rows = []
    for key, label, _, _, _, better in METRICS:
        row = [label]
        for c in cols:
            row.append(fmt(fig.get(c, {}).get(key), key))
        w = fig.get("websocksy", {}).get(key)
        for o in [fig.get(r, {}).get(key) for r in REFS] + \
                [fig.get("websocksy-wss", {}).get(key)]:
            if w is None or not o:
                row.append("-")
            elif len(row) == len(head) - 1:
                row.append("%.2fx" % (o / w))       # wss / ws
            else:
                row.append(("%.2fx" if w / o >= 0.1 else "%.4fx") % (w / o))
        rows.append(row)
    return head, rows


def text_table(head, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    out = ["  ".join(h.ljust(w) if i == 0 else h.rjust(w)
                     for i, (h, w) in enumerate(zip(head, widths)))]
    for row in rows:
        out.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                             for i, (c, w) in enumerate(zip(row, widths))))
    return "\n".join(out)


def md_table(head, rows):
    out = ["| " + " | ".join(head) + " |",
           "| " + " | ".join(["---"] + ["---:"] * (len(head) - 1)) + " |"]
    for row in rows:
        out.append("| " + " | ".join(row) + " |")
    return "\n".join(out)


def tls_ceiling(fig, raw, aead):
    """The most wss/ws can be in this run if TLS cost nothing but its
    cipher.

    Each echoed byte is sealed and opened twice: the load generator seals
    it, the server opens it, seals it again towards the client, and the
    load generator opens it.  At s GB/s per core (tests/bench/aead.c;
    opening costs what sealing does) that is 2/s CPU seconds per GB more
    for the server than over ws, and 4/s for the machine.  With ws moving
    R GB/s at C server (A machine) CPU seconds per GB, wss can move at
    most 1 / (C + 2/s) GB/s on the server's one core (a poll() loop) and
    N / (A + 4/s) on the machine's N CPUs, which the load generator
    shares; the ceiling is the smaller one over R (at most 1)."""
    ciphers = [r.get("cipher") for r in raw.get("websocksy-wss", {}).get(
        "bulk_64", []) + raw.get("websocksy-wss", {}).get("bulk_1", [])
        if r.get("cipher")]
    if not ciphers or ciphers[0] not in aead or not aead[ciphers[0]]:
        return None
    cipher = ciphers[0]
    speed = aead[cipher]
    ncpu = os.cpu_count() or 1
    w = fig.get("websocksy", {})
    out = {"cipher": cipher, "gb_per_s": speed, "ncpu": ncpu}
    for n in ("1", "64"):
        rate = (w.get("bulk_" + n) or 0) / 1000.0     # MB/s -> GB/s
        cpu, acpu = w.get("cpu_" + n), w.get("acpu_" + n)
        if not rate or not cpu or not acpu:
            continue
        out["server_" + n] = round(1 / ((cpu + 2 / speed) * rate), 3)
        out["machine_" + n] = round(ncpu / ((acpu + 4 / speed) * rate), 3)
        out["ceiling_" + n] = round(min(1.0, out["server_" + n],
                                        out["machine_" + n]), 3)
    return out


def ceiling_lines(ceiling, fig):
    if not ceiling:
        return []
    w, x = fig.get("websocksy", {}), fig.get("websocksy-wss", {})

    def got(k):
        return ("%.2f" % (x[k] / w[k])) if x.get(k) and w.get(k) else "-"

    def c(k):
        return ("%.2f" % ceiling[k]) if k in ceiling else "-"
    return ["wss/ws ceiling if TLS cost only its cipher (%s, %.2f GB/s "
            "per core, sealed and opened twice per echoed byte): %s / %s "
            "(1 / 64 conns; server's core %s / %s, the machine's %d CPUs "
            "%s / %s); measured %s / %s." % (
                ceiling["cipher"], ceiling["gb_per_s"], c("ceiling_1"),
                c("ceiling_64"), c("server_1"), c("server_64"),
                ceiling["ncpu"], c("machine_1"), c("machine_64"),
                got("bulk_1"), got("bulk_64"))]


def check_targets(fig, idle100k):
    w = fig.get("websocksy", {})
    s = fig.get("socat", {})
    h = fig.get("haproxy", {})
    y = fig.get("websockify", {})
    out = []

    def ratio(a, b):
        return a / b if a is not None and b else None

    def add(name, val, ok_fn, goal):
        if val is None:
            out.append((name, goal, "-", "not measured"))
        else:
            out.append((name, goal, "%.2f" % val,
                        "met" if ok_fn(val) else "NOT met"))

    for k, n in (("bulk_1", "1 conn"), ("bulk_64", "64 conns")):
        add("bulk %s vs socat" % n, ratio(w.get(k), s.get(k)),
            lambda v: v >= 1.0, ">= 1.0x")
        add("bulk %s vs haproxy" % n, ratio(w.get(k), h.get(k)),
            lambda v: v >= 0.8, ">= 0.8x")
    for k, n in (("pp_64_p99", "64 B"), ("pp_4k_p99", "4 KiB")):
        add("p99 %s vs socat" % n, ratio(w.get(k), s.get(k)),
            lambda v: v <= 1.2, "<= 1.2x")
    add("handshakes/s vs websockify", ratio(w.get("hs"), y.get("hs")),
        lambda v: v >= 20, ">= 20x")
    x = fig.get("websocksy-wss", {})
    for k, n in (("bulk_1", "1 conn"), ("bulk_64", "64 conns")):
        add("wss bulk %s vs ws" % n, ratio(x.get(k), w.get(k)),
            lambda v: v >= 0.7, ">= 0.7x")
    for k in ("rss_1k", "rss_10k"):
        add("RSS/idle conn (%s) bytes" % k[4:], w.get(k),
            lambda v: v <= 4096, "<= 4096")
    if idle100k:
        out.append(("100 000 idle connections", "100000",
                    str(idle100k["established"]),
                    "met" if idle100k["established"] >= 100000
                    else "NOT met"))
    return out


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def run_tunnel(cfg):
    """tests/bench/tunnel.py (written separately) in a subprocess, with a
    time bound; its JSON report, or None (and a note)."""
    if not os.path.exists(TUNNEL):
        note("tests/bench/tunnel.py does not exist: the tunnel row is "
             "skipped")
        return None
    out = os.path.join(RESULTS, "tunnel.json")
    try:
        os.unlink(out)
    except OSError:
        pass
    argv = [sys.executable, TUNNEL, "--out", out]
    if cfg.quick:
        argv.append("--quick")
    limit = 120 if cfg.quick else 240
    print("== tunnel (%s, at most %d s)" % (" ".join(argv[1:]), limit),
          flush=True)
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         start_new_session=True)
    try:
        log, _ = p.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGTERM)
        try:
            log, _ = p.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            log, _ = p.communicate()
        note("tunnel.py did not finish within %d s: stopped" % limit)
    try:
        with open(out) as f:
            rep = json.load(f)
    except (OSError, ValueError):
        tail = (log or b"").decode(errors="replace").strip().splitlines()
        note("tunnel.py gave no report (exit %s): %s"
             % (p.returncode, tail[-1] if tail else "no output"))
        return None
    if p.returncode:
        note("tunnel.py exited with status %d" % p.returncode)
    return rep


def tunnel_table(rep):
    """A (head, rows) table from tunnel.py's figures, whatever columns it
    has."""
    figs = rep.get("figures") or {}
    keys = []
    for f in figs.values():
        for k, v in f.items():
            if k != "runs" and k not in keys and \
                    isinstance(v, (int, float, type(None))):
                keys.append(k)
    head = ["tunnel target"] + keys
    rows = []
    for name, f in figs.items():
        row = [name]
        for k in keys:
            v = f.get(k)
            row.append("-" if v is None else
                       ("%.0f" % v if abs(v) >= 100 else "%.2f" % v))
        rows.append(row)
    return head, rows


def profile_md(prof):
    """Markdown lines for the --perf section."""
    md = []
    for tname, d in prof.items():
        for key, label in (("bulk_64", "bulk, 64 connections"),
                           ("pp_64", "ping-pong, 64 B")):
            x = d.get(key, {})
            pf, st = x.get("perf"), x.get("strace")
            if pf:
                md += ["%s, %s: perf, self time by library:" % (tname, label),
                       "", "```"] + ["%-8s %s" % r for r in pf["dso"]] + \
                    ["```", "", "top symbols:", "", "```"] + pf["top"] + \
                    ["```", "", "top user-space symbols:", "", "```"] + \
                    pf["user"] + ["```", ""]
            if st and st.get("messages"):
                calls = ", ".join("%s %.2f" % (k, v) for k, v in sorted(
                    st["per_message"].items(), key=lambda kv: -kv[1])
                    if v >= 0.01)
                md += ["%s, %s: strace -c -f, %d messages echoed, %.2f "
                       "syscalls per message (%s)." % (
                           tname, label, st["messages"],
                           st["total_per_message"], calls), ""]
    return md


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="smoke run, about 1 minute")
    ap.add_argument("--runs", type=int, help="runs per figure (median)")
    ap.add_argument("--seconds", type=float, help="bulk duration")
    ap.add_argument("--perf", type=int, default=0, metavar="SECONDS",
                    help="perf record websocksy during a bulk run")
    ap.add_argument("--no-idle", action="store_true",
                    help="skip the idle-connection figures")
    ap.add_argument("--no-100k", action="store_true",
                    help="skip the 100 000 connection attempt")
    ap.add_argument("--no-tunnel", action="store_true",
                    help="skip tests/bench/tunnel.py")
    cfg = ap.parse_args()
    q = cfg.quick
    cfg.runs = cfg.runs or (1 if q else 3)
    cfg.seconds = cfg.seconds or (1.0 if q else 4.0)
    cfg.pp_count = 500 if q else 3000
    cfg.hs_seconds = 1.0 if q else 3.0
    cfg.hs_workers = 32
    cfg.idle_concurrency = 512
    open_limit = 20 if q else 45
    t_start = time.monotonic()
    load_start = loadavg()
    print("load average at start: %s" % load_start, flush=True)

    for f in (WEBSOCKSY, LOADGEN, ECHO):
        if not os.access(f, os.X_OK):
            sys.exit("run.py: %s missing: run make bench" % f)
    soft, hard = raise_nofile()
    print("fd limit: %d (hard %d)" % (soft, hard), flush=True)
    tools = ensure_tools(["socat", "haproxy", "websockify"])

    aead = aead_speeds()
    if aead:
        print("AEAD, GB/s on one core: %s" % ", ".join(
            "%s %.2f" % kv for kv in sorted(aead.items())), flush=True)
    echo_port = free_port()
    echo = start([ECHO, str(echo_port)], echo_port, "echo")
    maxconn = max(1000, (soft - 100) // 2)

    targets = [Target("direct", "tcp", lambda p: [ECHO, str(p)])]
    if tools["socat"]:
        targets.append(Target("socat", "tcp", lambda p: [
            "socat", "-b", "262144",
            "TCP-LISTEN:%d,bind=%s,reuseaddr,fork,nodelay,backlog=4096"
            % (p, HOST), "TCP:%s:%d,nodelay" % (HOST, echo_port)]))
    if tools["haproxy"]:
        targets.append(Target("haproxy", "tcp",
                              haproxy_argv(echo_port, maxconn)))
    if tools["websockify"]:
        targets.append(Target("websockify", "ws", lambda p: [
            "websockify", "%s:%d" % (HOST, p), "%s:%d" % (HOST, echo_port)]))
    wsy = Target("websocksy", "ws", websocksy_argv(echo_port))
    targets.append(wsy)
    targets.append(Target("websocksy-zeromask", "ws",
                          websocksy_argv(echo_port), zero_mask=True))
    wss = None
    if websocksy_has_tls():
        wss = Target("websocksy-wss", "ws", websocksy_argv(echo_port,
                                                           tls=True),
                     tls=True)
        targets.append(wss)
    else:
        note("websocksy has no TLS: the wss target is skipped")

    raw = {}
    try:
        for t in targets:
            print("== %s" % t.name, flush=True)
            raw[t.name] = measure_target(t, cfg, echo_port, echo.pid)
        idle = {}
        if not cfg.no_idle:
            # Each connection costs websocksy two descriptors (client and
            # peer): the 10 000 figure is capped below the fd limit.
            n10k = min(10000, (soft - 64) // 2)
            if n10k < 10000:
                note("fd hard limit %d (cannot be raised here): the "
                     "10 000-connection figure uses %d connections"
                     % (hard, n10k))
            for n, key in ((1000, "rss_1k"), (n10k, "rss_10k")):
                print("== idle %d (websocksy)" % n, flush=True)
                idle.setdefault("websocksy", {})[key] = [
                    idle_rss(wsy, n, cfg, open_limit)
                    for _ in range(cfg.runs)]
            if wss:
                print("== idle 1000 (websocksy-wss)", flush=True)
                idle.setdefault("websocksy-wss", {})["rss_1k"] = [
                    idle_rss(wss, 1000, cfg, open_limit)
                    for _ in range(cfg.runs)]
            if tools["websockify"]:
                ws = [t for t in targets if t.name == "websockify"][0]
                print("== idle 1000 (websockify)", flush=True)
                idle.setdefault("websockify", {})["rss_1k"] = [
                    idle_rss(ws, 1000, cfg, open_limit, pss=True)]
                note("websockify forks one Python process per connection: "
                     "its memory is the PSS of the whole process tree, "
                     "measured once at 1 000 connections only (10 000 "
                     "processes do not fit this machine's pid and "
                     "memory limits)")
        idle100k = None
        if not cfg.no_idle and not cfg.no_100k:
            print("== 100 000 idle connections (websocksy)", flush=True)
            idle100k = idle_rss(wsy, 100000, cfg, open_limit)
            if idle100k and idle100k["established"] < 100000:
                note("100 000 idle: reached %d; websocksy needs two "
                     "descriptors per connection and its fd limit is %d"
                     % (idle100k["established"], soft))
        stop(echo)
        tunnel = None if cfg.no_tunnel else run_tunnel(cfg)
    finally:
        stop_all()
        del echo
    load_end = loadavg()

    # Medians.
    fig = {}
    for t in targets:
        f = fig.setdefault(t.name, {})
        for key, _, job, field, scale, _ in METRICS:
            if job and job in raw.get(t.name, {}):
                f[key] = median_of(raw[t.name][job], field, scale)
    for name, d in idle.items():
        for key, runs in d.items():
            vals = [r["bytes_per_conn"] for r in runs
                    if r and r["bytes_per_conn"] is not None]
            fig.setdefault(name, {})[key] = (statistics.median(vals)
                                             if vals else None)
    cols = [t.name for t in targets]
    head, rows = build_table(cols, fig)
    targets_met = check_targets(fig, idle100k)
    ceiling = tls_ceiling(fig, raw, aead)
    elapsed = time.monotonic() - t_start

    info = machine()
    versions = {
        "socat": version_of(["socat", "-V"]) if tools["socat"] else "",
        "haproxy": version_of(["haproxy", "-v"]) if tools["haproxy"] else "",
        "websockify": version_of(["dpkg-query", "-W", "-f",
                                  "${Version}", "websockify"]),
        "websocksy": version_of([WEBSOCKSY, "-V"]),
    }
    ratios = {}
    for key, *_ in METRICS:
        w = fig.get("websocksy", {}).get(key)
        for r in REFS:
            o = fig.get(r, {}).get(key)
            if w is not None and o:
                ratios.setdefault(key, {})[r] = round(w / o, 3)
    doc = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
           "quick": q, "runs": cfg.runs, "bulk_seconds": cfg.seconds,
           "machine": info, "versions": versions, "notes": notes,
           "figures": fig, "ratios_websocksy_to": ratios,
           "targets": [dict(zip(("target", "goal", "value", "status"), t))
                       for t in targets_met],
           "idle": idle, "idle_100k": idle100k, "raw": raw,
           "loadavg_start": load_start, "loadavg_end": load_end,
           "tunnel": tunnel, "aead_gb_per_s": aead,
           "tls_ceiling": ceiling, "elapsed_seconds": round(elapsed, 1)}
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "latest.json"), "w") as f:
        json.dump(doc, f, indent=1)
    tt = [("target", "goal", "value", "status")] + targets_met
    md = ["# websocksy benchmark, %s%s" % (doc["date"],
                                          " (quick)" if q else ""), "",
          "Machine: %s, %s CPUs, kernel %s, %s RAM." % (
              info["cpu"], info["nproc"], info["kernel"], info["memory"]),
          "Medians of %d run(s); bulk %.0f s per run; 16 KiB messages."
          % (cfg.runs, cfg.seconds),
          "Load average (/proc/loadavg, 1/5/15 min) at the start: %s; "
          "at the end: %s." % (load_start, load_end), "",
          md_table(head, rows), "",
          "Ratios are websocksy / reference from this run: above 1 is "
          "better for MB/s and handshakes/s, below 1 is better for "
          "latency and RSS.", "",
          md_table(list(tt[0]), [list(x) for x in tt[1:]]), ""]
    if ceiling:
        md += ceiling_lines(ceiling, fig) + [""]
    if idle100k:
        md.append("100 000 idle connections: %d established, %d alive "
                  "at the end, websocksy RSS %d kB." % (
                      idle100k["established"], idle100k["alive_at_end"],
                      idle100k["rss_after_kb"]))
        md.append("")
    th = None
    if tunnel and tunnel.get("figures"):
        th, trows = tunnel_table(tunnel)
        md += ["Tunnel (tests/bench/tunnel.py, same run: %s):"
               % tunnel.get("setup", "loadgen -> client -> server -> echo"),
               "", md_table(th, trows), ""]
        for k, v in (tunnel.get("ratios") or {}).items():
            md.append("- %s: %.2fx" % (k, v))
        md.append("")
    if notes:
        md += ["Notes:", ""] + ["- " + n for n in notes] + [""]
    prof = {n: raw[n]["profile"] for n in raw if "profile" in raw[n]}
    if prof:
        md += profile_md(prof)
    with open(os.path.join(RESULTS, "latest.md"), "w") as f:
        f.write("\n".join(md))

    print()
    print(text_table(head, rows))
    print()
    print(text_table(list(tt[0]), [list(x) for x in tt[1:]]))
    for line in ceiling_lines(ceiling, fig):
        print(line)
    if th:
        print()
        print(text_table(th, trows))
        for k, v in (tunnel.get("ratios") or {}).items():
            print("%-45s %.2fx" % (k, v))
    if prof:
        print()
        print("\n".join(profile_md(prof)))
    print("\nload average: %s at the start, %s at the end"
          % (load_start, load_end))
    print("\nwrote %s (%.0f s)" % (os.path.join(RESULTS, "latest.json"),
                                   elapsed))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        stop_all()
