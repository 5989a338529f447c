"""websocksy and websocksy-client as shadowsocks SIP003 plugins, with real
programs from Debian: shadowsocks-libev (ss-local, ss-server), curl, and
shadowsocks-v2ray-plugin for the cross-implementation checks.

The chain of every test:

    curl --socks5-hostname -> ss-local -> client plugin ==(ws / wss / tls /
    tcp)==> server plugin -> ss-server -> HTTP server (Python, 127.0.0.1)

The HTTP server serves a 20 MB random file; what curl receives must have
the same SHA-256.  Missing Debian packages are installed with apt-get when
we are root (or have sudo -n); a package that cannot be installed skips
the tests that need it, with the reason.

Binaries: env WEBSOCKSY_BIN (default <repo>/build/websocksy) and
WEBSOCKSY_CLIENT_BIN (default <repo>/build/websocksy-client).
Only 127.0.0.1 (and ::1 for the IPv6 chain); every wait is bounded; every
process is stopped in a finally block (its own process group).
"""
import hashlib
import http.server
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time

import pytest

from conftest import BIN, REPO, SANITIZER_MARKERS, free_port, wait_for

CLIENT = os.path.abspath(os.environ.get(
    "WEBSOCKSY_CLIENT_BIN", os.path.join(REPO, "build", "websocksy-client")))
CERTS = os.path.join(REPO, "tests", "certs")
CERT = os.path.join(CERTS, "localhost.pem")
KEY = os.path.join(CERTS, "localhost.key")
CA = os.path.join(CERTS, "ca.pem")

METHOD = "chacha20-ietf-poly1305"
PASSWORD = "test"
FILE_SIZE = 20 * 1000 * 1000
CONCURRENT = 20

WS_SERVER = "server;path=/ws;host=example.com"
WS_CLIENT = "ws;path=/ws;host=example.com"
WSS_SERVER = "server;tls;cert=%s;key=%s;host=localhost;path=/ws" % (CERT, KEY)
WSS_CLIENT = "ws;tls;sni=localhost;ca=%s;host=localhost;path=/ws" % CA

pytestmark = pytest.mark.skipif(
    not (os.access(BIN, os.X_OK) and os.access(CLIENT, os.X_OK)),
    reason="websocksy or websocksy-client not built (%s, %s)" % (BIN, CLIENT))


# ------------------------------------------------------------ Debian tools
_tool_cache = {}
_tool_lock = threading.Lock()


