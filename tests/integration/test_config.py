"""Command line and INI configuration, config errors, listening addresses."""
import os
import re
import shutil
import socket
import subprocess

import pytest

from conftest import BIN, REPO, free_port, run_binary, tcp_peer_args
from rawws import OP_TEXT, RawWS

CERTS = os.path.join(REPO, "tests", "certs")


def echo_ok(host, port, text="ping?"):
    c = RawWS(host, port)
    try:
        c.handshake()
        c.send_text(text)
        return c.read_message() == (OP_TEXT, text.encode())
    finally:
        c.close()


def refused(host, port):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam)
    s.settimeout(1)
    try:
        s.connect((host, port))
        return False
    except OSError:
        return True
    finally:
        s.close()


# ------------------------------------------------------------------ info
@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_help(flag):
    rc, out, err = run_binary([flag])
    assert rc == 0
    assert "usage" in out.lower(), out
    for opt in ("-p", "-l", "-b", "-c"):
        assert opt in out, "help does not mention %s" % opt


@pytest.mark.parametrize("flag", ["-V", "--version"])
def test_version(flag):
    rc, out, err = run_binary([flag])
    assert rc == 0
    assert out.strip() == "websocksy 0.1.0", out


# ----------------------------------------------------------------- flags
def test_port_flag_and_listen_log(websocksy, peers):
    peer = peers.tcp_echo()
    port = free_port()
    srv = websocksy("-p", str(port), *tcp_peer_args(peer))
    assert srv.port == port
    assert echo_ok("127.0.0.1", port)
    assert re.search(r"websocksy\[%d\]: info: .*listening on \[::\]:%d" % (srv.pid, port),
                     srv.stderr()), srv.stderr()


def test_listen_ipv4_only(websocksy, peers):
    peer = peers.tcp_echo()
    srv = websocksy("-l", "127.0.0.1", *tcp_peer_args(peer))
    assert echo_ok("127.0.0.1", srv.port)
    assert "listening on 127.0.0.1:%d" % srv.port in srv.stderr()
    assert refused("::1", srv.port)


def test_listen_ipv6_loopback(websocksy, peers):
    peer = peers.tcp_echo()
    srv = websocksy("-l", "::1", *tcp_peer_args(peer), probe=("::1",))
    assert echo_ok("::1", srv.port)
    assert "listening on [::1]:%d" % srv.port in srv.stderr()
    assert refused("127.0.0.1", srv.port)


def test_default_dual_stack(websocksy, peers):
    peer = peers.tcp_echo()
    srv = websocksy(*tcp_peer_args(peer))          # default listen = ::
    assert echo_ok("127.0.0.1", srv.port, "via v4")
    assert echo_ok("::1", srv.port, "via v6")


def test_listen_localhost(websocksy, peers):
    peer = peers.tcp_echo()
    srv = websocksy("-l", "localhost", *tcp_peer_args(peer), probe=("127.0.0.1", "::1"))
    assert echo_ok("127.0.0.1", srv.port) if not refused("127.0.0.1", srv.port) \
        else echo_ok("::1", srv.port)


def test_backend_flag_static(websocksy, peers):
    peer = peers.tcp_echo()
    srv = websocksy("-b", "static", *tcp_peer_args(peer))
    assert echo_ok("127.0.0.1", srv.port)


def test_backend_unknown_fails(tmp_path):
    rc, out, err = run_binary(["-p", str(free_port()), "-b", "nosuchbackend"], cwd=str(tmp_path))
    assert rc != 0
    assert "nosuchbackend" in err, err


def test_core_option_flag(websocksy, peers):
    peer = peers.tcp_echo()
    srv = websocksy("-C", "max-connections=1", *tcp_peer_args(peer))
    a = RawWS("127.0.0.1", srv.port)
    a.handshake()
    b = RawWS("127.0.0.1", srv.port)
    b.send(b.request_bytes())
    assert b.read_response().status == 503


