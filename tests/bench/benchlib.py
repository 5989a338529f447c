"""benchlib.py - what run.py, tunnel.py and loss.py share: the machine
line of a report, a tool's version, loopback ports, and stopping a
process group.  Standard library only; the scripts import it from their
own directory."""

import os
import platform
import signal
import socket
import subprocess
import time

HOST = "127.0.0.1"


def machine():
    """CPU model, CPU count, kernel and python version."""
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": model, "nproc": os.cpu_count(),
            "kernel": platform.release(), "python": platform.python_version()}


def version_of(argv):
    """The first line a tool prints about itself, or ""."""
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        out = (r.stdout + r.stderr).strip().splitlines()
        return out[0] if out else ""
    except (OSError, subprocess.TimeoutExpired):
        return ""


def free_port(host=HOST):
    s = socket.socket()
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, proc, timeout=10.0, host=HOST):
    """True once something accepts on port; False if proc exits first or
    the time runs out."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            return False
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def kill_group(p, wait=5.0):
    """SIGTERM to p's process group (started with start_new_session),
    SIGKILL if it is still there after wait seconds."""
    if p.poll() is not None:
        return
    try:
        os.killpg(p.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        p.wait(timeout=wait)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait(timeout=wait)
