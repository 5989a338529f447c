"""The plugin SDK as an outsider uses it.

`make install DESTDIR=<tmp> PREFIX=/usr` from the repository, then the
example plugin (plugins/example) is copied away from the tree and built with
its own Makefile through pkg-config against the staged install only
(PKG_CONFIG_PATH=<tmp>/usr/lib/pkgconfig, paths re-rooted with
--define-prefix), installed into the staged plugindir, and loaded by the
websocksy under test against a real TCP peer.  Also: a plugin with the wrong
ABI is refused at start-up naming both versions, and an unknown framing
names the plugin directory searched.
"""
import asyncio
import os
import re
import shutil
import subprocess
import tempfile

import pytest
import websockets

from conftest import BIN, REPO, free_port, run_async, run_binary, tcp_peer_args

T = 5


def clean_env(**extra):
    """The environment for a child make: no settings of an outer make."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES",
                        "PKG_CONFIG_SYSROOT_DIR", "DESTDIR", "PREFIX")}
    env.update(extra)
    return env


def run(cmd, timeout, **kw):
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=timeout, **kw)
    out = p.stdout.decode(errors="replace")
    assert p.returncode == 0, "%s failed (%d):\n%s" % (
        " ".join(cmd), p.returncode, out[-6000:])
    return out


@pytest.fixture(scope="module")
def sdk():
    """Stage `make install`, build and install the example out of tree.
    Yields a dict of the paths involved."""
    if shutil.which("pkg-config") is None or shutil.which("make") is None:
        pytest.skip("needs make and pkg-config")
    top = tempfile.mkdtemp(prefix="wsysdk")
    try:
        stage = os.path.join(top, "stage")
        run(["make", "-C", REPO, "install", "DESTDIR=" + stage,
             "PREFIX=/usr"], timeout=900, env=clean_env())
        pcdir = os.path.join(stage, "usr", "lib", "pkgconfig")
        # only the staged SDK is visible, re-rooted under the stage
        env = clean_env(PKG_CONFIG_PATH=pcdir, PKG_CONFIG_LIBDIR=pcdir)
        pkgconf = ["pkg-config", "--define-prefix"]
        src = os.path.join(top, "example")
        shutil.copytree(os.path.join(REPO, "plugins", "example"), src)
        run(["make", "-C", src,
             "PKG_CONFIG=" + " ".join(pkgconf)], timeout=120, env=env)
        run(["make", "-C", src, "install",
             "PKG_CONFIG=" + " ".join(pkgconf)], timeout=60, env=env)
        yield {
            "top": top, "stage": stage, "pcdir": pcdir, "env": env,
            "pkgconf": pkgconf, "src": src,
            "plugindir": os.path.join(stage, "usr", "lib", "websocksy"),
        }
    finally:
        shutil.rmtree(top, ignore_errors=True)


def pkg(sdk, *args):
    return run(sdk["pkgconf"] + list(args) + ["websocksy-plugin"], timeout=10,
               env=sdk["env"]).strip()


# ------------------------------------------------------------ the install
def test_install_stages_header_pc_and_man_page(sdk):
    st = sdk["stage"]
    hdr = os.path.join(st, "usr", "include", "websocksy_plugin.h")
    pc = os.path.join(sdk["pcdir"], "websocksy-plugin.pc")
    man = os.path.join(st, "usr", "share", "man", "man3", "websocksy-plugin.3")
    for f in (hdr, pc, man):
        assert os.path.isfile(f), f
    with open(hdr) as f:
        api = re.search(r"#define WEBSOCKSY_API_VERSION (\d+)", f.read())
    with open(pc) as f:
        text = f.read()
    # the .pc describes the real install (/usr), not the stage
    assert "prefix=/usr\n" in text
    assert st not in text
    assert not re.search(r"@[A-Z]+@", text), text
    assert pkg(sdk, "--variable=apiversion") == api.group(1)
    with open(os.path.join(REPO, "Makefile")) as f:
        version = re.search(r"^VERSION\s*:?=\s*(\S+)", f.read(), re.M).group(1)
    assert pkg(sdk, "--modversion") == version
    # re-rooted: flags and plugindir point into the stage
    assert pkg(sdk, "--cflags") == "-I" + os.path.join(st, "usr", "include")
    assert pkg(sdk, "--variable=plugindir") == sdk["plugindir"]
    # the shipped plugins went to the same plugindir
    assert os.path.isfile(os.path.join(sdk["plugindir"], "framing_json.so"))


def test_man_page_renders_cleanly(sdk):
    if shutil.which("groff") is None:
        pytest.skip("no groff")
    man = os.path.join(sdk["stage"], "usr", "share", "man", "man3",
                       "websocksy-plugin.3")
    p = subprocess.run(["groff", "-ww", "-man", "-Tutf8", man],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    assert p.returncode == 0 and p.stderr == b"", p.stderr.decode()
    text = re.sub(r".\x08", "", p.stdout.decode(errors="replace"))
    for word in ("WEBSOCKSY_API_VERSION", "wsy_backend_ops",
                 "wsy_framing_ops", "wsy_session_host", "wsy_session_ops",
                 "wsy_host", "wsy_request", "wsy_answer", "peer_open",
                 "frame_skip", "THREADING", "MEMORY", "VERSIONING"):
        assert word in text, word


def test_example_built_out_of_tree_against_the_stage(sdk):
    so = os.path.join(sdk["src"], "framing_netstring.so")
    assert os.path.isfile(so)
    assert os.path.isfile(os.path.join(sdk["plugindir"],
                                       "framing_netstring.so"))
    # the copy cannot have used the tree's header: it is not next to it
    assert not os.path.exists(os.path.join(sdk["top"],
                                           "websocksy_plugin.h"))


# --------------------------------------------- the example, end to end
def start(websocksy, sdk, peer, config=None):
    extra = ["-c", "framing=netstring"]
    if config is not None:
        extra += ["-c", "framing-config=" + config]
    return websocksy("-C", "plugins=" + sdk["plugindir"],
                     *tcp_peer_args(peer, *extra))


def connect(url):
    return websockets.connect(url, open_timeout=T, close_timeout=T,
                              ping_interval=None, compression=None,
                              max_size=None)


async def exchange(url, peer, chunks, count, send=(), pause=0.05):
    """Connect; send client messages; let the peer write chunks as separate
    reads; return (messages, what the peer received)."""
    loop = asyncio.get_running_loop()
    async with connect(url) as ws:
        rec = await loop.run_in_executor(None, peer.wait_conn)
        for m in send:
            await ws.send(m)
        for c in chunks:
            rec.sock.sendall(c)
            await asyncio.sleep(pause)
        msgs = [await asyncio.wait_for(ws.recv(), T) for _ in range(count)]
        return msgs, rec


def test_example_netstrings_end_to_end(websocksy, peers, sdk):
    peer = peers.tcp_manual()
    srv = start(websocksy, sdk, peer)
    stream = b"5:hello,0:,3:a,b,12:split across,"
    # cut at awkward places: inside the length, after ':', before ','
    chunks = [stream[:1], stream[1:9], stream[9:16], stream[16:27],
              stream[27:]]
    msgs, rec = run_async(exchange(srv.url, peer, chunks, 3,
                                   send=[b"raw \x00 bytes", "and text"]))
    assert msgs == [b"hello", b"a,b", b"split across"]
    # client -> peer is not framed
    assert rec.sock.recv(100) == b"raw \x00 bytesand text"


def test_example_text_mode_and_each_byte_split(websocksy, peers, sdk):
    peer = peers.tcp_manual()
    srv = start(websocksy, sdk, peer, "text max=64")
    stream = "3:caf,6:caf\u00e9!,".encode() + b"2:\xff\xfe,"
    msgs, _ = run_async(exchange(srv.url, peer,
                                 [stream[i:i + 1] for i in range(len(stream))],
                                 3, pause=0.01))
    # text where valid UTF-8; the core sends the rest as binary
    assert msgs == ["caf", "caf\u00e9!", b"\xff\xfe"]


@pytest.mark.parametrize("garbage", [b"x:abc,", b"3:abcX", b"01:a,",
                                     b"100:" + b"a" * 100 + b","])
def test_example_bad_netstring_closes_1011(websocksy, peers, sdk, garbage):
    peer = peers.tcp_manual()
    srv = start(websocksy, sdk, peer, "max=64")

    async def go():
        async with connect(srv.url) as ws:
            rec = await asyncio.get_running_loop().run_in_executor(
                None, peer.wait_conn)
            rec.sock.sendall(b"2:ok," + garbage)
            assert await asyncio.wait_for(ws.recv(), T) == b"ok"
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), T)
            return ws.close_code
    assert run_async(go()) == 1011
    # the server keeps serving
    ok = peers.tcp_manual()
    srv2 = start(websocksy, sdk, ok)
    msgs, _ = run_async(exchange(srv2.url, ok, [b"4:fine,"], 1))
    assert msgs == [b"fine"]
    assert srv.proc.poll() is None


# ------------------------------------------------------- start-up errors
def abi_plugin_dir():
    near = os.path.join(os.path.dirname(BIN), "testplugins")
    if os.path.isfile(os.path.join(near, "framing_badabi.so")):
        return near
    d = os.path.join(REPO, "build", "testplugins")
    if not os.path.isfile(os.path.join(d, "framing_badabi.so")):
        pytest.skip("framing_badabi.so not built")
    return d


def test_wrong_abi_is_refused_with_both_versions():
    d = abi_plugin_dir()
    with open(os.path.join(REPO, "plugins", "websocksy_plugin.h")) as f:
        api = int(re.search(r"#define WEBSOCKSY_API_VERSION (\d+)",
                            f.read()).group(1))
    rc, out, err = run_binary(["-p", str(free_port()), "-C", "plugins=" + d, "-c",
                               "host=127.0.0.1", "-c", "port=9", "-c",
                               "framing=badabi"])
    assert rc != 0
    assert "framing_badabi.so" in err, err
    nums = [int(n) for n in re.findall(r"version (\d+)", err)]
    assert api + 98 in nums and api in nums, err


def test_unknown_framing_names_the_plugin_directory():
    d = tempfile.mkdtemp(prefix="wsyplug")
    try:
        rc, out, err = run_binary(["-p", str(free_port()), "-C", "plugins=" + d, "-c",
                                   "host=127.0.0.1", "-c", "port=9", "-c",
                                   "framing=nosuchthing"])
    finally:
        shutil.rmtree(d, ignore_errors=True)
    assert rc != 0
    assert "nosuchthing" in err, err
    assert d in err, err
