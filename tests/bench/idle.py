#!/usr/bin/python3
"""make bench, the idle-cost curve: one busy connection beside N idle ones.

Real WebSocket load is thousands of quiet connections and a few busy ones.
For each target (websocksy with each poller, haproxy in TCP mode in front
of the same echo peer) and each N in 0, 1 000, 3 000, 10 000, an
independent load generator opens N connections (upgraded, for websocksy)
and leaves them idle; beside them it measures bulk throughput on one
connection with 16 KiB messages, ping-pong 64 B latency, and (websocksy)
handshakes per second.  Results: tests/bench/results/idle.json and
idle.md; the table is printed too.  Only 127.0.0.1; every child has a
deadline; a full run stays under 6 minutes (--quick: about 1).
"""

import argparse
import datetime
import json
import os
import signal
import statistics
import subprocess
import sys
import time

import run as R
from benchlib import free_port

IDLE_N = (0, 1000, 3000, 10000)


def targets(echo_port, maxconn, have_haproxy):
    t = []
    for poller in ("epoll", "poll"):
        t.append(R.Target("websocksy-" + poller, "ws", R.websocksy_argv(
            echo_port, extra=("-C", "poller=" + poller))))
    if have_haproxy:
        t.append(R.Target("haproxy-tcp", "tcp", R.haproxy_argv(echo_port,
                                                              maxconn)))
    return t


def open_idle(t, port, n, limit):
    """A loadgen holding n idle connections, and how many it opened."""
    if n == 0:
        return None, 0
    lg = subprocess.Popen([R.LOADGEN] + t.lg() + [
        "-p", str(port), "-c", str(n), "--src-spread", "8",
        "--concurrency", "512", "-t", str(limit), "--timeout", "5",
        "--hold", "300", "idle"], stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, start_new_session=True)
    R.procs.append(lg)
    ready = R.read_ready(lg, limit + 30)
    return lg, ready[0] if ready else 0


def close_idle(lg):
    if lg is None:
        return
    lg.send_signal(signal.SIGTERM)
    try:
        lg.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        pass
    R.stop(lg)


def measure(t, port, cfg):
    lg = t.lg()
    out = {}
    bulk = [R.loadgen(lg + ["-p", port, "-c", 1, "-s", 16384, "-t",
                            cfg.seconds, "bulk"], cfg.seconds + 40)
            for _ in range(cfg.runs)]
    vals = [b["bytes_per_s"] for b in bulk if b.get("ok")]
    out["bulk_mb_s"] = round(statistics.median(vals) / 1e6, 1) if vals \
        else None
    pp = R.loadgen(lg + ["-p", port, "-s", 64, "-n", cfg.pp_count, "-t", 20,
                         "pingpong"], 40)
    out["pp_p50_us"] = pp.get("p50_us") if pp.get("ok") else None
    out["pp_p99_us"] = pp.get("p99_us") if pp.get("ok") else None
    if t.kind == "ws":
        hs = R.loadgen(lg + ["-p", port, "-c", 32, "-s", 64, "-t",
                             cfg.hs_seconds, "--src-spread", 8, "handshakes"],
                       cfg.hs_seconds + 30)
        out["hs_per_s"] = round(hs["handshakes_per_s"]) if hs.get("ok") \
            and hs.get("handshakes_per_s") else None
    return out