def test_verbosity_flags(websocksy, peers):
    peer = peers.tcp_echo()
    srv = websocksy("-v", "-v", *tcp_peer_args(peer))
    assert echo_ok("127.0.0.1", srv.port)
    srvq = websocksy("-q", "-q", *tcp_peer_args(peer))
    assert echo_ok("127.0.0.1", srvq.port)
    assert "info:" not in srvq.stderr(), srvq.stderr()


# ------------------------------------------------------------------- INI
def test_ini_file(websocksy, peers):
    peer = peers.tcp_echo()
    ini = """; websocksy test configuration
[core]
port = {port}
listen = 127.0.0.1
ping = 0
max-connections = 10
handshake-timeout = 2.5
log-level = debug

[backend]
host = 127.0.0.1   ; inline comment
port = %d
framing = binary
protocol = chat
""" % peer.port
    srv = websocksy(ini=ini)
    c = RawWS("127.0.0.1", srv.port)
    r = c.handshake(headers=[("Sec-WebSocket-Protocol", "chat")])
    assert r.get("Sec-WebSocket-Protocol") == "chat"
    c.send_text("ini works")
    assert c.read_message() == (2, b"ini works")       # binary framing
    assert "listening on 127.0.0.1:%d" % srv.port in srv.stderr()


def test_ini_full_peer_uri(websocksy, peers):
    peer = peers.udp_echo()
    ini = "[core]\nport = {port}\n[backend]\nhost = udp://127.0.0.1:%d\n" % peer.port
    srv = websocksy(ini=ini)
    assert echo_ok("127.0.0.1", srv.port, "over udp")


# ---------------------------------------------------------- config errors
def config_error(tmp_path, text, name="bad.ini"):
    (tmp_path / name).write_text(text)
    rc, out, err = run_binary([name], cwd=str(tmp_path))
    assert rc == 1, "exit %s, stderr:\n%s" % (rc, err)
    assert "listening on" not in err
    return err


def test_ini_unknown_key(tmp_path):
    err = config_error(tmp_path, "[core]\nport = %d\nbogus-key = 1\n" % free_port())
    assert "bad.ini:3: bogus-key: " in err, err


def test_ini_unknown_backend_key(tmp_path):
    err = config_error(tmp_path, "[core]\nport = %d\n\n[backend]\nhost = 127.0.0.1\nfoo = 2\n"
                       % free_port())
    assert "bad.ini:6: foo: " in err, err


def test_ini_bad_number(tmp_path):
    err = config_error(tmp_path, "[core]\nport = eighty\n")
    assert "bad.ini:2: port: " in err, err


@pytest.mark.parametrize("key,value", [("max-connections", "12abc"), ("buffer-size", "-5"),
                                       ("handshake-timeout", "soon"), ("ping", "x")])
def test_ini_bad_numbers(tmp_path, key, value):
    err = config_error(tmp_path, "[core]\n%s = %s\n" % (key, value))
    assert "bad.ini:2: %s: " % key in err, err


def test_ini_bad_peer_uri(tmp_path):
    err = config_error(tmp_path, "[core]\nport = %d\n[backend]\nhost = gopher://127.0.0.1:70\n"
                       % free_port())
    assert "bad.ini:4: host: " in err, err


def test_ini_unknown_framing(tmp_path):
    err = config_error(tmp_path, "[core]\nport = %d\n[backend]\nhost = 127.0.0.1\nport = 1\n"
                       "framing = nosuchframing\n" % free_port())
    assert "bad.ini:6: framing: " in err, err


def test_ini_unknown_section(tmp_path):
    err = config_error(tmp_path, "[core]\nport = %d\n[nosuchsection]\nkey = 1\n" % free_port())
    assert "bad.ini:" in err, err


def test_ini_all_errors_reported(tmp_path):
    err = config_error(tmp_path, "[core]\nport = nope\nmax-headers = many\nwhatever = 1\n")
    assert "bad.ini:2: port: " in err, err
    assert "bad.ini:3: max-headers: " in err, err
    assert "bad.ini:4: whatever: " in err, err


def test_missing_ini_file(tmp_path):
    rc, out, err = run_binary(["does-not-exist.ini"], cwd=str(tmp_path))
    assert rc == 1
    assert "does-not-exist.ini" in err, err


