"""Framing plugins: websocksy loads framing_NAME.so from the plugin
directory and cuts a real TCP peer's stream with it.

The plugin directory is $WEBSOCKSY_PLUGINS if set, else plugins/ next to
the binary under test (build/san/plugins for the ASan build), else
<repo>/build/plugins.
"""
import asyncio
import os
import struct

import pytest
import websockets

from conftest import BIN, REPO, run_async, tcp_peer_args


# ------------------------------------------- fixedlength, dynamic32, json
def plugin_dir():
    env = os.environ.get("WEBSOCKSY_PLUGINS")
    if env:
        return os.path.abspath(env)
    near = os.path.join(os.path.dirname(BIN), "plugins")
    if os.path.isfile(os.path.join(near, "framing_json.so")):
        return near
    return os.path.join(REPO, "build", "plugins")


def need_plugin(name):
    path = os.path.join(plugin_dir(), "framing_%s.so" % name)
    if not os.path.isfile(path):
        pytest.skip("%s not built" % path)


def start(websocksy, peer, framing, config=None, *core):
    need_plugin(framing)
    args = ["-C", "plugins=" + plugin_dir()] + list(core)
    extra = ["-c", "framing=" + framing]
    if config is not None:
        extra += ["-c", "framing-config=" + config]
    return websocksy(*(args + tcp_peer_args(peer, *extra)))


def connect(url):
    return websockets.connect(url, open_timeout=5, close_timeout=5,
                              ping_interval=None, compression=None,
                              max_size=None)


async def receive(url, peer, chunks, count, pause=0.05):
    """Connect, let the peer write chunks (pausing between them so they
    arrive as separate reads), return the first count messages."""
    async with connect(url) as ws:
        rec = await asyncio.get_running_loop().run_in_executor(
            None, peer.wait_conn)
        for c in chunks:
            rec.sock.sendall(c)
            await asyncio.sleep(pause)
        return [await asyncio.wait_for(ws.recv(), 5) for _ in range(count)]


def expect_1011(srv, peer, data):
    """The plugin fails the connection: close 1011 after any messages."""
    c = srv.ws()
    rec = peer.wait_conn()
    rec.sock.sendall(data)
    msgs = []
    f = c.read_close(timeout=5, data=msgs)
    assert f.close_code == 1011, f
    return msgs


def test_json_values_as_text(websocksy, peers):
    peer = peers.tcp_manual()
    srv = start(websocksy, peer, "json")
    got = run_async(receive(srv.url, peer, [
        b'{"a": [1, 2, {"b": null}], "c": "x\\"}"}\n',
        b'[true, false]  "caf\xc3\xa9" 42\n',
        b'{"split":', b' "across reads"', b'}'], 5))
    # whitespace between values is dropped: one value per message
    assert got == ['{"a": [1, 2, {"b": null}], "c": "x\\"}"}',
                   "[true, false]", '"caf\u00e9"', "42",
                   '{"split": "across reads"}'], got
    assert all(isinstance(m, str) for m in got)


def test_json_garbage_closes_1011(websocksy, peers):
    peer = peers.tcp_manual()
    srv = start(websocksy, peer, "json")
    msgs = expect_1011(srv, peer, b'{"ok":1} oops')
    assert msgs == [(1, b'{"ok":1}')], msgs
    assert "framing error" in srv.stderr()


def test_json_depth_limit(websocksy, peers):
    peer = peers.tcp_manual()
    srv = start(websocksy, peer, "json", "depth=2")
    msgs = expect_1011(srv, peer, b"[[1]] [[[1]]]")
    assert msgs == [(1, b"[[1]]")], msgs


def test_json_value_larger_than_buffer(websocksy, peers):
    """The core flushes a full buffer; the framing stays in step, so the
    value after the big one is still one message of its own."""
    peer = peers.tcp_manual()
    srv = start(websocksy, peer, "json", None, "-C", "buffer-size=4096")
    big = b'{"k": "' + b"x" * 20000 + b'"}'
    c = srv.ws()
    rec = peer.wait_conn()
    rec.sock.settimeout(5)
    rec.sock.sendall(big)
    data, msgs = c.read_bytes(len(big), timeout=5)
    assert data == big
    assert len(msgs) > 1
    rec.sock.sendall(b' {"next": 2} ')
    op, p = c.read_message(timeout=5)
    assert (op, p) == (1, b'{"next": 2}')


