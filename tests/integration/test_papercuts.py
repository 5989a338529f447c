"""Issue 13 part 3 and the papercuts of part 6: what a new user trips on.

auto framing's utf8-hold, the README's examples, the messages of the
client for a URL and a wrong KCP key, the browser close's log level, and
plugins found next to the binary in the build tree."""
import os
import re
import shlex
import socket
import subprocess
import time

import pytest

from conftest import BIN, REPO, free_port, run_binary, tcp_peer_args, wait_for
from rawws import OP_BIN, OP_TEXT, http_request


# ------------------------------------------------------ auto and utf8-hold
def test_auto_sends_a_held_incomplete_sequence_after_utf8_hold(websocksy, peers):
    """A peer that sends 00 01 C8 and waits for an answer: the client gets
    all three bytes, as one binary message, well within a second (the
    default utf8-hold is 250 ms), and can answer."""
    peer = peers.tcp_manual()
    srv = websocksy(*tcp_peer_args(peer, "-c", "framing=auto"))
    c = srv.ws()
    rec = peer.wait_conn()
    t0 = time.monotonic()
    rec.sock.sendall(b"\x00\x01\xc8")
    op, p = c.read_message(timeout=5)
    took = time.monotonic() - t0
    assert (op, p) == (OP_BIN, b"\x00\x01\xc8")
    assert took < 1.0, "held %.3f s" % took
    # the connection goes on: text is still text
    rec.sock.sendall("h\u00e9".encode())
    assert c.read_message(timeout=5) == (OP_TEXT, "h\u00e9".encode())


def test_auto_default_framing_does_not_stall(websocksy, peers):
    """The same with auto chosen by default (no framing option)."""
    peer = peers.tcp_manual()
    srv = websocksy(*tcp_peer_args(peer))
    c = srv.ws()
    rec = peer.wait_conn()
    rec.sock.sendall(b"ab\xe2\x82")
    assert c.read_message(timeout=5) == (OP_BIN, b"ab\xe2\x82")


def test_utf8_hold_waits_for_the_end_of_a_sequence(websocksy, peers):
    """Within utf8-hold the end of a split character makes it text, and the
    read that ended in its first bytes goes out with it, as one message."""
    peer = peers.tcp_manual()
    srv = websocksy(*tcp_peer_args(peer, "-C", "utf8-hold=10"))
    c = srv.ws()
    rec = peer.wait_conn()
    rec.sock.sendall(b"ab\xe2\x82")
    time.sleep(0.3)
    rec.sock.sendall(b"\xac")
    assert c.read_message(timeout=5) == (OP_TEXT, "ab\u20ac".encode())


def test_utf8_hold_full_buffer_stays_text(websocksy, peers):
    """A read that fills the buffer and ends inside a character: the text
    goes out as text and the character waits for its end (not the whole
    buffer as binary)."""
    peer = peers.tcp_manual()
    srv = websocksy(*tcp_peer_args(peer, "-C", "buffer-size=1024",
                                   "-C", "utf8-hold=10"))
    c = srv.ws()
    rec = peer.wait_conn()
    want = b"a" * 1023 + "\u20ac".encode() + b"b" * 10
    rec.sock.sendall(want)
    data, msgs = c.read_bytes(len(want), timeout=10)
    assert data == want
    assert all(op == OP_TEXT for op, _ in msgs), [(op, len(p)) for op, p in msgs]


def test_utf8_hold_bad_value_is_refused():
    rc, out, err = run_binary(["-C", "utf8-hold=forever", "-c", "host=127.0.0.1",
                               "-c", "port=1"])
    assert rc != 0
    assert "utf8-hold" in err, err


# ------------------------------------------------------- README, as written
def readme():
    with open(os.path.join(REPO, "README.md")) as f:
        return f.read()


def readme_command(start):
    """The shell command of the README's code block that begins with
    start, with its backslash continuations joined."""
    lines = readme().split("\n")
    for i, ln in enumerate(lines):
        if ln.strip().startswith(start):
            cmd = ln.strip()
            while cmd.endswith("\\"):
                i += 1
                cmd = cmd[:-1] + " " + lines[i].strip()
            return cmd
    raise AssertionError("README has no command starting with %r" % start)