# Part 5 of issue 13: errors that were silent, or shown one stage at a time.
def plugin_args():
    plugins = os.environ.get("WEBSOCKSY_PLUGINS") or os.path.join(
        os.path.dirname(BIN), "plugins")
    return ["-C", "plugins=" + plugins]


def test_ini_duplicate_core_key(tmp_path):
    err = config_error(tmp_path, "[core]\nport = %d\nping = 5\nport = %d\n"
                       % (free_port(), free_port()))
    assert "bad.ini:4: port: is duplicate (first given at line 2)" in err, err


def test_ini_duplicate_across_core_and_tls(tmp_path):
    err = config_error(tmp_path, "[core]\ntls-port = %d\n[tls]\nport = %d\n"
                       % (free_port(), free_port()))
    assert "bad.ini:4: port: is duplicate (first given at line 2)" in err, err


def test_ini_duplicate_backend_key(tmp_path):
    err = config_error(tmp_path, "[core]\nport = %d\n[backend]\nhost = 127.0.0.1\n"
                       "port = 1\nport = 2\n" % free_port())
    assert "bad.ini:6: port: is duplicate (first given at line 5)" in err, err


def test_ini_repeatable_keys_are_not_duplicates(websocksy, peers, tmp_path):
    """tls-cert/tls-key pairs and the file backend's expressions repeat."""
    (tmp_path / "routes").mkdir()
    (tmp_path / "routes" / "default").write_text("tcp://127.0.0.1:%d *\n"
                                                 % peers.tcp_echo().port)
    ini = ("[core]\nport = {port}\nbackend = file\nplugins = %s\n"
           "[tls]\nport = %d\ncert = %s\nkey = %s\ncert = %s\nkey = %s\n"
           "[backend]\npath = %s\nexpression = %%endpoint%%\nexpression = default\n"
           % (plugin_args()[1].split("=", 1)[1], free_port(),
              os.path.join(CERTS, "localhost.pem"), os.path.join(CERTS, "localhost.key"),
              os.path.join(CERTS, "other.pem"), os.path.join(CERTS, "other.key"),
              tmp_path / "routes"))
    srv = websocksy(ini=ini)
    assert echo_ok("127.0.0.1", srv.port)


def test_ini_directory(tmp_path):
    (tmp_path / "bad.ini").mkdir()
    rc, out, err = run_binary(["bad.ini"], cwd=str(tmp_path))
    assert rc == 1, err
    assert "bad.ini: is a directory" in err, err
    assert "required" not in err and "listening" not in err, err


def test_ini_cannot_open(tmp_path):
    (tmp_path / "notadir").write_text("")
    rc, out, err = run_binary(["notadir/bad.ini"], cwd=str(tmp_path))
    assert rc == 1, err
    assert "notadir/bad.ini: cannot open: Not a directory" in err, err
    assert "required" not in err, err


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_ini_unreadable(tmp_path):
    (tmp_path / "bad.ini").write_text("[core]\nport = 1\n")
    os.chmod(str(tmp_path / "bad.ini"), 0)
    rc, out, err = run_binary(["bad.ini"], cwd=str(tmp_path))
    assert rc == 1, err
    assert "bad.ini: cannot open: Permission denied" in err, err
    assert "required" not in err, err


def test_ini_core_and_backend_errors_in_one_run(tmp_path):
    """[backend] errors used to show only once [core] was fixed."""
    err = config_error(tmp_path, "[core]\nport = nope\nbogus = 1\n[backend]\n"
                       "host = gopher://127.0.0.1:70\nfoo = 1\n")
    for want in ("bad.ini:2: port: ", "bad.ini:3: bogus: ", "bad.ini:5: host: ",
                 "bad.ini:6: foo: "):
        assert want in err, (want, err)