def test_fixedlength(websocksy, peers):
    peer = peers.tcp_manual()
    srv = start(websocksy, peer, "fixedlength", "4")
    got = run_async(receive(srv.url, peer,
                            [b"abcdefghij", b"kl", b"\xff\x00\x01\x02"], 4))
    assert got == [b"abcd", b"efgh", b"ijkl", b"\xff\x00\x01\x02"], got


def test_fixedlength_larger_than_buffer_stays_aligned(websocksy, peers):
    peer = peers.tcp_manual()
    srv = start(websocksy, peer, "fixedlength", "5000",
                "-C", "buffer-size=4096")
    c = srv.ws()
    rec = peer.wait_conn()
    rec.sock.settimeout(5)
    blob = bytes(range(256)) * 40           # 10240 bytes
    rec.sock.sendall(blob[:10000])
    ends, got = [], b""
    while len(got) < 10000:
        _, p = c.read_message(timeout=5)
        got += p
        ends.append(len(got))
    assert got == blob[:10000]
    # full buffers are flushed early, but a message still ends where
    # each 5000-byte frame ends
    assert 5000 in ends and ends[-1] == 10000, ends


def test_fixedlength_bad_config_fails_the_connection(websocksy, peers):
    """Plugin configs are not checked at start-up: websocksy starts, and
    the connection fails with 1011 when the first data arrives."""
    peer = peers.tcp_manual()
    srv = start(websocksy, peer, "fixedlength", "0")
    assert expect_1011(srv, peer, b"abc") == []


def test_dynamic32_big_endian_keep(websocksy, peers):
    peer = peers.tcp_manual()
    srv = start(websocksy, peer, "dynamic32", "keep")
    f1 = struct.pack(">I", 3) + b"abc"
    f2 = struct.pack(">I", 0)
    f3 = struct.pack(">I", 300) + b"z" * 300
    stream = f1 + f2 + f3
    got = run_async(receive(srv.url, peer,
                            [stream[:2], stream[2:9], stream[9:]], 3))
    assert got == [f1, f2, f3], got


def test_dynamic32_strip_default(websocksy, peers):
    """The default: big-endian, the prefix is dropped; an empty payload
    gives no message."""
    peer = peers.tcp_manual()
    srv = start(websocksy, peer, "dynamic32")
    stream = (struct.pack(">I", 3) + b"abc" + struct.pack(">I", 0)
              + struct.pack(">I", 5000) + b"q" * 5000)
    got = run_async(receive(srv.url, peer,
                            [stream[:2], stream[2:9], stream[9:]], 2))
    assert got == [b"abc", b"q" * 5000], [len(m) for m in got]


def test_dynamic32_little(websocksy, peers):
    peer = peers.tcp_manual()
    srv = start(websocksy, peer, "dynamic32", "little, keep")
    f1 = struct.pack("<I", 5) + b"hello"
    got = run_async(receive(srv.url, peer, [f1 + f1], 2))
    assert got == [f1, f1], got


def test_dynamic32_too_long_closes_1011(websocksy, peers):
    peer = peers.tcp_manual()
    srv = start(websocksy, peer, "dynamic32", "keep")
    ok = struct.pack(">I", 1) + b"a"
    msgs = expect_1011(srv, peer, ok + struct.pack(">I", (16 << 20) + 1))
    assert msgs == [(2, ok)], msgs


def test_dynamic32_bad_config_fails_the_connection(websocksy, peers):
    peer = peers.tcp_manual()
    srv = start(websocksy, peer, "dynamic32", "middle")
    assert expect_1011(srv, peer, struct.pack(">I", 1) + b"a") == []


def test_unknown_framing_plugin_refused_at_start(websocksy, peers, tmp_path):
    """A framing that is neither built in nor a plugin file is a start-up
    error (the static backend resolves it while reading the config)."""
    from conftest import run_binary
    peer = peers.tcp_manual()
    rc, _, err = run_binary(["-C", "plugins=%s" % tmp_path] + tcp_peer_args(
        peer, "-c", "framing=json"))
    assert rc != 0
    assert "json" in err, err
