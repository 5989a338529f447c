#!/usr/bin/python3
"""Tunnel throughput: websocksy-client -> websocksy against
v2ray-plugin -> v2ray-plugin (mux=0), in the same run, on 127.0.0.1.

    loadgen --tcp -> CLIENT (listens) ==ws / wss==> SERVER -> echo

Targets: `direct` (loadgen straight to the echo peer, the ceiling),
`websocksy` (ws, standard masking), `websocksy-skip` (ws, mask=skip),
`v2ray-plugin` (ws), and with TLS `websocksy-wss` and `v2ray-plugin-wss`
(tests/certs; v2ray-plugin trusts the test CA through SSL_CERT_FILE).
Each target gets: bulk with 1 connection and with 16 connections (echoed
payload MB/s), a 64-byte ping-pong (p50 / p99 round trip), and the CPU
time the two tunnel processes spent per GB during the 16-connection run.

    python3 tests/bench/tunnel.py [--seconds T] [--runs N] [--quick]
                                  [--no-tls] [--out FILE]

Standard library only.  Uses build/bench/echo and build/bench/loadgen
(compiled here with cc when missing), build/websocksy and
build/websocksy-client; installs Debian's shadowsocks-v2ray-plugin with
apt-get when missing (if that fails, its rows are skipped and the report
says so).  Bounded: every child has a deadline and the run stops starting
new measurements after about 100 s (the whole run stays under 2 minutes).
Prints a table and writes tests/bench/results/tunnel.json.
"""

import argparse
import datetime
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import (free_port, kill_group, machine, version_of,
                      wait_port)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.join(ROOT, "build")
BENCH = os.path.join(BUILD, "bench")
RESULTS = os.path.join(ROOT, "tests", "bench", "results")
WEBSOCKSY = os.path.join(BUILD, "websocksy")
CLIENT = os.path.join(BUILD, "websocksy-client")
LOADGEN = os.path.join(BENCH, "loadgen")
ECHO = os.path.join(BENCH, "echo")
CERTS = os.path.join(ROOT, "tests", "certs")
CERT = os.path.join(CERTS, "localhost.pem")
KEY = os.path.join(CERTS, "localhost.key")
CA = os.path.join(CERTS, "ca.pem")
HOST = "127.0.0.1"
WS_HOST = "bench.example"
WS_PATH = "/ws"
BUDGET = 100.0          # seconds after which no new measurement starts
TICK = os.sysconf("SC_CLK_TCK")

notes = []
procs = []


def note(msg):
    notes.append(msg)
    print("note: " + msg, flush=True)


# ---- environment ----

def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    if soft != resource.RLIM_INFINITY and soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        except (ValueError, OSError):
            pass