def test_ini_core_backend_and_tls_errors_in_one_run(tmp_path):
    err = config_error(tmp_path, "[core]\nport = %d\nmax-headers = 1\n[tls]\nport = %d\n"
                       "cert = /nonexistent/c.pem\nkey = /nonexistent/k.pem\n"
                       "[backend]\nfoo = 1\n" % (free_port(), free_port()))
    for want in ("bad.ini:3: max-headers: ",
                 "bad.ini:6: tls-cert: cannot read /nonexistent/c.pem: "
                 "No such file or directory",
                 "bad.ini:7: tls-key: cannot read /nonexistent/k.pem: ",
                 "bad.ini:9: foo: "):
        assert want in err, (want, err)


def test_tls_file_unreadable_flag(tmp_path):
    rc, out, err = run_binary(["-p", "0", "-s", str(free_port()),
                               "-C", "tls-cert=" + str(tmp_path),
                               "-C", "tls-key=" + os.path.join(CERTS, "localhost.key"),
                               "-c", "host=127.0.0.1", "-c", "port=1"])
    assert rc == 1, err
    assert "-C tls-cert: cannot read %s: Is a directory" % tmp_path in err, err
    assert "listening" not in err, err


def test_tls_file_bad_contents(tmp_path):
    """Readable but not a certificate: the file and GnuTLS's reason."""
    (tmp_path / "c.pem").write_text("not a certificate\n")
    err = config_error(tmp_path, "[core]\nport = 0\n[tls]\nport = %d\ncert = c.pem\n"
                       "key = %s\n[backend]\nhost = 127.0.0.1\nport = 1\n"
                       % (free_port(), os.path.join(CERTS, "localhost.key")))
    assert "bad.ini:5: tls-cert: certificate c.pem: No certificate was found" in err, err


def test_tls_key_bad_contents(tmp_path):
    (tmp_path / "k.pem").write_text("-----BEGIN PRIVATE KEY-----\nbroken\n")
    err = config_error(tmp_path, "[core]\nport = 0\n[tls]\nport = %d\ncert = %s\n"
                       "key = k.pem\n[backend]\nhost = 127.0.0.1\nport = 1\n"
                       % (free_port(), os.path.join(CERTS, "localhost.pem")))
    assert "bad.ini:6: tls-key: key k.pem: " in err, err


def test_tls_cert_without_tls_port(tmp_path):
    err = config_error(tmp_path, "[core]\nport = %d\n[tls]\ncert = %s\nkey = %s\n"
                       "[backend]\nhost = 127.0.0.1\nport = 1\n"
                       % (free_port(), os.path.join(CERTS, "localhost.pem"),
                          os.path.join(CERTS, "localhost.key")))
    assert "bad.ini:4: tls-cert: unused: no tls-port is set" in err, err
    assert "bad.ini:5: tls-key: unused: no tls-port is set" in err, err


def test_tls_flag_without_tls_port(tmp_path):
    rc, out, err = run_binary(["-p", str(free_port()), "-C", "tls-servername=localhost",
                               "-c", "host=127.0.0.1", "-c", "port=1"])
    assert rc == 1, err
    assert "-C tls-servername: unused: no tls-port is set" in err, err
    assert "listening" not in err, err


def test_tls_port_in_use_logs_no_listening(tmp_path):
    """Every socket is bound before the first "listening" line."""
    busy = socket.socket()
    busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        rc, out, err = run_binary(["-l", "127.0.0.1", "-p", str(free_port()),
                                   "-s", str(busy.getsockname()[1]),
                                   "-C", "tls-servername=localhost",
                                   "-c", "host=127.0.0.1", "-c", "port=1"])
    finally:
        busy.close()
    assert rc == 1, err
    assert "listening" not in err, err
    assert "in use" in err.lower(), err


def test_kcp_error_logs_no_listening(tmp_path):
    rc, out, err = run_binary(["-p", str(free_port()), *plugin_args(),
                               "-C", "kcp-listen=127.0.0.1:%d"
                               % free_port(kind=socket.SOCK_DGRAM),
                               "-C", "kcp-psk=short", "-c", "host=127.0.0.1",
                               "-c", "port=1", "-c", "bogus=1"])
    assert rc == 1, err
    assert "-C kcp-psk: expected 32 bytes" in err, err
    assert "-c bogus: " in err, err
    assert "listening" not in err, err


