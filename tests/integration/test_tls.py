"""wss:// in the server: the TLS port (-s / tls-port) with real clients.

python3-websockets over wss with the test CA, openssl s_client and
gnutls-cli for ALPN and SNI, a self-signed tls-servername start whose
fingerprint is checked, SIGHUP reloads, plain HTTP and stalled clients on the
TLS port, client certificates, TLS facts seen by the unix backend, the core
RFC 6455 behaviours parametrised over ws and wss, and Chromium headless
against a wss page served from the web root.

Everything listens on 127.0.0.1 only, every wait is bounded.
"""
import asyncio
import hashlib
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
import websockets

import chromium_wss
import rawws
from conftest import REPO, free_port, run_async, short_tmpdir, tcp_peer_args, wait_for
from rawws import OP_BIN, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, RawWS

CERTS = os.path.join(REPO, "tests", "certs")
CA = os.path.join(CERTS, "ca.pem")
LOCALHOST = (os.path.join(CERTS, "localhost.pem"), os.path.join(CERTS, "localhost.key"))
OTHER = (os.path.join(CERTS, "other.pem"), os.path.join(CERTS, "other.key"))
CLIENT = (os.path.join(CERTS, "client.pem"), os.path.join(CERTS, "client.key"))
ROGUE = (os.path.join(CERTS, "rogue.pem"), os.path.join(CERTS, "rogue.key"))
PLUGINS = os.path.join(REPO, "build", "plugins")
CLIENT_BIN = os.path.join(REPO, "build", "websocksy-client")