def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, float) and v < 10:
        return "%.2f" % v
    return "{:,}".format(round(v)).replace(",", " ")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--runs", type=int)
    cfg = ap.parse_args()
    cfg.runs = cfg.runs or (1 if cfg.quick else 3)
    cfg.seconds = 1.0 if cfg.quick else 3.0
    cfg.pp_count = 500 if cfg.quick else 2000
    cfg.hs_seconds = 1.0 if cfg.quick else 2.0
    limit = 20 if cfg.quick else 45
    t0 = time.monotonic()
    for f in (R.WEBSOCKSY, R.LOADGEN, R.ECHO):
        if not os.access(f, os.X_OK):
            sys.exit("idle.py: %s missing: run make bench" % f)
    soft, hard = R.raise_nofile()
    tools = R.ensure_tools(["haproxy"])
    # A relay holds two descriptors per connection.
    cap = (soft - 200) // 2
    ns = [n if n <= cap else cap for n in IDLE_N]
    notes = []
    if ns[-1] < IDLE_N[-1]:
        notes.append("fd limit %d: the 10 000 row holds %d idle connections"
                     % (soft, ns[-1]))
    load_start = R.loadavg()
    echo_port = free_port()
    echo = R.start([R.ECHO, str(echo_port)], echo_port, "echo")
    res = {}
    try:
        for t in targets(echo_port, max(1000, (soft - 100) // 2),
                         tools["haproxy"]):
            port = free_port()
            try:
                p = R.start(t.argv_fn(port), port, t.name)
            except RuntimeError as e:
                notes.append(str(e))
                continue
            for n in ns:
                print("== %s, %d idle" % (t.name, n), flush=True)
                lg, got = open_idle(t, port, n, limit)
                row = measure(t, port, cfg)
                row["idle"] = got
                res.setdefault(t.name, {})[str(n)] = row
                close_idle(lg)
                if got < n:
                    notes.append("%s: %d of %d idle connections opened"
                                 % (t.name, got, n))
                if p.poll() is not None:
                    notes.append("%s exited" % t.name)
                    break
            R.stop(p)
    finally:
        R.stop_all()
        del echo
    write_report(res, ns, notes, cfg, load_start, time.monotonic() - t0)


def write_report(res, ns, notes, cfg, load_start, elapsed):
    names = list(res)
    ref = "haproxy-tcp" if "haproxy-tcp" in res else None
    head = ["idle conns"]
    for nm in names:
        head.append("%s MB/s" % nm)
    if ref:
        head += ["epoll / haproxy", "poll / haproxy"]
    head += ["%s p99 us" % nm for nm in names]
    head += ["%s hs/s" % nm for nm in names if nm.startswith("websocksy")]
    rows = []
    for n in ns:
        k = str(n)
        r = ["{:,}".format(n).replace(",", " ")]
        r += [fmt(res[nm].get(k, {}).get("bulk_mb_s")) for nm in names]
        if ref:
            h = res[ref].get(k, {}).get("bulk_mb_s")
            for nm in ("websocksy-epoll", "websocksy-poll"):
                w = res.get(nm, {}).get(k, {}).get("bulk_mb_s")
                r.append("%.2f" % (w / h) if w and h else "-")
        r += [fmt(res[nm].get(k, {}).get("pp_p99_us")) for nm in names]
        r += [fmt(res[nm].get(k, {}).get("hs_per_s")) for nm in names
              if nm.startswith("websocksy")]
        rows.append(r)
    info = R.machine()
    date = datetime.datetime.now().isoformat(timespec="seconds")
    md = ["# Busy beside idle, %s%s" % (date, " (quick)" if cfg.quick else ""),
          "",
          "Machine: %s, %s CPUs, kernel %s.  One bulk connection (16 KiB "
          "messages, %.0f s, median of %d), ping-pong 64 B p99 and "
          "handshakes/s (32 at a time), each beside N idle connections "
          "held by a separate load generator.  Load average at the start: "
          "%s; at the end: %s." % (info["cpu"], info["nproc"], info["kernel"],
                                   cfg.seconds, cfg.runs, load_start,
                                   R.loadavg()), "",
          R.md_table(head, rows), ""]
    md += ["Note: %s." % n for n in notes]
    os.makedirs(R.RESULTS, exist_ok=True)
    with open(os.path.join(R.RESULTS, "idle.json"), "w") as f:
        json.dump({"date": date, "quick": cfg.quick, "runs": cfg.runs,
                   "machine": info, "results": res, "notes": notes,
                   "elapsed_seconds": round(elapsed, 1)}, f, indent=1)
    with open(os.path.join(R.RESULTS, "idle.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    print(R.text_table(head, rows))
    for n in notes:
        print("note: " + n)
    print("(%.0f s) results: tests/bench/results/idle.md" % elapsed)


if __name__ == "__main__":
    main()