def test_kcp_port_in_use_logs_no_listening(tmp_path):
    busy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    busy.bind(("127.0.0.1", 0))
    try:
        rc, out, err = run_binary(["-p", str(free_port()), *plugin_args(),
                                   "-C", "kcp-listen=127.0.0.1:%d" % busy.getsockname()[1],
                                   "-c", "host=127.0.0.1", "-c", "port=1"])
    finally:
        busy.close()
    assert rc == 1, err
    assert "kcp-listen" in err, err
    assert "listening" not in err, err


@pytest.mark.parametrize("how", ["-o", "ini"])
def test_server_path_needs_leading_slash(tmp_path, how):
    if how == "-o":
        rc, out, err = run_binary(["-p", str(free_port()), "-o", "ws;path=ws",
                                   "-c", "host=127.0.0.1", "-c", "port=1"])
        assert rc == 1, err
        assert "-o: option 'path': 'ws' must start with '/'" in err, err
    else:
        err = config_error(tmp_path, "[core]\nport = %d\nws-path = ws\n" % free_port())
        assert "bad.ini:3: ws-path: 'ws' must start with '/'" in err, err


def test_flag_unknown_backend_option(tmp_path):
    rc, out, err = run_binary(["-p", str(free_port()), "-c", "nosuchkey=1"], cwd=str(tmp_path))
    assert rc == 1
    assert "-c nosuchkey: " in err, err


def test_flag_unknown_framing(tmp_path):
    rc, out, err = run_binary(["-p", str(free_port()), "-c", "framing=nosuchframing"],
                              cwd=str(tmp_path))
    assert rc == 1
    assert "-c framing: " in err, err


def test_flag_bad_core_option(tmp_path):
    rc, out, err = run_binary(["-p", str(free_port()), "-C", "max-connections=lots"],
                              cwd=str(tmp_path))
    assert rc == 1
    assert "max-connections" in err, err


def test_flag_bad_port(tmp_path):
    rc, out, err = run_binary(["-p", "notaport"], cwd=str(tmp_path))
    assert rc != 0
    assert "listening on" not in err


def test_two_positional_arguments(tmp_path):
    (tmp_path / "a.ini").write_text("[core]\nport = %d\n" % free_port())
    (tmp_path / "b.ini").write_text("[core]\nport = %d\n" % free_port())
    rc, out, err = run_binary(["a.ini", "b.ini"], cwd=str(tmp_path))
    assert rc != 0
    assert "listening on" not in err


def test_unknown_option(tmp_path):
    rc, out, err = run_binary(["--no-such-option"], cwd=str(tmp_path))
    assert rc != 0


def test_log_line_format(websocksy, peers):
    """'TIMESTAMP websocksy[PID]: info: [c12] message' for connection
    messages, the timestamp ISO 8601 UTC with milliseconds."""
    peer = peers.tcp_echo()
    srv = websocksy("-v", *tcp_peer_args(peer))
    assert echo_ok("127.0.0.1", srv.port)
    err = srv.stderr()
    ts = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z "
    assert re.search(r"^%swebsocksy\[%d\]: info: listening on " % (ts, srv.pid), err, re.M), err
    assert re.search(r"^%swebsocksy\[%d\]: (info|debug): \[c\d+\] " % (ts, srv.pid), err,
                     re.M), err


def test_every_config_key_is_documented():
    """Each key of the table in core/cfg.c has its entry in README.md,
    websocksy(8) and websocksy.cfg(5) (their defaults: test_cfg.c)."""
    root = os.path.join(os.path.dirname(__file__), "..", "..")
    with open(os.path.join(root, "core", "cfg.c")) as f:
        src = f.read()
    table = src[src.index("keys[] = {"):]
    table = table[:table.index("};")]
    keys = set(re.findall(r'(?:STR|UINT|SECS)\("([a-z0-9-]+)"', table))
    keys |= set(re.findall(r'\{ "([a-z0-9-]+)", T_', table))
    assert len(keys) > 40, keys
    with open(os.path.join(root, "README.md")) as f:
        readme = f.read()
    with open(os.path.join(root, "docs", "websocksy.8")) as f:
        man = f.read().replace("\\-", "-")
    cfg5 = man_text(os.path.join(root, "docs", "websocksy.cfg.5"))
    missing = sorted(k for k in keys
                     if "`%s`" % k not in readme or k not in man or k not in cfg5)
    assert not missing, "undocumented keys: %s" % missing