def test_readme_python_example_works_as_written(websocksy, peers):
    """The quick tour's python one-liner, run exactly as the README has it
    (with /usr/bin/python3), against the server it describes; only the
    ports are free ones instead of 8001 and 8002."""
    text = readme()
    m = re.search(r"\n    (/usr/bin/python3) -c '(.*?)'\n", text, re.S)
    assert m, "README's python example not found (or not /usr/bin/python3)"
    code = "\n".join(ln[4:] if ln.startswith("    ") else ln
                     for ln in m.group(2).split("\n"))
    peer = peers.tcp_echo()
    srv = websocksy("-c", "host=127.0.0.1", "-c", "port=%d" % peer.port)
    code = code.replace("localhost:8001", "localhost:%d" % srv.port)
    p = subprocess.run([m.group(1), "-c", code], stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    assert p.stdout == b"hello\n", p.stdout


def test_readme_origin_example_serves_a_page_that_works(websocksy, peers):
    """The README's page-and-origin example: the page it serves, opened at
    the address the README says, is let in; another origin gets 403 and
    the log names it."""
    cmd = readme_command("build/websocksy -p 8001 -w demo/web")
    peer = peers.tcp_echo()
    port = free_port()
    argv = shlex.split(cmd.replace("8001", str(port))
                       .replace("8002", str(peer.port)))
    assert argv[0] == "build/websocksy"
    argv = [a.replace("demo/web", os.path.join(REPO, "demo", "web"))
            for a in argv[1:]]
    srv = websocksy(*argv)
    r, c = http_request("127.0.0.1", port, b"GET / HTTP/1.1\r\nHost: localhost:%d\r\n"
                        b"Connection: close\r\n\r\n" % port)
    assert r.status == 200 and b"<html" in r.body.lower(), r
    c.close()
    page = "http://localhost:%d" % port       # what the browser sends
    c = srv.ws(host="127.0.0.1", headers=[("Origin", page)])
    c.send_text("hi\n")
    assert c.read_message(timeout=5)[1] == b"hi\n"
    other = "http://127.0.0.1:%d" % port
    c2 = srv.raw()
    r = c2.handshake(expect=403, headers=[("Origin", other)])
    assert wait_for(lambda: other in srv.stderr(), 5), srv.stderr()
    line = [ln for ln in srv.stderr().splitlines() if "403" in ln][-1]
    assert other in line and "origin" in line, line


# ------------------------------------------------- the client and its args
CLIENT = os.path.abspath(os.environ.get(
    "WEBSOCKSY_CLIENT_BIN", os.path.join(REPO, "build", "websocksy-client")))


def run_client(args, timeout=10):
    p = subprocess.run([CLIENT] + list(args), stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=timeout)
    return p.returncode, p.stderr.decode(errors="replace")


def test_client_url_says_what_to_write(websocksy, peers):
    """A URL as the remote address is named as one, with the address and
    options to write instead (not "put an IPv6 address in brackets"); the
    suggestion, run as it is, carries data through a websocksy tunnel."""
    for url, want in [
            ("wss://example.com:8443/ws", "example.com:8443 "
             "'ws;tls;host=example.com;sni=example.com;path=/ws'"),
            ("wss://example.com/ws?ed=2048", "example.com:443 "
             "'ws;tls;host=example.com;sni=example.com;path=/ws?ed\\=2048'"),
            ("tls://h:4", "h:4 'tls;sni=h'"),
            ("kcp://192.0.2.1:9", "192.0.2.1:9 'kcp;psk=KEY'")]:
        rc, err = run_client(["127.0.0.1:%d" % free_port(), url, "ws;host=a;path=/"])
        assert rc == 1, err
        assert "is a URL" in err and want in err, err
        assert "brackets" not in err, err
    rc, err = run_client(["ws://127.0.0.1:1080", "127.0.0.1:1", ""])
    assert rc == 1 and "local address" in err and "is a URL" in err, err

    peer = peers.tcp_echo()
    srv = websocksy("-c", "host=127.0.0.1", "-c", "port=%d" % peer.port,
                    "-o", "ws;host=localhost;path=/tun")
    rc, err = run_client(["127.0.0.1:1", "ws://localhost:%d/tun" % srv.port, ""])
    m = re.search(r"e\.g\. (\S+) '([^']*)'", err)
    assert rc == 1 and m, err
    lport = free_port()
    p = subprocess.Popen([CLIENT, "127.0.0.1:%d" % lport, m.group(1), m.group(2)],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    try:
        assert wait_for(lambda: port_open(lport), 10)
        s = socket.create_connection(("127.0.0.1", lport), 5)
        s.settimeout(5)
        s.sendall(b"through the suggestion\n")
        got = b""
        while len(got) < 23:
            d = s.recv(100)
            if not d:
                break
            got += d
        s.close()
        assert got == b"through the suggestion\n"
    finally:
        p.terminate()
        p.wait(10)


def port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), 0.5).close()
        return True
    except OSError:
        return False