# ------------------------------------------------------------------ helpers
def pem_blocks(path):
    """The certificates of a PEM file, as DER, in file order."""
    with open(path) as f:
        text = f.read()
    return [ssl.PEM_cert_to_DER_cert(m.group(0)) for m in re.finditer(
        r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", text, re.S)]


def leaf_sha256(path):
    return hashlib.sha256(pem_blocks(path)[0]).hexdigest()


def colon_hex(hexdigest):
    h = hexdigest.upper()
    return ":".join(h[i:i + 2] for i in range(0, len(h), 2))


def cert_args(*pairs):
    out = []
    for cert, key in pairs or (LOCALHOST,):
        out += ["-C", "tls-cert=%s" % cert, "-C", "tls-key=%s" % key]
    return out


def client_ctx(verify=True, cert=None, alpn=("http/1.1",), ca=CA):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if verify:
        ctx.load_verify_locations(ca)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cert is not None:
        ctx.load_cert_chain(*cert)
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx


class TLSRaw(RawWS):
    """rawws.RawWS over TLS: the same frame / HTTP helpers, ssl-wrapped."""

    def __init__(self, host="127.0.0.1", port=None, ctx=None, server_hostname="localhost",
                 timeout=5.0):
        super().__init__(host, port, timeout=timeout)
        if ctx is None:
            ctx = client_ctx()
        # wrap_socket does the handshake under the socket timeout
        self.sock = ctx.wrap_socket(self.sock, server_hostname=server_hostname)

    def peer_sha256(self):
        return hashlib.sha256(self.sock.getpeercert(binary_form=True)).hexdigest()


def start_tls(websocksy, *args, plain=False, certs=None, ready=True):
    """websocksy with a TLS port (srv.tls_port) on 127.0.0.1; with plain=True a
    plain ws port too (srv.port), else -p 0 and srv.port is the TLS port.
    certs: list of (cert, key) pairs, [] for none, None for localhost."""
    tls_port = free_port()
    ca = cert_args(*(certs if certs is not None else [LOCALHOST])) if certs != [] else []
    base = ["-l", "127.0.0.1", "-s", str(tls_port)] + ca
    if plain:
        srv = websocksy(*(base + list(args)), ready=False)
    else:
        srv = websocksy(*(["-p", "0"] + base + list(args)), ready=False)
        srv.port = tls_port
    srv.tls_port = tls_port
    if ready:
        srv.wait_ready()
        if plain:   # the TLS port is opened together with the plain one
            assert wait_for(lambda: port_open(tls_port), 5), srv.stderr()
    return srv


def port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def wss_url(srv, path="/"):
    return "wss://127.0.0.1:%d%s" % (srv.tls_port, path)


def wsconnect(url, ctx=None, server_hostname="localhost", **kw):
    """websockets.connect with our defaults (no compression, no size cap)."""
    kw.setdefault("max_size", None)
    kw.setdefault("compression", None)
    kw.setdefault("open_timeout", 5)
    kw.setdefault("close_timeout", 2)
    kw.setdefault("ping_interval", None)
    if url.startswith("wss:"):
        kw["ssl"] = ctx if ctx is not None else client_ctx()
        kw["server_hostname"] = server_hostname
    return websockets.connect(url, **kw)


def peer_cert_sha256(port, server_hostname="localhost", verify=False, alpn=("http/1.1",)):
    """A fresh TLS connection: the SHA-256 of the certificate it is shown."""
    ctx = client_ctx(verify=verify, alpn=alpn)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        with ctx.wrap_socket(s, server_hostname=server_hostname) as t:
            return hashlib.sha256(t.getpeercert(binary_form=True)).hexdigest()


def wait_log(srv, pattern, timeout=5.0):
    rx = re.compile(pattern)
    found = []

    def pred():
        m = rx.search(srv.stderr())
        if m:
            found.append(m)
        return bool(m)
    assert wait_for(pred, timeout), "no %r in the log:\n%s" % (pattern, srv.stderr()[-3000:])
    return found[-1]


def run_tool(argv, timeout=10, stdin=b""):
    p = subprocess.run(argv, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace")


def need(tool):
    path = shutil.which(tool)
    if path is None:
        pytest.skip("%s is not installed" % tool)
    return path


def make_cert(tmp_path, name, cn, serial):
    """A new server certificate for cn signed by the test CA (certtool)."""
    need("certtool")
    key = tmp_path / (name + ".key")
    leaf = tmp_path / (name + ".leaf")
    tmpl = tmp_path / (name + ".tmpl")
    tmpl.write_text('cn = "%s"\norganization = "websocksy tests"\nserial = %d\n'
                    'expiration_days = 30\ndns_name = "%s"\ntls_www_server\nsigning_key\n'
                    % (cn, serial, cn))
    rc, out = run_tool(["certtool", "--generate-privkey", "--key-type=ecdsa",
                        "--curve=secp256r1", "--no-text", "--outfile=%s" % key])
    assert rc == 0, out
    rc, out = run_tool(["certtool", "--generate-certificate", "--load-privkey=%s" % key,
                        "--load-ca-certificate=%s" % CA,
                        "--load-ca-privkey=%s" % os.path.join(CERTS, "ca.key"),
                        "--template=%s" % tmpl, "--no-text", "--outfile=%s" % leaf])
    assert rc == 0, out
    pem = tmp_path / (name + ".pem")
    pem.write_bytes(leaf.read_bytes() + open(CA, "rb").read())
    return str(pem), str(key)


# --------------------------------------------------------- websockets / wss
def test_wss_echo_websockets(websocksy, peers):
    peer = peers.tcp_echo()
    srv = start_tls(websocksy, *tcp_peer_args(peer, "-c", "framing=newline",
                                              "-c", "framing-config=lf"))
    wait_log(srv, r"listening on 127\.0\.0\.1:%d \(wss\)" % srv.tls_port)

    async def go():
        async with wsconnect(wss_url(srv)) as ws:
            assert ws.transport.get_extra_info("ssl_object").selected_alpn_protocol() \
                == "http/1.1"
            for line in ["hello\n", "h\u00e9llo \u20ac \U0001f600\n", "x" * 70000 + "\n"]:
                await ws.send(line)
                got = await asyncio.wait_for(ws.recv(), 5)
                assert got == line
            await ws.send(b"\x00\x01\xff\n")
            got = await asyncio.wait_for(ws.recv(), 5)
            assert got == b"\x00\x01\xff\n"
    run_async(go(), 20)


def test_wss_and_ws_side_by_side(websocksy, peers):
    """One process: plain ws on -p, wss on -s, the same backend behind both."""
    peer = peers.tcp_echo()
    srv = start_tls(websocksy, *tcp_peer_args(peer, "-c", "framing=binary"), plain=True)
    err = srv.stderr()
    assert "(ws)" in err and "(wss)" in err, err

    async def go():
        async with wsconnect("ws://127.0.0.1:%d/" % srv.port) as a, \
                wsconnect(wss_url(srv)) as b:
            await a.send(b"plain")
            await b.send(b"secure")
            assert await asyncio.wait_for(a.recv(), 5) == b"plain"
            assert await asyncio.wait_for(b.recv(), 5) == b"secure"
    run_async(go(), 20)
    # a TLS client on the plain port does not get a TLS session
    with pytest.raises((ssl.SSLError, OSError)):
        TLSRaw("127.0.0.1", srv.port, timeout=3)


@pytest.mark.parametrize("scheme", ["wss", "ws"])
def test_wss_10mb_byte_identical(websocksy, peers, scheme):
    """10 MB each way through wss (and, for comparison, plain ws on the
    same process), byte-identical at the peer and back at the client."""
    peer = peers.tcp_echo()
    srv = start_tls(websocksy, *tcp_peer_args(peer, "-c", "framing=binary"), plain=True)
    url = wss_url(srv) if scheme == "wss" else "ws://127.0.0.1:%d/" % srv.port
    data = os.urandom(10 * 1024 * 1024)
    want = hashlib.sha256(data).hexdigest()

    async def go():
        async with wsconnect(url) as ws:
            async def sender():
                step = 65536
                for i in range(0, len(data), step):
                    await ws.send(data[i:i + step])

            async def receiver():
                h, n = hashlib.sha256(), 0
                while n < len(data):
                    m = await asyncio.wait_for(ws.recv(), 20)
                    assert isinstance(m, bytes)
                    h.update(m)
                    n += len(m)
                return n, h.hexdigest()
            _, (n, got) = await asyncio.gather(sender(), receiver())
            return n, got
    n, got = run_async(go(), 90)
    rec = peer.wait_conn(0)
    assert wait_for(lambda: rec.nbytes >= len(data), 5)
    assert rec.nbytes == len(data) and rec.sha.hexdigest() == want, \
        "the peer got other bytes than the client sent (%s)" % scheme
    assert n == len(data)
    assert got == want, "the client got other bytes back than the peer sent (%s)" % scheme


# --------------------------------------------------------------------- ALPN
def test_alpn_python_ssl(websocksy, peers):
    peer = peers.tcp_echo()
    srv = start_tls(websocksy, *tcp_peer_args(peer))
    for offer in (["http/1.1"], ["h2", "http/1.1"], ["spdy/3", "http/1.1"]):
        c = TLSRaw("127.0.0.1", srv.tls_port, ctx=client_ctx(alpn=offer))
        assert c.sock.selected_alpn_protocol() == "http/1.1", offer
        c.handshake()
        c.send_binary(b"alpn")
        assert c.read_message()[1] == b"alpn"
        c.close()
    # no ALPN at all is fine too
    c = TLSRaw("127.0.0.1", srv.tls_port, ctx=client_ctx(alpn=None))
    assert c.sock.selected_alpn_protocol() is None
    c.handshake()
    c.close()
    # h2 only: a clean no_application_protocol alert, quickly
    t0 = time.monotonic()
    with pytest.raises(ssl.SSLError) as ei:
        TLSRaw("127.0.0.1", srv.tls_port, ctx=client_ctx(alpn=["h2"]))
    assert "NO_APPLICATION_PROTOCOL" in str(ei.value).upper().replace(" ", "_"), ei.value
    assert time.monotonic() - t0 < 3


def test_alpn_openssl_s_client(websocksy, peers):
    tool = need("openssl")
    peer = peers.tcp_echo()
    srv = start_tls(websocksy, *tcp_peer_args(peer))
    base = [tool, "s_client", "-connect", "127.0.0.1:%d" % srv.tls_port,
            "-servername", "localhost", "-CAfile", CA, "-verify_return_error"]
    rc, out = run_tool(base + ["-alpn", "http/1.1"])
    assert "ALPN protocol: http/1.1" in out, out
    assert "Verify return code: 0 (ok)" in out, out
    assert re.search(r"Protocol\s*: TLSv1\.[23]", out), out
    t0 = time.monotonic()
    rc, out = run_tool(base + ["-alpn", "h2"], timeout=10)
    assert time.monotonic() - t0 < 5, "h2-only offer hung"
    assert rc != 0, out
    assert "no application protocol" in out or "alert number 120" in out, out
    assert "ALPN protocol: h2" not in out, out


def test_alpn_gnutls_cli(websocksy, peers):
    tool = need("gnutls-cli")
    peer = peers.tcp_echo()
    srv = start_tls(websocksy, *tcp_peer_args(peer))
    base = [tool, "--x509cafile=%s" % CA, "--sni-hostname=localhost",
            "--verify-hostname=localhost", "-p", str(srv.tls_port), "127.0.0.1"]
    rc, out = run_tool(base + ["--alpn=http/1.1"])
    assert "Application protocol: http/1.1" in out, out
    assert "Handshake was completed" in out, out
    assert "The certificate is trusted" in out, out
    t0 = time.monotonic()
    rc, out = run_tool(base + ["--alpn=h2"], timeout=10)
    assert time.monotonic() - t0 < 5, "h2-only offer hung"
    assert "Received alert [120]" in out, out
    assert "Handshake was completed" not in out, out
    # the server keeps serving after the alert
    c = TLSRaw("127.0.0.1", srv.tls_port)
    c.handshake()
    c.close()


# ---------------------------------------------------------------------- SNI
def test_sni_selects_certificate_python(websocksy, peers):
    peer = peers.tcp_echo()
    srv = start_tls(websocksy, *tcp_peer_args(peer, "-c", "framing=binary"),
                    certs=[LOCALHOST, OTHER])
    assert peer_cert_sha256(srv.tls_port, "localhost", verify=True) == leaf_sha256(LOCALHOST[0])
    assert peer_cert_sha256(srv.tls_port, "other.test", verify=True) == leaf_sha256(OTHER[0])
    # an unknown name (and no SNI at all) gets the first pair, the default
    assert peer_cert_sha256(srv.tls_port, "unknown.example") == leaf_sha256(LOCALHOST[0])
    assert peer_cert_sha256(srv.tls_port, None) == leaf_sha256(LOCALHOST[0])

    # and the WebSocket relays under the other name too
    async def go():
        async with wsconnect(wss_url(srv), server_hostname="other.test") as ws:
            await ws.send(b"via other.test")
            assert await asyncio.wait_for(ws.recv(), 5) == b"via other.test"
    run_async(go(), 20)


def test_sni_openssl_and_gnutls(websocksy, peers, tmp_path):
    openssl = need("openssl")
    gnutls = need("gnutls-cli")
    peer = peers.tcp_echo()
    srv = start_tls(websocksy, *tcp_peer_args(peer), certs=[LOCALHOST, OTHER])
    rc, out = run_tool([openssl, "s_client", "-connect", "127.0.0.1:%d" % srv.tls_port,
                        "-servername", "other.test", "-CAfile", CA, "-verify_return_error",
                        "-verify_hostname", "other.test", "-alpn", "http/1.1"])
    assert re.search(r"subject=.*CN ?= ?other\.test", out), out
    assert "Verify return code: 0 (ok)" in out, out
    saved = tmp_path / "seen.pem"
    rc, out = run_tool([gnutls, "--x509cafile=%s" % CA, "--sni-hostname=other.test",
                        "--verify-hostname=other.test", "--save-cert=%s" % saved,
                        "-p", str(srv.tls_port), "127.0.0.1"])
    assert "Handshake was completed" in out, out
    assert "CN=other.test" in out, out
    assert hashlib.sha256(pem_blocks(str(saved))[0]).hexdigest() == leaf_sha256(OTHER[0])
    rc, out = run_tool([gnutls, "--x509cafile=%s" % CA, "--sni-hostname=localhost",
                        "--verify-hostname=localhost", "--save-cert=%s" % saved,
                        "-p", str(srv.tls_port), "127.0.0.1"])
    assert "Handshake was completed" in out, out
    assert hashlib.sha256(pem_blocks(str(saved))[0]).hexdigest() == leaf_sha256(LOCALHOST[0])


# ------------------------------------------------------- self-signed start
FP_RX = r"tls: self-signed certificate for (\S+), SHA-256 fingerprint ([0-9A-Fa-f:]+)"


def test_servername_self_signed_fingerprint(websocksy, peers, tmp_path):
    peer = peers.tcp_echo()
    srv = start_tls(websocksy, "-C", "tls-servername=selfsigned.test",
                    *tcp_peer_args(peer, "-c", "framing=binary"), certs=[])
    m = wait_log(srv, FP_RX)
    assert m.group(1).rstrip(",") == "selfsigned.test", m.group(0)
    fp = m.group(2)
    assert re.fullmatch(r"([0-9A-F]{2}:){31}[0-9A-F]{2}", fp.upper()), fp
    seen = peer_cert_sha256(srv.tls_port, "selfsigned.test")
    assert colon_hex(seen) == fp.upper(), (seen, fp)
    # the certificate names the server
    der = None
    with socket.create_connection(("127.0.0.1", srv.tls_port), timeout=5) as s:
        with client_ctx(verify=False).wrap_socket(s, server_hostname="selfsigned.test") as t:
            der = t.getpeercert(binary_form=True)
    pem = tmp_path / "self.pem"
    pem.write_text(ssl.DER_cert_to_PEM_cert(der))
    if shutil.which("openssl"):
        rc, out = run_tool(["openssl", "x509", "-in", str(pem), "-noout", "-subject",
                            "-ext", "subjectAltName", "-fingerprint", "-sha256"])
        assert "selfsigned.test" in out, out
        assert fp.upper() in out.upper(), out
    # a client that trusts the certificate itself (pinning by the file) works
    # and relays
    c = TLSRaw("127.0.0.1", srv.tls_port, ctx=client_ctx(verify=False),
               server_hostname="selfsigned.test")
    assert colon_hex(c.peer_sha256()) == fp.upper()
    c.handshake()
    c.send_binary(b"pinned")
    assert c.read_message() == (OP_BIN, b"pinned")
    # a restart makes a new key, so a new fingerprint
    srv2 = start_tls(websocksy, "-C", "tls-servername=selfsigned.test",
                     *tcp_peer_args(peer), certs=[])
    fp2 = wait_log(srv2, FP_RX).group(2)
    assert fp2.upper() != fp.upper()


def _client_tunnel(tmp_path, tls_port, opts):
    """websocksy-client LOCAL -> wss://127.0.0.1:tls_port; returns (proc, lport)."""
    lport = free_port()
    log = open(str(tmp_path / ("client%d.log" % lport)), "wb")
    p = subprocess.Popen([CLIENT_BIN, "127.0.0.1:%d" % lport, "127.0.0.1:%d" % tls_port, opts],
                         stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    p.logfile = log.name
    if not wait_for(lambda: p.poll() is not None or port_open(lport), 5):
        p.kill()
        p.wait(5)
        raise AssertionError("websocksy-client did not listen:\n" + open(log.name).read())
    return p, lport


def _stop_client(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


def _tunnel_roundtrip(lport, data, timeout=5):
    with socket.create_connection(("127.0.0.1", lport), timeout=timeout) as s:
        s.sendall(data)
        got = b""
        deadline = time.monotonic() + timeout
        try:
            while len(got) < len(data) and time.monotonic() < deadline:
                d = s.recv(65536)
                if not d:
                    break
                got += d
        except (socket.timeout, ConnectionResetError):
            pass
        return got


def test_servername_pin_with_websocksy_client(websocksy, peers, tmp_path):
    if not os.access(CLIENT_BIN, os.X_OK):
        pytest.skip("websocksy-client not built")
    peer = peers.tcp_echo()
    srv = start_tls(websocksy, "-C", "tls-servername=pin.test",
                    *tcp_peer_args(peer, "-c", "framing=binary"), certs=[])
    fp = wait_log(srv, FP_RX).group(2)
    good, lgood = _client_tunnel(tmp_path, srv.tls_port,
                                 "ws;host=pin.test;path=/;tls;sni=pin.test;pin=%s" % fp)
    wrong = "00:" * 31 + "00"
    bad, lbad = _client_tunnel(tmp_path, srv.tls_port,
                               "ws;host=pin.test;path=/;tls;sni=pin.test;pin=%s" % wrong)
    try:
        assert _tunnel_roundtrip(lgood, b"pinned tunnel\n") == b"pinned tunnel\n", \
            open(good.logfile).read()
        assert _tunnel_roundtrip(lbad, b"must not pass\n", timeout=3) == b"", \
            open(bad.logfile).read()
    finally:
        _stop_client(good)
        _stop_client(bad)


# ------------------------------------------------------------------- SIGHUP
def _live_certs(tmp_path, src=LOCALHOST):
    cert, key = str(tmp_path / "live.pem"), str(tmp_path / "live.key")
    shutil.copyfile(src[0], cert)
    shutil.copyfile(src[1], key)
    return cert, key


def _swap(dst, src):
    tmp = dst + ".new"
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def _echo_ok(c, payload):
    c.send_binary(payload)
    got, _ = c.read_bytes(len(payload), timeout=10)
    return got == payload


def test_sighup_reload_new_certificate(websocksy, peers, tmp_path):
    live = _live_certs(tmp_path)
    new = make_cert(tmp_path, "new", "localhost", 77)
    peer = peers.tcp_echo()
    srv = start_tls(websocksy, *tcp_peer_args(peer, "-c", "framing=binary"), certs=[live])
    old_sha = leaf_sha256(LOCALHOST[0])
    assert peer_cert_sha256(srv.tls_port, verify=True) == old_sha
    old = TLSRaw("127.0.0.1", srv.tls_port)
    old.handshake()
    assert _echo_ok(old, b"before reload")

    _swap(live[0], new[0])
    _swap(live[1], new[1])
    srv.signal(signal.SIGHUP)
    wait_log(srv, r"tls: certificates reloaded")
    assert peer_cert_sha256(srv.tls_port, verify=True) == leaf_sha256(new[0])
    # the old connection keeps its session and keeps relaying, both ways
    assert old.peer_sha256() == old_sha
    assert _echo_ok(old, b"after reload")
    big = os.urandom(1 << 20)
    assert _echo_ok(old, big)

    # a fresh wss connection works with the new certificate (verified by the CA)
    async def fresh():
        async with wsconnect(wss_url(srv)) as ws:
            ssl_obj = ws.transport.get_extra_info("ssl_object")
            assert hashlib.sha256(ssl_obj.getpeercert(True)).hexdigest() == leaf_sha256(new[0])
            await ws.send(b"fresh")
            assert await asyncio.wait_for(ws.recv(), 5) == b"fresh"
    run_async(fresh(), 20)
    assert _echo_ok(old, b"still here")
    old.send_close(1000)
    assert old.read_close().close_code == 1000
    assert srv.proc.poll() is None


def test_sighup_broken_files_keep_old_certificate(websocksy, peers, tmp_path):
    live = _live_certs(tmp_path)
    new = make_cert(tmp_path, "new", "localhost", 78)
    peer = peers.tcp_echo()
    srv = start_tls(websocksy, *tcp_peer_args(peer, "-c", "framing=binary"), certs=[live])
    old_sha = leaf_sha256(LOCALHOST[0])
    old = TLSRaw("127.0.0.1", srv.tls_port)
    old.handshake()
    assert _echo_ok(old, b"x")
    failed = r"tls reload failed, keeping the old certificates: "

    def sighup_expect_failure(n):
        srv.signal(signal.SIGHUP)
        assert wait_for(lambda: len(re.findall(failed, srv.stderr())) >= n, 5), srv.stderr()
        assert srv.proc.poll() is None, srv.stderr()
        assert peer_cert_sha256(srv.tls_port, verify=True) == old_sha
        assert _echo_ok(old, b"relaying after failed reload %d" % n)

    # 1. garbage in the certificate file
    with open(live[0], "w") as f:
        f.write("-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n")
    sighup_expect_failure(1)
    # 2. an empty certificate file
    open(live[0], "w").close()
    sighup_expect_failure(2)
    # 3. a valid certificate that does not match the key
    _swap(live[0], OTHER[0])
    sighup_expect_failure(3)
    # 4. the key file is gone
    _swap(live[0], LOCALHOST[0])
    os.unlink(live[1])
    sighup_expect_failure(4)
    assert "reloaded" not in srv.stderr()
    # then a good pair is picked up by the next SIGHUP
    _swap(live[0], new[0])
    _swap(live[1], new[1])
    srv.signal(signal.SIGHUP)
    wait_log(srv, r"tls: certificates reloaded")
    assert peer_cert_sha256(srv.tls_port, verify=True) == leaf_sha256(new[0])
    assert _echo_ok(old, b"end")


def test_sighup_reload_sni_pairs(websocksy, peers, tmp_path):
    live = _live_certs(tmp_path)
    ocert, okey = str(tmp_path / "o.pem"), str(tmp_path / "o.key")
    shutil.copyfile(OTHER[0], ocert)
    shutil.copyfile(OTHER[1], okey)
    new_other = make_cert(tmp_path, "newother", "other.test", 79)
    peer = peers.tcp_echo()
    srv = start_tls(websocksy, *tcp_peer_args(peer), certs=[live, (ocert, okey)])
    assert peer_cert_sha256(srv.tls_port, "other.test", True) == leaf_sha256(OTHER[0])
    _swap(ocert, new_other[0])
    _swap(okey, new_other[1])
    srv.signal(signal.SIGHUP)
    wait_log(srv, r"tls: certificates reloaded")
    assert peer_cert_sha256(srv.tls_port, "other.test", True) == leaf_sha256(new_other[0])
    assert peer_cert_sha256(srv.tls_port, "localhost", True) == leaf_sha256(LOCALHOST[0])


# ------------------------------------------------ plain HTTP on the TLS port
def test_plain_http_on_tls_port_gets_400(websocksy, peers):
    peer = peers.tcp_echo()
    srv = start_tls(websocksy, *tcp_peer_args(peer))
    for req in (b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
                RawWS("127.0.0.1", srv.tls_port).request_bytes(),
                b"G"):
        c = RawWS("127.0.0.1", srv.tls_port, timeout=3)
        t0 = time.monotonic()
        c.send(req)
        if req == b"G":     # one byte: still recognised as not TLS, no wait
            raw = c.read_all_until_eof(3)
        else:
            r = c.read_response(timeout=3)
            assert r.status == 400, r
            assert r.version.startswith("HTTP/1."), r
            raw = c.read_all_until_eof(3)
        assert time.monotonic() - t0 < 2, "plain HTTP on the TLS port was not closed quickly"
        assert peer.conns == [], "a plain request on the TLS port reached the peer"
        c.close()
    # the first bytes in clear are an HTTP response, never a TLS record
    c = RawWS("127.0.0.1", srv.tls_port, timeout=3)
    c.send(b"GET /index.html HTTP/1.0\r\n\r\n")
    raw = c.read_all_until_eof(3)
    assert raw.startswith(b"HTTP/1.1 400 ") or raw.startswith(b"HTTP/1.0 400 "), raw[:100]
    # and TLS still works afterwards
    t = TLSRaw("127.0.0.1", srv.tls_port)
    t.handshake()


def test_tls_only_no_serves_plain_ws_on_tls_port(websocksy, peers):
    peer = peers.tcp_echo()
    srv = start_tls(websocksy, "-C", "tls-only=no",
                    *tcp_peer_args(peer, "-c", "framing=binary"))
    assert "(wss and ws)" in srv.stderr(), srv.stderr()
    c = RawWS("127.0.0.1", srv.tls_port)
    c.handshake()
    c.send_binary(b"plain on the TLS port")
    assert c.read_message() == (OP_BIN, b"plain on the TLS port")
    t = TLSRaw("127.0.0.1", srv.tls_port)
    t.handshake()
    t.send_binary(b"tls on the TLS port")
    assert t.read_message() == (OP_BIN, b"tls on the TLS port")

    async def go():
        async with wsconnect("ws://127.0.0.1:%d/" % srv.tls_port) as a, \
                wsconnect(wss_url(srv)) as b:
            await a.send(b"A" * 100000)
            await b.send(b"B" * 100000)
            ga, gb = b"", b""
            while len(ga) < 100000:
                ga += await asyncio.wait_for(a.recv(), 5)
            while len(gb) < 100000:
                gb += await asyncio.wait_for(b.recv(), 5)
            assert ga == b"A" * 100000 and gb == b"B" * 100000
    run_async(go(), 20)


def test_tls_only_yes_is_default(websocksy, peers):
    peer = peers.tcp_echo()
    srv = start_tls(websocksy, "-C", "tls-only=yes", *tcp_peer_args(peer))
    c = RawWS("127.0.0.1", srv.tls_port, timeout=3)
    r = c.handshake(expect=None)
    assert r.status == 400, r


# ----------------------------------------------------------------- deadlines
def _client_hello():
    """The bytes of a real ClientHello (from a memory BIO)."""
    ctx = client_ctx(verify=False)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return out.read()


def _time_to_close(port, first=b"", timeout=6.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    t0 = time.monotonic()
    try:
        if first:
            s.sendall(first)
        s.settimeout(timeout)
        while True:
            try:
                d = s.recv(65536)
            except (ConnectionResetError, ConnectionAbortedError):
                break
            if not d:
                break
        return time.monotonic() - t0
    except socket.timeout:
        return None
    finally:
        s.close()


@pytest.mark.parametrize("stall", ["silent", "half-hello", "hello-only"])
def test_stalled_tls_handshake_is_closed(websocksy, peers, stall):
    peer = peers.tcp_echo()
    srv = start_tls(websocksy, "-C", "tls-handshake-timeout=1", *tcp_peer_args(peer))
    hello = _client_hello()
    first = {"silent": b"", "half-hello": hello[:len(hello) // 2], "hello-only": hello}[stall]
    dt = _time_to_close(srv.tls_port, first)
    assert dt is not None, "stalled client was not closed within 6 s"
    assert 0.7 <= dt <= 3.0, "closed after %.2f s, want about 1 s" % dt
    # the server still serves
    c = TLSRaw("127.0.0.1", srv.tls_port)
    c.handshake()


def test_tls_deadline_inside_handshake_timeout(websocksy, peers):
    """handshake-timeout is the whole budget: a shorter one wins."""
    peer = peers.tcp_echo()
    srv = start_tls(websocksy, "-C", "handshake-timeout=1", "-C", "tls-handshake-timeout=10",
                    *tcp_peer_args(peer))
    dt = _time_to_close(srv.tls_port, b"")
    assert dt is not None and 0.7 <= dt <= 3.0, dt
    # after the TLS handshake the rest of the budget applies to the request:
    # 408 over TLS
    c = TLSRaw("127.0.0.1", srv.tls_port, timeout=5)
    t0 = time.monotonic()
    c.send(b"GET / HTTP/1.1\r\n")
    r = c.read_response(timeout=4)
    assert r.status == 408, r
    assert time.monotonic() - t0 < 3


def test_tls_deadline_default_does_not_cut_slow_client(websocksy, peers):
    """A client that takes 1.5 s between TCP connect and its ClientHello,
    well within the 10 s default, is served."""
    peer = peers.tcp_echo()
    srv = start_tls(websocksy, *tcp_peer_args(peer, "-c", "framing=binary"))
    s = socket.create_connection(("127.0.0.1", srv.tls_port), timeout=5)
    time.sleep(1.5)
    c = RawWS.__new__(TLSRaw)
    c.host, c.port, c.timeout, c.buf, c.closed = "127.0.0.1", srv.tls_port, 5.0, bytearray(), False
    rawws._instances.add(c)
    c.sock = client_ctx().wrap_socket(s, server_hostname="localhost")
    c.handshake()
    c.send_binary(b"slow but fine")
    assert c.read_message() == (OP_BIN, b"slow but fine")


# ------------------------------------------------------- client certificates
def _try_wss(port, cert, timeout=5):
    """A full WebSocket handshake and one echo over TLS with a client
    certificate (or None).  Returns "ok" or a description of the failure."""
    try:
        c = TLSRaw("127.0.0.1", port, ctx=client_ctx(cert=cert), timeout=timeout)
        r = c.handshake(expect=None)
        if r.status != 101:
            return "status %d" % r.status
        c.send_binary(b"cert")
        if c.read_bytes(4)[0] != b"cert":
            return "bad echo"
        c.close()
        return "ok"
    except (ssl.SSLError, OSError, rawws.ConnectionClosed, AssertionError) as e:
        return "failed: %r" % e


def test_client_cert_require(websocksy, peers):
    peer = peers.tcp_echo()
    srv = start_tls(websocksy, "-C", "tls-client-ca=%s" % CA, "-C", "tls-client-verify=require",
                    *tcp_peer_args(peer, "-c", "framing=binary"))
    t0 = time.monotonic()
    res = _try_wss(srv.tls_port, None)
    assert res != "ok", "no client certificate was accepted under require"
    assert time.monotonic() - t0 < 4, "refusal was not quick: %s" % res
    assert _try_wss(srv.tls_port, CLIENT) == "ok"
    res = _try_wss(srv.tls_port, ROGUE)
    assert res != "ok", "a certificate from a look-alike CA was accepted"
    # a server certificate of our CA is not a client certificate: refused
    # or accepted depending on key usage, but the server must survive it
    _try_wss(srv.tls_port, LOCALHOST)
    assert _try_wss(srv.tls_port, CLIENT) == "ok"
    assert len(peer.conns) == 2, "refused clients reached the peer"


def test_client_cert_optional(websocksy, peers):
    peer = peers.tcp_echo()
    srv = start_tls(websocksy, "-C", "tls-client-ca=%s" % CA, "-C", "tls-client-verify=optional",
                    *tcp_peer_args(peer, "-c", "framing=binary"))
    assert _try_wss(srv.tls_port, None) == "ok"
    assert _try_wss(srv.tls_port, CLIENT) == "ok"
    assert _try_wss(srv.tls_port, ROGUE) != "ok", "a bad certificate must still be refused"


def test_client_cert_none_ignores_certificates(websocksy, peers):
    peer = peers.tcp_echo()
    srv = start_tls(websocksy, "-C", "tls-client-verify=none",
                    *tcp_peer_args(peer, "-c", "framing=binary"))
    assert _try_wss(srv.tls_port, None) == "ok"
    assert _try_wss(srv.tls_port, CLIENT) == "ok"


def test_client_cert_openssl(websocksy, peers):
    tool = need("openssl")
    peer = peers.tcp_echo()
    srv = start_tls(websocksy, "-C", "tls-client-ca=%s" % CA, "-C", "tls-client-verify=require",
                    *tcp_peer_args(peer))
    base = [tool, "s_client", "-connect", "127.0.0.1:%d" % srv.tls_port, "-servername",
            "localhost", "-CAfile", CA, "-alpn", "http/1.1", "-ign_eof"]
    # the upgrade request, then a close frame so that the server ends it all
    req = (RawWS.request_bytes(RawWS.__new__(RawWS), host="localhost")
           + rawws.build_frame(OP_CLOSE, rawws.close_payload(1000)))
    rc, out = run_tool(base + ["-cert", CLIENT[0], "-key", CLIENT[1]], stdin=req)
    assert "101 Switching Protocols" in out, out
    assert "Acceptable client certificate CA names" in out and "websocksy test CA" in out, out
    rc, out = run_tool(base, stdin=req)
    assert "101 Switching Protocols" not in out, out
    assert "alert" in out.lower(), out


# ------------------------------------------------------ TLS facts, backend
class Resolver:
    """A unix-backend resolver: records each request, answers with a peer."""

    def __init__(self, answer):
        self.dir = short_tmpdir()
        self.path = os.path.join(self.dir, "r.sock")
        self.answer = answer
        self.requests = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.stop = threading.Event()
        self.t = threading.Thread(target=self._loop, daemon=True)
        self.t.start()

    def _loop(self):
        while not self.stop.is_set():
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with c:
                c.settimeout(2)
                buf = b""
                try:
                    while b"\n\n" not in buf:
                        d = c.recv(4096)
                        if not d:
                            break
                        buf += d
                    req = {}
                    for ln in buf.decode().split("\n"):
                        if ln:
                            k, _, v = ln.partition(" ")
                            req.setdefault(k, []).append(v)
                    self.requests.append(req)
                    c.sendall(self.answer.encode() + b"\n")
                except OSError:
                    pass

    def close(self):
        self.stop.set()
        self.sock.close()
        self.t.join(2)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def resolver():
    made = []

    def make(answer):
        r = Resolver(answer)
        made.append(r)
        return r
    yield make
    for r in made:
        r.close()


def test_backend_sees_tls_facts(websocksy, peers, resolver):
    if not os.path.exists(os.path.join(PLUGINS, "backend_unix.so")):
        pytest.skip("backend_unix.so not built")
    peer = peers.tcp_echo()
    res = resolver("peer tcp://127.0.0.1:%d framing binary" % peer.port)
    srv = start_tls(websocksy, "-b", "unix", "-C", "plugins=%s" % PLUGINS,
                    "-c", "socket=%s" % res.path, "-c", "timeout=2",
                    "-C", "tls-client-ca=%s" % CA, "-C", "tls-client-verify=optional",
                    certs=[LOCALHOST, OTHER], plain=True)
    # plain ws
    c = srv.ws()
    c.send_binary(b"p")
    assert c.read_bytes(1)[0] == b"p"
    # wss with SNI other.test and a client certificate
    t = TLSRaw("127.0.0.1", srv.tls_port, ctx=client_ctx(cert=CLIENT), server_hostname="other.test")
    t.handshake()
    t.send_binary(b"s")
    assert t.read_bytes(1)[0] == b"s"
    # wss with no ALPN, no client certificate
    u = TLSRaw("127.0.0.1", srv.tls_port, ctx=client_ctx(alpn=None))
    u.handshake()
    assert len(res.requests) == 3, res.requests
    plain, tls, bare = res.requests
    assert plain["tls"] == ["0"], plain
    for k in ("sni", "alpn", "tls-version", "client-subject"):
        assert k not in plain, plain
    assert tls["tls"] == ["1"], tls
    assert tls["sni"] == ["other.test"], tls
    assert tls["alpn"] == ["http/1.1"], tls
    assert re.fullmatch(r"TLS ?1\.[23]", tls["tls-version"][0]), tls
    assert "websocksy test client" in tls["client-subject"][0], tls
    assert bare["tls"] == ["1"] and bare["sni"] == ["localhost"], bare
    assert "alpn" not in bare and "client-subject" not in bare, bare


# -------------------------------------------------------------------- OCSP
def test_ocsp_stapling(websocksy, peers, tmp_path):
    tool = need("openssl")
    leaf = tmp_path / "leaf.pem"
    leaf.write_text(ssl.DER_cert_to_PEM_cert(pem_blocks(LOCALHOST[0])[0]))
    rc, out = run_tool([tool, "x509", "-in", str(leaf), "-noout", "-serial", "-subject",
                        "-nameopt", "compat"])
    serial = re.search(r"serial=([0-9A-Fa-f]+)", out).group(1)
    subject = re.search(r"subject=\s*(.*)", out).group(1).strip()
    (tmp_path / "index.txt").write_text("V\t400101000000Z\t\t%s\tunknown\t%s\n" % (serial, subject))
    req, resp = tmp_path / "req.der", tmp_path / "resp.der"
    rc, out = run_tool([tool, "ocsp", "-issuer", CA, "-cert", str(leaf), "-no_nonce",
                        "-reqout", str(req)])
    assert rc == 0, out
    rc, out = run_tool([tool, "ocsp", "-index", str(tmp_path / "index.txt"), "-rsigner", CA,
                        "-rkey", os.path.join(CERTS, "ca.key"), "-CA", CA, "-reqin", str(req),
                        "-respout", str(resp), "-ndays", "7"])
    assert rc == 0 and resp.stat().st_size > 0, out
    peer = peers.tcp_echo()
    srv = start_tls(websocksy, "-C", "tls-ocsp=%s" % resp, *tcp_peer_args(peer))
    rc, out = run_tool([tool, "s_client", "-connect", "127.0.0.1:%d" % srv.tls_port,
                        "-servername", "localhost", "-CAfile", CA, "-status",
                        "-alpn", "http/1.1"])
    assert "OCSP Response Status: successful" in out, out
    assert "Cert Status: good" in out, out


# ------------------------------------------- RFC 6455 core, over ws and wss
@pytest.fixture(params=["ws", "wss"])
def bridge(request, websocksy, peers):
    """(server, connect) with an echo peer: connect() gives a raw client that
    has completed the upgrade, over plain ws or over TLS."""
    peer = peers.tcp_echo()
    srv = start_tls(websocksy, *tcp_peer_args(peer), plain=True)
    scheme = request.param

    def connect(**kw):
        if scheme == "ws":
            c = RawWS("127.0.0.1", srv.port)
        else:
            c = TLSRaw("127.0.0.1", srv.tls_port)
        c.handshake(**kw)
        return c
    connect.scheme = scheme
    connect.peer = peer
    return srv, connect


def test_rfc_echo_text_and_binary(bridge):
    srv, connect = bridge
    c = connect()
    c.send_text("hello \u00e9\u20ac")
    assert c.read_message() == (OP_TEXT, "hello \u00e9\u20ac".encode())
    blob = bytes(range(256)) * 200      # 51200 bytes: 16-bit length form
    c.send_binary(blob)
    got, msgs = c.read_bytes(len(blob))
    assert got == blob
    big = os.urandom(70000)             # > 65535: 64-bit length form
    c.send_frame(OP_BIN, big, length_form=127)
    assert c.read_bytes(len(big))[0] == big


def test_rfc_fragmented_split_code_point(bridge):
    srv, connect = bridge
    c = connect()
    text = "a\u20acb\U0001f600c".encode()     # a, 3-byte, b, 4-byte, c
    # split inside the euro sign and inside the emoji
    c.send_frame(OP_TEXT, text[:2], fin=False)
    c.ping(b"between")                         # a control frame between fragments
    c.send_frame(OP_CONT, text[2:7], fin=False)
    c.send_frame(OP_CONT, text[7:], fin=True)
    seen_pong = []
    got = b""
    deadline = time.monotonic() + 5
    while len(got) < len(text):
        f = c.read_frame(timeout=max(0.01, deadline - time.monotonic()))
        if f.opcode == OP_PONG:
            seen_pong.append(f.payload)
            continue
        assert f.opcode in (OP_TEXT, OP_CONT), f   # auto framing: valid UTF-8 -> text
        got += f.payload
    assert got == text
    assert seen_pong == [b"between"]


def test_rfc_invalid_utf8_across_fragments_1007(bridge):
    srv, connect = bridge
    c = connect()
    c.send_frame(OP_TEXT, b"ok\xe2\x82", fin=False)
    c.send_frame(OP_CONT, b"\x28", fin=True)        # bad continuation byte
    assert c.read_close().close_code == 1007
    assert c.wait_eof(5)


def test_rfc_unmasked_frame_1002(bridge):
    srv, connect = bridge
    c = connect()
    c.send_frame(OP_TEXT, b"not masked", mask=False)
    f = c.read_close()
    assert f.close_code == 1002, f
    assert c.wait_eof(5), "TCP not closed after the 1002"


def test_rfc_ping_pong(bridge):
    srv, connect = bridge
    c = connect()
    for payload in (b"", b"p", b"x" * 125):
        c.ping(payload)
        f = c.read_frame()
        assert f.opcode == OP_PONG and f.payload == payload, f
        assert not f.masked
    c.send_frame(OP_PING, b"y" * 126)               # too long for a control frame
    assert c.read_close().close_code == 1002


def test_rfc_close_code_echoed(bridge):
    srv, connect = bridge
    c = connect()
    c.send_binary(b"last")
    c.send_close(4001, "bye")
    data = []
    f = c.read_close(data=data)
    assert f.close_code == 4001
    assert b"".join(p for _, p in data) == b"last"
    assert c.wait_eof(5)


def test_rfc_pipelined_frames_after_request(bridge):
    """Frames sent in the same write as the upgrade request are kept."""
    srv, connect = bridge
    if connect.scheme == "ws":
        c = RawWS("127.0.0.1", srv.port)
    else:
        c = TLSRaw("127.0.0.1", srv.tls_port)
    c.send(c.request_bytes() + rawws.build_frame(OP_BIN, b"early"))
    r = c.read_response()
    assert r.status == 101, r
    assert c.read_bytes(5)[0] == b"early"


# ------------------------------------------------------- Chromium headless
CHROMIUM_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>pending</title></head>
<body><div id="result">pending</div>
<script>
const out = document.getElementById("result");
const want = "hello from chromium \\u00e9\\u20ac\\n";
const ws = new WebSocket("wss://" + location.host + "/");
ws.binaryType = "arraybuffer";
let step = 0;
function done(r) { out.textContent = r; document.title = r.split(":")[0]; ws.close(1000); }
ws.onopen = () => ws.send(want);
ws.onmessage = (ev) => {
  if (step === 0) {
    if (ev.data !== want) { done("fail:text " + JSON.stringify(ev.data)); return; }
    step = 1;
    ws.send(new Uint8Array([0, 1, 2, 255, 10]).buffer);
  } else {
    const b = Array.from(new Uint8Array(ev.data)).join(",");
    done(b === "0,1,2,255,10" ? "ok:" + want.trim() + " " + location.protocol
                              : "fail:binary " + b);
  }
};
ws.onerror = () => done("fail:error");
ws.onclose = (ev) => { if (step < 1) done("fail:closed " + ev.code); };
</script></body></html>
"""


@pytest.mark.parametrize("how", ["dump-dom", "polling"])
def test_chromium_headless_wss_page(websocksy, peers, tmp_path, how):
    chrome = chromium_wss.find_chromium()
    if chrome is None:
        pytest.skip("chromium is not installed and apt-get install chromium failed")
    www = tmp_path / "www"
    www.mkdir()
    (www / "index.html").write_text(CHROMIUM_PAGE)
    peer = peers.tcp_echo()
    srv = start_tls(websocksy, "-w", str(www),
                    *tcp_peer_args(peer, "-c", "framing=newline", "-c", "framing-config=lf"))
    url = "https://127.0.0.1:%d/" % srv.tls_port
    # --dump-dom first; its virtual time does not wait for WebSocket traffic,
    # so a page still "pending" is then polled over the DevTools protocol
    dom = ""
    if how == "dump-dom":
        dom = chromium_wss.dump_dom(chrome, url, str(tmp_path / "profile-dump"))
    if '<div id="result">pending</div>' in dom or not dom:
        how = "polling"
        value, dom = chromium_wss.open_and_poll(
            chrome, url, str(tmp_path / "profile-poll"),
            'document.getElementById("result").textContent', timeout=20,
            log=str(tmp_path / "chromium.log"))
    body = dom.split("<script")[0]
    assert '<div id="result">ok:hello from chromium \u00e9\u20ac https:</div>' in body, \
        "page (%s) did not get its echo over wss:\n%s\n--- websocksy:\n%s" % (
            how, dom[-3000:], srv.stderr()[-3000:])
    assert "<title>ok</title>" in body, body
    err = srv.stderr()
    assert re.search(r"\[c\d+\] 200 /", err), err       # the page came over https
    peer.wait_conn(0)
    assert any(r.data.startswith("hello from chromium \u00e9\u20ac\n".encode())
               for r in peer.conns), [(bytes(r.data), r.nbytes) for r in peer.conns]