def man_text(path):
    with open(path) as f:
        return f.read().replace("\\-", "-")


def test_cfg5_documents_every_backend_and_framing_key():
    """websocksy.cfg(5) names every key the built-in backends take, every
    framing (built in and plugin) and every kcp-mux framing-config key.
    The [core] keys and their defaults: tests/unit/test_cfg.c."""
    root = os.path.join(os.path.dirname(__file__), "..", "..")
    man = man_text(os.path.join(root, "docs", "websocksy.cfg.5"))
    missing = []
    for name in ("static", "file", "unix"):
        with open(os.path.join(root, "backends", name + ".c")) as f:
            keys = re.findall(r'strcmp\(key, "([a-z-]+)"\) == 0', f.read())
        assert keys, name
        section = man[man.index('.SS "[backend] of the %s backend"' % name):]
        section = section[:section.index("\n.S", 1)]
        missing += ["%s backend: %s" % (name, k) for k in keys
                    if not re.search(r"^\.BR? %s( |$)" % re.escape(k), section, re.M)]
    with open(os.path.join(root, "core", "framing.c")) as f:
        framings = re.findall(r'\{ "([a-z0-9-]+)", fr_', f.read())
    assert framings
    framings += [n[:-2] for n in os.listdir(os.path.join(root, "framing")) if n.endswith(".c")]
    section = man[man.index("\n.SH FRAMINGS"):]
    section = section[:section.index("\n.SH", 1)]
    missing += ["framing " + n for n in framings
                if not re.search(r"^\.B %s$" % re.escape(n), section, re.M)]
    with open(os.path.join(root, "framing", "kcp-mux.c")) as f:
        words = re.findall(r'strcmp\(key, "([a-z-]+)"\) == 0', f.read())
    assert len(words) >= 5, words
    missing += ["kcp-mux framing-config " + w for w in words if w + "=" not in section]
    assert not missing, "undocumented in websocksy.cfg(5): %s" % missing


def test_man_pages_render_cleanly():
    if shutil.which("groff") is None:
        pytest.skip("no groff")
    root = os.path.join(os.path.dirname(__file__), "..", "..")
    for page in ("websocksy.cfg.5", "websocksy.8", "websocksy-client.1"):
        p = subprocess.run(["groff", "-ww", "-man", "-Tutf8",
                            os.path.join(root, "docs", page)],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
        assert p.returncode == 0 and p.stderr == b"", (page, p.stderr.decode())


def test_install_man_writes_the_prefix_paths(tmp_path):
    """The man pages in docs/ say /usr/local; installed, they say PREFIX's
    paths (make install runs install-man)."""
    if shutil.which("make") is None:
        pytest.skip("no make")
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    prefix = str(tmp_path / "x" / "usr")
    p = subprocess.run(["make", "-s", "-C", root, "install-man", "PREFIX=" + prefix],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    assert p.returncode == 0, p.stdout.decode()
    man = os.path.join(prefix, "share", "man")
    pages = {"man8/websocksy.8", "man1/websocksy-client.1", "man5/websocksy.cfg.5",
             "man3/websocksy-plugin.3"}
    for page in pages:
        with open(os.path.join(man, page)) as f:
            text = f.read()
        assert "/usr/local" not in text, page
    assert (prefix + "/lib/websocksy") in man_text(os.path.join(man, "man8/websocksy.8"))
    assert (prefix + "/lib/websocksy") in man_text(os.path.join(man, "man5/websocksy.cfg.5"))
    assert (prefix + "/include/websocksy_plugin.h") in man_text(
        os.path.join(man, "man8/websocksy.8"))
    for page in pages:
        assert os.stat(os.path.join(man, page)).st_mode & 0o777 == 0o644, page

