"""Drive Chromium headless for the wss tests.

find_chromium() finds the browser (or installs the Debian package once);
open_and_poll() loads a URL in headless Chromium and polls a JavaScript
expression over the DevTools protocol until it is no longer "pending".
--dump-dom with --virtual-time-budget does not wait for WebSocket traffic
(virtual time runs on while a socket is open), so a page that finishes in a
WebSocket callback is read by polling instead.  Everything is bounded.
"""
import asyncio
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request

import websockets


def find_chromium(install=True):
    for name in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(name)
        if p:
            return p
    if not install:
        return None
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
    if os.geteuid() != 0:
        if shutil.which("sudo") is None:
            return None
        cmd = ["sudo", "-n"] + cmd
    try:
        subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=600,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    except (OSError, subprocess.TimeoutExpired):
        return None
    return shutil.which("chromium")


def base_args(chrome, profile):
    return [chrome, "--headless", "--no-sandbox", "--disable-gpu",
            "--ignore-certificate-errors", "--no-first-run", "--disable-extensions",
            "--disable-background-networking", "--user-data-dir=%s" % profile]


def dump_dom(chrome, url, profile, budget_ms=5000, timeout=60):
    """chromium --headless --dump-dom URL; returns the DOM text ("" on timeout)."""
    argv = base_args(chrome, profile) + ["--virtual-time-budget=%d" % budget_ms,
                                         "--dump-dom", url]
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, timeout=timeout)
    except subprocess.TimeoutExpired:
        return ""
    return p.stdout.decode(errors="replace")


def _stop(p):
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)   # its own session: our children only
            except OSError:
                pass
            p.wait(5)


def open_and_poll(chrome, url, profile, expr, timeout=20.0, log=None):
    """Load url; poll expr (a JS expression giving a string) until it is not
    "pending".  Returns (value, outerHTML)."""
    os.makedirs(profile, exist_ok=True)
    portfile = os.path.join(profile, "DevToolsActivePort")
    if os.path.exists(portfile):
        os.unlink(portfile)
    out = open(log, "ab") if log else subprocess.DEVNULL
    p = subprocess.Popen(base_args(chrome, profile) + [
        "--remote-debugging-port=0", "--remote-allow-origins=*", url],
        stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True)
    deadline = time.monotonic() + timeout
    try:
        port = None
        while time.monotonic() < deadline and p.poll() is None:
            try:
                with open(portfile) as f:
                    port = int(f.readline().strip())
                break
            except (OSError, ValueError):
                time.sleep(0.05)
        if port is None:
            raise AssertionError("chromium gave no DevTools port (exit %s)" % p.poll())
        target = None
        while time.monotonic() < deadline and target is None:
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/json/list" % port,
                                            timeout=2) as r:
                    pages = json.loads(r.read().decode())
                target = next((t for t in pages if t.get("type") == "page"
                               and t.get("url", "").startswith(url)), None)
            except OSError:
                pass
            if target is None:
                time.sleep(0.05)
        if target is None:
            raise AssertionError("chromium has no page for %s" % url)
        left = max(1.0, deadline - time.monotonic())
        return asyncio.run(asyncio.wait_for(
            _poll(target["webSocketDebuggerUrl"], expr, deadline), left))
    finally:
        _stop(p)
        if log:
            out.close()


async def _poll(ws_url, expr, deadline):
    async with websockets.connect(ws_url, max_size=None, ping_interval=None,
                                  compression=None, open_timeout=5) as ws:
        n = 0

        async def evaluate(e):
            nonlocal n
            n += 1
            await ws.send(json.dumps({"id": n, "method": "Runtime.evaluate",
                                      "params": {"expression": e, "returnByValue": True}}))
            while True:
                m = json.loads(await ws.recv())
                if m.get("id") == n:
                    return m.get("result", {}).get("result", {}).get("value")
        value = "pending"
        while time.monotonic() < deadline:
            value = await evaluate(expr)
            if value not in (None, "pending"):
                break
            await asyncio.sleep(0.1)
        html = await evaluate("document.documentElement.outerHTML")
        return value, html