def build_tools():
    """The bench tools, compiled here when make has not built them."""
    for name, path in (("echo", ECHO), ("loadgen", LOADGEN)):
        src = os.path.join(ROOT, "tests", "bench", name + ".c")
        if os.access(path, os.X_OK) and \
                os.path.getmtime(path) >= os.path.getmtime(src):
            continue
        os.makedirs(BENCH, exist_ok=True)
        cc = os.environ.get("CC", "cc")
        print("building %s" % path, flush=True)
        # loadgen speaks TLS through GnuTLS (as the Makefile links it).
        libs = subprocess.run(["pkg-config", "--cflags", "--libs", "gnutls"],
                              capture_output=True, text=True).stdout.split()
        r = subprocess.run([cc, "-O2", "-D_GNU_SOURCE", "-o", path, src]
                           + libs + ["-lm"],
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            sys.exit("cannot build %s:\n%s" % (path, r.stderr))
    for p in (WEBSOCKSY, CLIENT):
        if not os.access(p, os.X_OK):
            sys.exit("%s is not built (make all)" % p)


def v2ray_plugin():
    """Debian's shadowsocks-v2ray-plugin (binary ss-v2ray-plugin), installed
    with apt-get when missing; None (with a note) when unavailable."""
    names = ("ss-v2ray-plugin", "v2ray-plugin")
    found = next((shutil.which(n) for n in names if shutil.which(n)), None)
    if found:
        return found
    cmd = []
    if os.geteuid() != 0:
        if shutil.which("sudo") is None:
            note("v2ray-plugin missing, not root and no sudo: its rows are "
                 "skipped")
            return None
        cmd = ["sudo", "-n"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    print("installing shadowsocks-v2ray-plugin", flush=True)
    for argv in (["apt-get", "install", "-y", "-qq", "shadowsocks-v2ray-plugin"],
                 ["apt-get", "update", "-qq"],
                 ["apt-get", "install", "-y", "-qq", "shadowsocks-v2ray-plugin"]):
        try:
            subprocess.run(cmd + argv, env=env, stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=180)
        except (OSError, subprocess.TimeoutExpired) as e:
            note("apt-get failed: %s" % e)
            break
        found = next((shutil.which(n) for n in names if shutil.which(n)), None)
        if found:
            return found
    note("shadowsocks-v2ray-plugin could not be installed: its rows are "
         "skipped")
    return None


# ---- processes ----

def start(argv, port, name, env=None):
    argv = [str(x) for x in argv]
    log = tempfile.TemporaryFile()
    p = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                         stdout=log, stderr=log, start_new_session=True)
    p.log = log
    procs.append(p)
    if not wait_port(port, p):
        stop(p)
        log.seek(0)
        err = log.read().decode(errors="replace").strip()[-400:]
        raise RuntimeError("%s did not start (%s): %s" % (
            name, " ".join(argv), err))
    return p


def stop(p):
    kill_group(p)
    try:
        p.log.close()
    except AttributeError:
        pass
    if p in procs:
        procs.remove(p)


def stop_all():
    for p in list(procs):
        stop(p)


def cpu_ticks(pids):
    """utime + stime of the processes (all their threads), in ticks."""
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total


def loadgen(args, timeout):
    argv = [LOADGEN, "--tcp"] + [str(a) for a in args]
    try:
        r = subprocess.run(argv, capture_output=True, text=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"ok": False, "last_error": "loadgen timed out"}
    lines = [l for l in r.stdout.splitlines() if l.startswith("{")]
    if not lines:
        return {"ok": False, "last_error": "no output: " + r.stderr.strip()}
    return json.loads(lines[-1])


# ---- targets ----

class Target:
    """name; start(echo_port) -> the port loadgen connects to."""

    def __init__(self, name, start_fn, tls=False):
        self.name = name
        self.start_fn = start_fn
        self.tls = tls
        self.port = None
        self.pids = []
        self.error = None
        self.runs = []          # one dict of figures per run


def websocksy_pair(client_opts, server_opts):
    def fn(echo_port):
        sp, cp = free_port(), free_port()
        s = start([WEBSOCKSY, "-q", "-l", HOST, "-p", sp, "-o", server_opts,
                   "-c", "host=%s" % HOST, "-c", "port=%d" % echo_port],
                  sp, "websocksy")
        c = start([CLIENT, "-q", "%s:%d" % (HOST, cp), "%s:%d" % (HOST, sp),
                   client_opts], cp, "websocksy-client")
        return cp, [s.pid, c.pid]
    fn.argv_note = (client_opts, server_opts)
    return fn


def v2ray_pair(v2, tls):
    def fn(echo_port):
        sp, cp = free_port(), free_port()
        common = ["-mux", "0", "-path", WS_PATH, "-loglevel", "none"]
        if tls:
            common += ["-tls", "-host", "localhost"]
        else:
            common += ["-host", WS_HOST]
        s = start([v2, "-server", "-localAddr", HOST, "-localPort", str(sp),
                   "-remoteAddr", HOST, "-remotePort", str(echo_port)]
                  + common + (["-cert", CERT, "-key", KEY] if tls else []),
                  sp, "v2ray-plugin server")
        # Go reads SSL_CERT_FILE: the only way to make it trust the test CA
        env = dict(os.environ, SSL_CERT_FILE=CA)
        c = start([v2, "-localAddr", HOST, "-localPort", str(cp),
                   "-remoteAddr", HOST, "-remotePort", str(sp)] + common,
                  cp, "v2ray-plugin client", env=env)
        return cp, [s.pid, c.pid]
    return fn


def make_targets(v2, with_tls):
    ws = "ws;host=%s;path=%s" % (WS_HOST, WS_PATH)
    wss_c = "ws;tls;sni=localhost;ca=%s;host=localhost;path=%s" % (CA, WS_PATH)
    wss_s = "ws;tls;cert=%s;key=%s;host=localhost;path=%s" % (CERT, KEY, WS_PATH)
    t = [Target("direct", lambda echo_port: (echo_port, [])),
         Target("websocksy", websocksy_pair(ws, ws)),
         Target("websocksy-skip", websocksy_pair(ws + ";mask=skip", ws))]
    if v2:
        t.append(Target("v2ray-plugin", v2ray_pair(v2, False)))
    if with_tls:
        t.append(Target("websocksy-wss", websocksy_pair(wss_c, wss_s), tls=True))
        if v2:
            t.append(Target("v2ray-plugin-wss", v2ray_pair(v2, True), tls=True))
    return t


# ---- measurements ----

def measure(t, seconds, started):
    """One run of the three workloads; None figures on errors."""
    fig = {}

    def over_budget():
        return time.monotonic() - started > BUDGET

    if over_budget():
        return None
    r = loadgen(["-p", t.port, "-c", 1, "-s", "16k", "-t", seconds, "bulk"],
                seconds + 30)
    fig["bulk_1"] = r["bytes_per_s"] / 1e6 if r.get("ok") else None
    if not r.get("ok"):
        note("%s bulk 1: %s" % (t.name, r.get("last_error")))
    if over_budget():
        return fig
    before = cpu_ticks(t.pids)
    r = loadgen(["-p", t.port, "-c", 16, "-s", "16k", "-t", seconds, "bulk"],
                seconds + 30)
    ticks = cpu_ticks(t.pids) - before
    if r.get("ok"):
        fig["bulk_16"] = r["bytes_per_s"] / 1e6
        if t.pids and r.get("bytes"):
            fig["cpu_s_per_gb"] = ticks / TICK / (r["bytes"] / 1e9)
    else:
        fig["bulk_16"] = None
        note("%s bulk 16: %s" % (t.name, r.get("last_error")))
    if over_budget():
        return fig
    r = loadgen(["-p", t.port, "-s", 64, "-n", 5000, "-t", seconds,
                 "pingpong"], seconds + 30)
    if r.get("ok"):
        fig["pp_p50"] = r["p50_us"]
        fig["pp_p99"] = r["p99_us"]
    else:
        note("%s pingpong: %s" % (t.name, r.get("last_error")))
    return fig


def median(t, key):
    vals = [r[key] for r in t.runs if r and r.get(key) is not None]
    return statistics.median(vals) if vals else None


# ---- report ----

COLS = [("bulk_1", "1 conn MB/s", "%.0f"), ("bulk_16", "16 conns MB/s", "%.0f"),
        ("pp_p50", "rtt p50 us", "%.1f"), ("pp_p99", "rtt p99 us", "%.1f"),
        ("cpu_s_per_gb", "CPU s/GB", "%.2f")]

RATIOS = [("websocksy", "v2ray-plugin"), ("websocksy-skip", "v2ray-plugin"),
          ("websocksy-wss", "v2ray-plugin-wss")]


def table(figures):
    head = ["target"] + [c[1] for c in COLS]
    rows = []
    for name, fig in figures.items():
        rows.append([name] + [(fmt % fig[k]) if fig.get(k) is not None else "-"
                              for k, _, fmt in COLS])
    w = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]
    line = lambda r: "  ".join(c.rjust(w[i]) if i else c.ljust(w[i])
                               for i, c in enumerate(r))
    return "\n".join([line(head), line(["-" * x for x in w])] +
                     [line(r) for r in rows])