# ------------------------------------------------------- a wrong KCP key
def kcp_pair(websocksy, peers, tmp_path, server_key, client_key, name):
    plugins = os.path.join(REPO, "build", "plugins")
    if not os.path.exists(os.path.join(plugins, "framing_kcp-mux.so")):
        pytest.skip("no kcp-mux plugin in build/plugins")
    echo = peers.tcp_echo()
    udp = free_port(kind=socket.SOCK_DGRAM)
    websocksy("-C", "plugins=" + plugins, "-C", "kcp-listen=127.0.0.1:%d" % udp,
              "-C", "kcp-peer=tcp://127.0.0.1:%d" % echo.port,
              "-C", "kcp-psk=" + server_key, *tcp_peer_args(echo))
    lport = free_port()
    log = tmp_path / (name + ".log")
    f = open(log, "wb")
    p = subprocess.Popen([CLIENT, "127.0.0.1:%d" % lport, "127.0.0.1:%d" % udp,
                          "kcp;psk=%s;timeout=2" % client_key],
                         stdin=subprocess.DEVNULL, stdout=f, stderr=f)
    f.close()
    text = lambda: log.read_text(errors="replace")  # noqa: E731
    assert wait_for(lambda: "listening on" in text() or p.poll() is not None, 10), text()
    return p, lport, text


def stop_client(p):
    p.terminate()
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(5)


def genpsk():
    p = subprocess.run([CLIENT, "--genpsk"], capture_output=True, timeout=5)
    assert p.returncode == 0, p.stderr
    return p.stdout.decode().strip()


def test_kcp_wrong_key_is_named_within_timeout(websocksy, peers, tmp_path):
    """The server stays silent to a wrong key; the client says so after
    timeout= (here 2 s) instead of waiting forever behind "kcp tunnel up",
    and the local connection that waited is closed."""
    p, lport, log = kcp_pair(websocksy, peers, tmp_path, genpsk(), genpsk(), "wrong")
    try:
        s = socket.create_connection(("127.0.0.1", lport), 5)
        s.settimeout(30)
        s.sendall(b"anyone there?\n")
        t0 = time.monotonic()
        assert wait_for(lambda: "nothing came back" in log(), 20), log()
        took = time.monotonic() - t0
        line = [ln for ln in log().splitlines() if "nothing came back" in ln][0]
        assert "error" in line and "psk=" in line and "within 2 s" in line, line
        assert took < 15, took
        assert "kcp tunnel down: no authenticated answer" in log(), log()
        try:
            assert s.recv(100) == b""       # the waiting connection ends
        except ConnectionResetError:
            pass
        s.close()
        assert p.poll() is None, log()      # the client itself goes on
    finally:
        stop_client(p)


def test_kcp_right_key_says_the_server_answers(websocksy, peers, tmp_path):
    key = genpsk()
    p, lport, log = kcp_pair(websocksy, peers, tmp_path, key, key, "right")
    try:
        s = socket.create_connection(("127.0.0.1", lport), 5)
        s.settimeout(10)
        s.sendall(b"echo me\n")
        assert s.recv(100) == b"echo me\n"
        s.close()
        assert "kcp: the server answers" in log(), log()
        time.sleep(2.5)                     # past timeout=: still fine
        assert "nothing came back" not in log(), log()
    finally:
        stop_client(p)


# ---------------------------------------------- a browser leaving a page
def test_browser_leaving_a_page_is_not_an_info_line(websocksy, peers):
    """Chromium leaving a page sends close 1001 and then its FIN at once,
    while the peer (which keeps its side open) is still being lingered
    for: ordinary, so a debug line, not "client closed its side while the
    peer is not reading" at info."""
    for verbose in (False, True):
        peer = peers.tcp_manual()
        srv = websocksy(*tcp_peer_args(peer, *(["-v"] if verbose else [])))
        c = srv.ws()
        peer.wait_conn()
        c.send_text("hello\n")
        c.send_close(1001)
        c.sock.shutdown(socket.SHUT_WR)
        assert wait_for(lambda: "closed with 1001" in srv.stderr(), 10), srv.stderr()
        err = srv.stderr()
        assert "while the peer is not reading" not in err, err
        assert ("after its close frame" in err) == verbose, err
        c.close()