def _apt_install(pkg):
    """apt-get install PKG; returns None or why it could not be done."""
    cmd = []
    if os.geteuid() != 0:
        if shutil.which("sudo") is None:
            return "not root and no sudo"
        cmd = ["sudo", "-n"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        p = subprocess.run(cmd + ["apt-get", "install", "-y", "-qq", pkg],
                           env=env, stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=300)
        if p.returncode != 0:
            subprocess.run(cmd + ["apt-get", "update", "-qq"], env=env,
                           stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=300)
            p = subprocess.run(cmd + ["apt-get", "install", "-y", "-qq", pkg],
                               env=env, stdin=subprocess.DEVNULL,
                               capture_output=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as e:
        return "apt-get failed: %s" % e
    if p.returncode != 0:
        return "apt-get install %s failed: %s" % (
            pkg, p.stderr.decode(errors="replace").strip()[-300:])
    return None


def tool(pkg, *names):
    """The path of the first of names found (installing pkg if none is),
    or pytest.skip with the reason."""
    with _tool_lock:
        k = (pkg,) + names
        if k not in _tool_cache:
            found = next((shutil.which(n) for n in names if shutil.which(n)), None)
            why = None
            if found is None:
                why = _apt_install(pkg)
                found = next((shutil.which(n) for n in names if shutil.which(n)),
                             None)
                if found is None and why is None:
                    why = "package %s installed but no %s" % (pkg, "/".join(names))
            _tool_cache[k] = (found, why)
        found, why = _tool_cache[k]
    if found is None:
        pytest.skip("%s unavailable (%s)" % (pkg, why))
    return found


def ss_tools():
    return (tool("shadowsocks-libev", "ss-server"),
            tool("shadowsocks-libev", "ss-local"),
            tool("curl", "curl"))


def v2ray_plugin():
    # Debian names the binary ss-v2ray-plugin; upstream v2ray-plugin
    return tool("shadowsocks-v2ray-plugin", "ss-v2ray-plugin", "v2ray-plugin")


# ------------------------------------------------------------- HTTP origin
class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass


class Origin:
    """A threaded HTTP server on 127.0.0.1 serving `file` (20 MB random)
    and `small` from a temporary directory."""

    def __init__(self, root):
        self.root = root
        data = os.urandom(FILE_SIZE)
        with open(os.path.join(root, "file"), "wb") as f:
            f.write(data)
        self.sha = hashlib.sha256(data).hexdigest()
        with open(os.path.join(root, "small"), "wb") as f:
            f.write(b"ok\n")

        def handler(*a, **kw):
            return _Quiet(*a, directory=root, **kw)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.t = threading.Thread(target=self.httpd.serve_forever,
                                  kwargs={"poll_interval": 0.1}, daemon=True)
        self.t.start()

    def url(self, name="file"):
        return "http://127.0.0.1:%d/%s" % (self.port, name)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.t.join(5)


@pytest.fixture(scope="module")
def origin(tmp_path_factory):
    o = Origin(str(tmp_path_factory.mktemp("origin")))
    try:
        yield o
    finally:
        o.close()


# --------------------------------------------------------------- processes
def _children(pid):
    """Direct children of pid (the SIP003 plugin under ss-local/ss-server)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        fields = st.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(d))
    return out


def _alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _listening(host, port):
    try:
        socket.create_connection((host, port), 0.3).close()
        return True
    except OSError:
        return False


class Proc:
    """A program in its own process group, output to a log file."""

    def __init__(self, name, cmd, log_path, env=None):
        self.name = name
        self.cmd = cmd
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=self._log,
                                     start_new_session=True)
        self.pid = self.proc.pid
        self.plugins = []
        self.stopped = False

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def wait_port(self, host, port, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("%s exited with %s before listening:\n%s"
                                     % (self.name, self.proc.returncode, self.log()))
            if _listening(host, port):
                self.plugins = _children(self.pid)
                return
            time.sleep(0.03)
        raise AssertionError("%s: nothing listens on %s:%d after %ss:\n%s"
                             % (self.name, host, port, timeout, self.log()))

    def stop(self):
        """SIGTERM; the plugin must follow its parent out within 5 s.
        Returns a list of problems (empty when all went well)."""
        if self.stopped:
            return []
        self.stopped = True
        problems = []
        if not self.plugins and self.proc.poll() is None:
            self.plugins = _children(self.pid)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            problems.append("%s ignored SIGTERM" % self.name)
        if not wait_for(lambda: not any(_alive(p) for p in self.plugins), 5.0):
            problems.append("%s: plugin %s still running 5 s after its parent "
                            "stopped" % (self.name, self.plugins))
        for p in self.plugins:
            try:
                os.kill(p, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        self._log.close()
        log = self.log()
        for m in SANITIZER_MARKERS:
            if m in log:
                problems.append("%s: sanitizer report:\n%s" % (self.name, log[-6000:]))
        return problems


class Chain:
    """ss-server and ss-local with the given plugins; see the fixture."""

    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.procs = []
        self.ss_server, self.ss_local, self.curl = ss_tools()

    def _start(self, name, cmd, env=None):
        p = Proc(name, cmd, str(self.tmp / ("%s%d.log" % (name, len(self.procs)))),
                 env)
        self.procs.append(p)
        return p

    def server(self, plugin=None, opts=None, host="127.0.0.1", env=None,
               more_hosts=()):
        """ss-server on a free port of host (and more_hosts: shadowsocks
        passes them all as SS_REMOTE_HOST=a|b); its plugin (if any)
        listens there.  Returns the Proc, with .port."""
        port = free_port(socket.AF_INET6 if ":" in host else socket.AF_INET)
        cmd = [self.ss_server, "-s", host]
        for h in more_hosts:
            cmd += ["-s", h]
        cmd += ["-p", str(port), "-m", METHOD, "-k", PASSWORD, "-t", "60"]
        if plugin:
            cmd += ["--plugin", plugin]
            if opts is not None:
                cmd += ["--plugin-opts", opts]
        p = self._start("ss-server", cmd, env)
        p.port = port
        p.wait_port(host, port)
        return p

    def local(self, server_port, plugin=None, opts=None, host="127.0.0.1",
              env=None, origin=None):
        """ss-local (SOCKS5 on 127.0.0.1) towards host:server_port.  With
        origin, waits until a small file comes through the whole chain."""
        port = free_port()
        cmd = [self.ss_local, "-s", host, "-p", str(server_port), "-b",
               "127.0.0.1", "-l", str(port), "-m", METHOD, "-k", PASSWORD,
               "-t", "60"]
        if plugin:
            cmd += ["--plugin", plugin]
            if opts is not None:
                cmd += ["--plugin-opts", opts]
        p = self._start("ss-local", cmd, env)
        p.port = port
        p.wait_port("127.0.0.1", port)
        if origin is not None:
            self.wait_through(p, origin)
        return p

    def wait_through(self, local, origin, timeout=15.0):
        """ss-local listens at once; its plugin may still be starting."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            r = self.fetch(local.port, origin.url("small"), timeout=5)
            if r[0] == 0 and r[2] == 3:
                local.plugins = _children(local.pid)
                return
            last = r
            time.sleep(0.1)
        raise AssertionError("nothing came through the chain in %ss (curl %s)"
                             "\n--- logs ---\n%s" % (timeout, last, self.logs()))

    def fetch(self, port, url, timeout=90):
        """curl through the SOCKS5 port; returns (rc, sha256, size, stderr),
        hashing the body as it streams (nothing is kept in memory)."""
        cmd = [self.curl, "-sS", "--max-time", str(timeout), "--socks5-hostname",
               "127.0.0.1:%d" % port, url]
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        h = hashlib.sha256()
        n = 0
        try:
            while True:
                d = p.stdout.read(1 << 18)
                if not d:
                    break
                h.update(d)
                n += len(d)
            err = p.stderr.read().decode(errors="replace")
            rc = p.wait(timeout + 5)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait(5)
            p.stdout.close()
            p.stderr.close()
        return rc, h.hexdigest(), n, err

    def download(self, local, origin, count=1):
        """count downloads of the 20 MB file at once; each must be
        byte-identical."""
        results = [None] * count

        def one(i):
            try:
                results[i] = self.fetch(local.port, origin.url())
            except Exception as e:  # reported below
                results[i] = (-1, "", 0, repr(e))

        ts = [threading.Thread(target=one, args=(i,), daemon=True)
              for i in range(count)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(120)
        bad = []
        for i, r in enumerate(results):
            if r is None:
                bad.append("#%d: still running after 120 s" % i)
            elif r[0] != 0 or r[1] != origin.sha or r[2] != FILE_SIZE:
                bad.append("#%d: curl rc %s, %d bytes, sha %s: %s"
                           % (i, r[0], r[2], "ok" if r[1] == origin.sha else "WRONG",
                              r[3].strip()))
        assert not bad, "downloads failed:\n%s\n--- logs ---\n%s" % (
            "\n".join(bad), self.logs())

    def logs(self):
        return "\n".join("[%s]\n%s" % (p.name, p.log()[-3000:]) for p in self.procs)

    def stop(self):
        problems = []
        # clients first, then servers
        for p in sorted(self.procs, key=lambda p: p.name != "ss-local"):
            problems += p.stop()
        return problems


@pytest.fixture
def chain(tmp_path):
    c = Chain(tmp_path)
    try:
        yield c
    finally:
        problems = c.stop()
    if problems:
        pytest.fail("\n".join(problems))


# ------------------------------------------------------- websocksy both ends
def _ws_pair(chain, origin, server_opts, client_opts, host="127.0.0.1"):
    srv = chain.server(BIN, server_opts, host=host)
    loc = chain.local(srv.port, CLIENT, client_opts, host=host, origin=origin)
    return srv, loc


def test_ws_20mb_identical_and_20_at_once(chain, origin):
    srv, loc = _ws_pair(chain, origin, WS_SERVER, WS_CLIENT)
    chain.download(loc, origin)
    chain.download(loc, origin, CONCURRENT)
    assert "(ws)" in srv.log(), srv.log()
    assert "open (ws)" in loc.log(), loc.log()
    assert len(srv.plugins) == 1 and len(loc.plugins) == 1


def test_wss_20mb_identical_and_20_at_once(chain, origin):
    srv, loc = _ws_pair(chain, origin, WSS_SERVER, WSS_CLIENT)
    chain.download(loc, origin)
    chain.download(loc, origin, CONCURRENT)
    assert "(wss)" in srv.log(), srv.log()
    assert "open (wss)" in loc.log(), loc.log()



def test_wss_self_signed_pinned(chain, origin):
    """servername=: websocksy makes a certificate and logs its fingerprint;
    the client trusts exactly that one with pin= (and 0rtt resumes)."""
    srv = chain.server(BIN, "server;tls;servername=localhost;host=localhost;path=/ws")
    m = re.search(r"SHA-256 fingerprint ([0-9A-F:]{95})", srv.log())
    assert m, srv.log()
    loc = chain.local(srv.port, CLIENT, "ws;tls;sni=localhost;pin=%s;0rtt;"
                      "host=localhost;path=/ws" % m.group(1), origin=origin)
    chain.download(loc, origin, 4)
    # a wrong pin gets nothing through
    bad = "00" + m.group(1)[2:]
    loc2 = chain.local(srv.port, CLIENT, "ws;tls;sni=localhost;pin=%s;"
                       "host=localhost;path=/ws" % bad)
    assert wait_for(lambda: bool(_children(loc2.pid)), 5)
    time.sleep(0.5)
    rc, sha, n, err = chain.fetch(loc2.port, origin.url("small"), timeout=10)
    assert rc != 0 and n == 0, (rc, n, err)
    assert wait_for(lambda: "pin" in loc2.log(), 5), loc2.log()

@pytest.mark.parametrize("mask", ["skip", "standard", "fixed"])
def test_mask_modes(chain, origin, mask):
    srv, loc = _ws_pair(chain, origin, WS_SERVER, WS_CLIENT + ";mask=" + mask)
    chain.download(loc, origin)


def test_client_binary_as_server_plugin(chain, origin):
    """The v2ray-plugin convention: one plugin for both ends; websocksy-client
    with the server option runs websocksy (its sibling)."""
    srv = chain.server(CLIENT, WS_SERVER)
    loc = chain.local(srv.port, CLIENT, WS_CLIENT, origin=origin)
    chain.download(loc, origin)
    assert "websocksy[" in srv.log() and "(ws)" in srv.log(), srv.log()


def test_ipv6_loopback(chain, origin):
    try:
        socket.socket(socket.AF_INET6).bind(("::1", 0))
    except OSError as e:
        pytest.skip("no IPv6 loopback: %s" % e)
    srv, loc = _ws_pair(chain, origin, WS_SERVER, WS_CLIENT, host="::1")
    chain.download(loc, origin)


def test_several_server_hosts(chain, origin):
    """ss-server -s 127.0.0.1 -s ::1: the plugin gets "127.0.0.1|::1" and
    serves both."""
    try:
        socket.socket(socket.AF_INET6).bind(("::1", 0))
    except OSError as e:
        pytest.skip("no IPv6 loopback: %s" % e)
    srv = chain.server(BIN, WS_SERVER, more_hosts=("::1",))
    assert wait_for(lambda: _listening("::1", srv.port), 5), srv.log()
    for host in ("127.0.0.1", "::1"):
        loc = chain.local(srv.port, CLIENT, WS_CLIENT, host=host, origin=origin)
        chain.download(loc, origin)

def test_raw_tcp(chain, origin):
    """No ws, no tls: websocksy-client is a plain TCP forwarder."""
    srv = chain.server()                       # ss-server without a plugin
    loc = chain.local(srv.port, CLIENT, "", origin=origin)
    chain.download(loc, origin)
    assert "raw tcp" in loc.log(), loc.log()


class TLSTerminator:
    """A raw TLS server (tests/certs/localhost) that forwards each
    connection in clear to 127.0.0.1:target: stands for stunnel / a TLS
    load balancer in front of a plain ss-server."""

    def __init__(self, target):
        self.target = target
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(CERT, KEY)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stopping = threading.Event()
        self.accepted = 0
        self.socks = []
        self.t = threading.Thread(target=self._loop, daemon=True)
        self.t.start()

    def _loop(self):
        while not self.stopping.is_set():
            try:
                c, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            self.accepted += 1
            threading.Thread(target=self._one, args=(c,), daemon=True).start()

    @staticmethod
    def _pump(src, dst, half_close):
        try:
            while True:
                d = src.recv(1 << 16)
                if not d:
                    break
                dst.sendall(d)
        except (OSError, ssl.SSLError):
            pass
        try:
            half_close()
        except (OSError, ssl.SSLError):
            pass

    def _one(self, c):
        try:
            c.settimeout(30)
            s = self.ctx.wrap_socket(c, server_side=True)
            u = socket.create_connection(("127.0.0.1", self.target), 5)
            u.settimeout(60)
        except (OSError, ssl.SSLError):
            c.close()
            return
        self.socks += [s, u]
        up = threading.Thread(target=self._pump, args=(
            s, u, lambda: u.shutdown(socket.SHUT_WR)), daemon=True)
        up.start()
        self._pump(u, s, lambda: s.close())
        up.join(60)
        u.close()

    def close(self):
        self.stopping.set()
        self.t.join(2)
        self.sock.close()
        for s in self.socks:
            try:
                s.close()
            except OSError:
                pass


def test_raw_tls(chain, origin):
    srv = chain.server()                       # plain ss-server
    term = TLSTerminator(srv.port)
    try:
        loc = chain.local(term.port, CLIENT, "tls;sni=localhost;ca=" + CA,
                          origin=origin)
        chain.download(loc, origin)
        assert "open (tls)" in loc.log(), loc.log()
        assert term.accepted >= 2
    finally:
        term.close()


def test_raw_tls_wrong_name_refused(chain, origin):
    srv = chain.server()
    term = TLSTerminator(srv.port)
    try:
        loc = chain.local(term.port, CLIENT, "tls;sni=other.test;ca=" + CA)
        assert wait_for(lambda: bool(_children(loc.pid)), 5)
        time.sleep(0.5)
        rc, sha, n, err = chain.fetch(loc.port, origin.url("small"), timeout=10)
        assert rc != 0 and n == 0, (rc, n, err)
        assert wait_for(lambda: "TLS handshake" in loc.log(), 5), loc.log()
    finally:
        term.close()


# ------------------------------------------------------ v2ray-plugin interop
V2_WS_CLIENT = "mux=0;path=/ws;host=example.com"
V2_WSS_CLIENT = "tls;mux=0;host=localhost;path=/ws"
# v2ray-plugin's server expects Mux.Cool unless told mux=0 too
V2_WS_SERVER = "server;mux=0;path=/ws;host=example.com"
V2_WSS_SERVER = "server;mux=0;tls;cert=%s;key=%s;host=localhost;path=/ws" % (CERT, KEY)


def _ca_env():
    # Go's crypto/x509 reads SSL_CERT_FILE: v2ray-plugin has no CA option
    return dict(os.environ, SSL_CERT_FILE=CA)


@pytest.mark.parametrize("tls", [False, True], ids=["ws", "wss"])
def test_v2ray_plugin_client_to_websocksy(chain, origin, tls):
    v2 = v2ray_plugin()
    srv = chain.server(BIN, WSS_SERVER if tls else WS_SERVER)
    loc = chain.local(srv.port, v2, V2_WSS_CLIENT if tls else V2_WS_CLIENT,
                      env=_ca_env(), origin=origin)
    chain.download(loc, origin)
    chain.download(loc, origin, CONCURRENT)
    assert ("(wss)" if tls else "(ws)") in srv.log(), srv.log()


@pytest.mark.parametrize("tls", [False, True], ids=["ws", "wss"])
def test_websocksy_client_to_v2ray_plugin(chain, origin, tls):
    v2 = v2ray_plugin()
    srv = chain.server(v2, V2_WSS_SERVER if tls else V2_WS_SERVER)
    loc = chain.local(srv.port, CLIENT, WSS_CLIENT if tls else WS_CLIENT,
                      origin=origin)
    chain.download(loc, origin)
    chain.download(loc, origin, CONCURRENT)
    assert ("open (wss)" if tls else "open (ws)") in loc.log(), loc.log()


@pytest.mark.parametrize("mask", ["skip", "fixed"])
def test_websocksy_client_masks_to_v2ray_plugin(chain, origin, mask):
    """v2ray-plugin's Go WebSocket server unmasks every key (zero too)."""
    v2 = v2ray_plugin()
    srv = chain.server(v2, V2_WS_SERVER)
    loc = chain.local(srv.port, CLIENT, WS_CLIENT + ";mask=" + mask, origin=origin)
    chain.download(loc, origin)


# ------------------------------------------------------- Host / path checks
def _upgrade_status(port, host, path, addr="127.0.0.1"):
    req = ("GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
           "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           "Sec-WebSocket-Version: 13\r\n\r\n" % (path, host)).encode()
    s = socket.create_connection((addr, port), 5)
    try:
        s.settimeout(5)
        s.sendall(req)
        buf = b""
        while b"\r\n" not in buf:
            d = s.recv(4096)
            if not d:
                break
            buf += d
        return int(buf.split(b" ", 2)[1]) if buf.startswith(b"HTTP/1.1 ") else buf
    finally:
        s.close()


def test_host_and_path_mismatch_404(chain, origin):
    srv = chain.server(BIN, WS_SERVER)
    assert _upgrade_status(srv.port, "example.com", "/ws") == 101
    assert _upgrade_status(srv.port, "example.com", "/other") == 404
    assert _upgrade_status(srv.port, "evil.example", "/ws") == 404
    # a client with the wrong path gets nothing through, and says why
    loc = chain.local(srv.port, CLIENT, "ws;path=/wrong;host=example.com")
    assert wait_for(lambda: bool(_children(loc.pid)), 5)
    time.sleep(0.5)
    rc, sha, n, err = chain.fetch(loc.port, origin.url("small"), timeout=10)
    assert rc != 0 and n == 0, (rc, n, err)
    assert wait_for(lambda: "404" in loc.log(), 5), loc.log()


# -------------------------------------------------------------- bad options
CLIENT_BAD = [
    ("ws;host=a;path=/;bogus=1", "'bogus'"),
    ("ws;host=a;path=/;mask=wat", "'mask'"),
    ("ws;host=a", "'path="),
    ("ws;path=/", "'host="),
    ("host=a;path=/", "'host'"),                  # host without ws
    ("tls;sni=a;pin=zz", "'pin'"),
    ("tls", "'sni="),
    ("ws;host=a;path=/;ping=x", "'ping'"),
    ("ws;host=a;path=/;timeout=0", "'timeout'"),
    ("ws;host=a;path=/x\\qy", "'path'"),          # bad escape
    ("ws;insecure=1;host=a;path=/", "'insecure'"),
    ("=x", "empty key"),
]
SERVER_BAD = [
    ("ws;bogus=1", "'bogus'"),
    ("server;mux=4", "'mux'"),
    ("server;mode=quic", "'mode'"),
    ("server;tls;cert=/nonexistent.pem", "'key'"),
    ("server;path", "'path'"),
    ("server;cert=/a;key=/b", "'cert'"),
    ("server;loglevel=loud", "'loglevel'"),
    ("server;linger=abc", "'linger'"),
    ("server;host=a\\x", "'host'"),
]


def _sip003_env(opts, rport, lport):
    return dict(os.environ, SS_REMOTE_HOST="127.0.0.1", SS_REMOTE_PORT=str(rport),
                SS_LOCAL_HOST="127.0.0.1", SS_LOCAL_PORT=str(lport),
                SS_PLUGIN_OPTIONS=opts)


def _run(cmd, env=None):
    p = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=10)
    err = p.stderr.decode(errors="replace")
    for m in SANITIZER_MARKERS:
        assert m not in err, err
    return p.returncode, err


@pytest.mark.parametrize("opts,key", CLIENT_BAD)
def test_client_bad_options(opts, key):
    rc, err = _run([CLIENT, "127.0.0.1:%d" % free_port(), "127.0.0.1:1", opts])
    assert rc != 0 and key in err and "websocksy-client" in err, (rc, err)
    rc, err = _run([CLIENT], _sip003_env(opts, 1, free_port()))
    assert rc != 0 and key in err, (rc, err)


@pytest.mark.parametrize("opts,key", SERVER_BAD)
def test_server_bad_options(opts, key):
    rc, err = _run([BIN, "-p", str(free_port()), "-c", "host=127.0.0.1",
                    "-c", "port=1", "-o", opts])
    assert rc != 0 and key in err, (rc, err)
    rc, err = _run([BIN], _sip003_env(opts, free_port(), 1))
    assert rc != 0 and key in err and "SS_PLUGIN_OPTIONS" in err, (rc, err)
    # the server option also reaches websocksy through websocksy-client
    if opts.startswith("server;"):
        rc, err = _run([CLIENT], _sip003_env(opts, free_port(), 1))
        assert rc != 0 and key in err, (rc, err)


@pytest.mark.parametrize("side", ["server", "local"])
def test_bad_options_stop_shadowsocks(tmp_path, side):
    """Under ss-server / ss-local: the plugin's error reaches the log and
    shadowsocks gives up with a non-zero status."""
    ss_server, ss_local, _ = ss_tools()
    port = free_port()
    if side == "server":
        cmd = [ss_server, "-s", "127.0.0.1", "-p", str(port), "--plugin", BIN,
               "--plugin-opts", "server;path=/ws;bogus=1"]
    else:
        cmd = [ss_local, "-s", "127.0.0.1", "-p", str(port), "-b", "127.0.0.1",
               "-l", str(free_port()), "--plugin", CLIENT,
               "--plugin-opts", "ws;host=a;path=/ws;mask=wat"]
    p = Proc("ss-" + side, cmd + ["-m", METHOD, "-k", PASSWORD],
             str(tmp_path / "ss.log"))
    try:
        p.proc.wait(10)
    except subprocess.TimeoutExpired:
        pass
    try:
        assert p.proc.returncode not in (None, 0), p.log()
        assert ("'bogus'" if side == "server" else "'mask'") in p.log(), p.log()
    finally:
        assert not p.stop()


# ------------------------------------------------------------ parent exits
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM],
                         ids=["SIGKILL", "SIGTERM"])
def test_plugins_exit_with_shadowsocks(chain, origin, sig):
    srv, loc = _ws_pair(chain, origin, WS_SERVER, WS_CLIENT)
    plugins = srv.plugins + loc.plugins
    assert len(plugins) == 2, (srv.plugins, loc.plugins)
    for p in (loc, srv):
        p.proc.send_signal(sig)
        p.proc.wait(5)
    assert wait_for(lambda: not any(_alive(p) for p in plugins), 5.0), \
        "plugins outlived shadowsocks (%s):\n%s" % (sig, chain.logs())
    if sig == signal.SIGKILL:
        assert "parent process" in srv.log() or "stopped" in srv.log(), srv.log()