def ratios(figures):
    out = {}
    for a, b in RATIOS:
        fa, fb = figures.get(a), figures.get(b)
        if not fa or not fb:
            continue
        for k in ("bulk_1", "bulk_16"):
            if fa.get(k) and fb.get(k):
                out["%s/%s %s" % (a, b, k)] = round(fa[k] / fb[k], 2)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=2.0,
                    help="seconds per bulk run (default 2)")
    ap.add_argument("--runs", type=int, default=2,
                    help="runs per figure, the median is kept (default 2)")
    ap.add_argument("--quick", action="store_true",
                    help="1 run of 1 s: a smoke test")
    ap.add_argument("--no-tls", action="store_true", help="skip the wss rows")
    ap.add_argument("--out", default=os.path.join(RESULTS, "tunnel.json"))
    a = ap.parse_args()
    if a.quick:
        a.seconds, a.runs = 1.0, 1
    a.seconds = max(0.5, min(a.seconds, 10.0))
    a.runs = max(1, min(a.runs, 5))

    started = time.monotonic()
    raise_nofile()
    build_tools()
    v2 = v2ray_plugin()
    echo_port = free_port()
    targets = []
    try:
        start([ECHO, str(echo_port), HOST], echo_port, "echo")
        for t in make_targets(v2, not a.no_tls):
            try:
                t.port, t.pids = t.start_fn(echo_port)
            except RuntimeError as e:
                t.error = str(e)
                note("%s skipped: %s" % (t.name, e))
            targets.append(t)
        live = [t for t in targets if t.error is None]
        # runs interleave the targets, so slow drift hits all of them alike
        for run in range(a.runs):
            for t in live:
                print("run %d/%d: %s" % (run + 1, a.runs, t.name), flush=True)
                fig = measure(t, a.seconds, started)
                if fig is None:
                    note("time budget (%d s) reached: %s run %d and later "
                         "skipped" % (BUDGET, t.name, run + 1))
                    break
                t.runs.append(fig)
            else:
                continue
            break
    finally:
        stop_all()

    figures = {}
    for t in targets:
        if t.runs:
            figures[t.name] = {k: median(t, k) for k, _, _ in COLS}
            figures[t.name]["runs"] = len(t.runs)
    rat = ratios(figures)
    print()
    print(table(figures))
    if rat:
        print()
        for k, v in rat.items():
            print("%-45s %.2fx" % (k, v))
    for n in notes:
        print("note: " + n)
    report = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "seconds": a.seconds, "runs": a.runs,
        "elapsed_s": round(time.monotonic() - started, 1),
        "machine": machine(),
        "versions": {
            "websocksy": version_of([WEBSOCKSY, "--version"]),
            "websocksy-client": version_of([CLIENT, "--version"]),
            "v2ray-plugin": version_of([v2, "-version"]) if v2 else None,
        },
        "setup": "loadgen --tcp -> client -> server -> echo, 127.0.0.1; "
                 "16 KiB writes; v2ray-plugin with mux=0 on both ends; "
                 "CPU s/GB = client+server CPU time per GB echoed "
                 "(16 connections)",
        "notes": notes,
        "figures": figures,
        "ratios": rat,
    }
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(report, f, indent=1)
        f.write("\n")
    print("\nwritten: %s (%.0f s)" % (a.out, report["elapsed_s"]))
    return 0 if figures.get("websocksy") else 1


if __name__ == "__main__":
    def on_signal(sig, frame):
        stop_all()
        sys.exit(1)
    signal.signal(signal.SIGTERM, on_signal)
    sys.exit(main())