# ------------------------------------------- plugins beside the binary
def test_build_tree_binary_finds_its_plugins(websocksy, peers, tmp_path):
    """build/websocksy (or whichever binary the tests run) loads plugin
    framings and backends from the plugins/ beside it, without
    -C plugins=, as the README's examples assume."""
    beside = os.path.join(os.path.dirname(os.path.realpath(BIN)), "plugins")
    if not os.path.exists(os.path.join(beside, "framing_json.so")):
        pytest.skip("no plugins beside %s" % BIN)
    peer = peers.tcp_manual()
    srv = websocksy(*tcp_peer_args(peer, "-c", "framing=json"))
    c = srv.ws()
    rec = peer.wait_conn()
    rec.sock.sendall(b'{"a": 1} [2')
    assert c.read_message(timeout=5) == (OP_TEXT, b'{"a": 1}')
    # a backend plugin too (the file backend)
    (tmp_path / "peers").mkdir()
    (tmp_path / "peers" / "echo").write_text("tcp://127.0.0.1:%d *\n" % peer.port)
    srv2 = websocksy("-b", "file", "-c", "path=%s" % (tmp_path / "peers"))
    c2 = srv2.ws(path="/echo")
    assert peer.wait_conn(1)
    c2.close()


def test_plugins_key_still_wins_and_a_lone_binary_uses_the_installed_dir(tmp_path):
    rc, out, err = run_binary(["-C", "plugins=%s" % tmp_path, "-c", "host=127.0.0.1",
                               "-c", "port=1", "-c", "framing=json"])
    assert rc != 0 and "%s/framing_json.so" % tmp_path in err, err
    lone = tmp_path / "websocksy"                   # no plugins/ beside it
    lone.write_bytes(open(BIN, "rb").read())
    lone.chmod(0o755)
    p = subprocess.run([str(lone), "-c", "host=127.0.0.1", "-c", "port=1",
                        "-c", "framing=json"], capture_output=True, timeout=10,
                       stdin=subprocess.DEVNULL)
    err = p.stderr.decode(errors="replace")
    assert p.returncode != 0 and "framing_json.so" in err, err
    assert str(tmp_path) not in err, err            # the installed directory


# ------------------------------------------------ README: build, install
def readme_section(title):
    text = readme()
    i = text.index("\n## " + title)
    j = text.find("\n## ", i + 1)
    return text[i:j if j > 0 else len(text)]


def make_targets():
    p = subprocess.run(["make", "-C", REPO, "-qp"], capture_output=True,
                       timeout=60, stdin=subprocess.DEVNULL)
    out = p.stdout.decode(errors="replace")
    return set(re.findall(r"^([a-zA-Z][a-zA-Z0-9_.-]*):(?!=)", out, re.M))


def test_readme_make_targets_exist():
    section = readme_section("Build, test, install")
    named = set(re.findall(r"^\| `make(?: [A-Z_]+=\S*)* ?([a-z][a-z0-9-]*)?", section, re.M))
    named.discard("")
    assert {"install", "unit", "bench", "clean"} <= named, named
    missing = named - make_targets()
    assert not missing, "README names make targets that do not exist: %s" % missing


def test_readme_install_table_lists_every_man_page():
    with open(os.path.join(REPO, "Makefile")) as f:
        mk = f.read()
    m = re.search(r"^MAN_PAGES :?= (.*?)(?<!\\)\n", mk, re.M | re.S)
    pages = {os.path.basename(p) for p in m.group(1).replace("\\\n", " ").split()}
    assert "websocksy.8" in pages, pages
    section = readme_section("Build, test, install")
    row = [ln for ln in section.splitlines() if ln.startswith("| the man pages")]
    assert row, section
    for page in pages:
        assert "`%s`" % page in row[0], (page, row[0])


def test_tunnel_o_then_p_is_a_tls_port(websocksy, peers):
    """-o is applied after every flag: -o 'ws;tls;...' before -p still
    makes -p's port the TLS port (the README's old note said to give -p
    first)."""
    import ssl
    peer = peers.tcp_echo()
    port = free_port()
    srv = websocksy("-o", "ws;tls;servername=localhost;host=localhost;path=/ws",
                    "-p", str(port), *tcp_peer_args(peer))
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), 5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.settimeout(5)
            s.sendall(b"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                      b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      b"Sec-WebSocket-Version: 13\r\n\r\n")
            head = b""
            while b"\r\n\r\n" not in head:
                d = s.recv(1000)
                assert d, head
                head += d
            assert head.startswith(b"HTTP/1.1 101"), head
    assert ":%d (wss" % port in srv.stderr(), srv.stderr()
