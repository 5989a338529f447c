"""Framing sessions: tests/plugins/framing_sessiondemo.c owns the whole
connection and drives peer streams through the session host functions.

The client speaks the demo's protocol: text commands (open [URI], shut ID,
close ID, pause ID, resume ID, bye) and binary "ID(4 bytes) payload"
messages; the demo answers "opened ID", "failed ID reason", "eof ID",
"closed ID", "error ID reason", and sends stream data back as
"ID(4 bytes) payload".
"""
import asyncio
import os
import re
import struct

import pytest
import websockets

from conftest import BIN, REPO, closed_port, run_async, wait_for

T = 5  # seconds for any single wait


def session_plugin_dir():
    env = os.environ.get("WEBSOCKSY_TESTPLUGINS")
    if env:
        return os.path.abspath(env)
    near = os.path.join(os.path.dirname(BIN), "testplugins")
    if os.path.isfile(os.path.join(near, "framing_sessiondemo.so")):
        return near
    return os.path.join(REPO, "build", "testplugins")


def start(websocksy, peer, *extra):
    d = session_plugin_dir()
    if not os.path.isfile(os.path.join(d, "framing_sessiondemo.so")):
        pytest.skip("framing_sessiondemo.so not built in %s" % d)
    return websocksy("-C", "plugins=" + d, "-c", "framing=sessiondemo",
                     "-c", "host=127.0.0.1", "-c", "port=%d" % peer.port,
                     *extra)


def connect(url):
    return websockets.connect(url, open_timeout=T, close_timeout=T,
                              ping_interval=None, compression=None,
                              max_size=None)


class Demo:
    """The client side of the demo protocol: keeps stream data apart from
    the text replies, per stream."""

    def __init__(self, ws):
        self.ws = ws
        self.texts = []
        self.data = {}

    async def _pump(self):
        m = await asyncio.wait_for(self.ws.recv(), T)
        if isinstance(m, str):
            self.texts.append(m)
        else:
            assert len(m) >= 4, m
            sid = struct.unpack(">I", m[:4])[0]
            self.data.setdefault(sid, bytearray()).extend(m[4:])

    async def reply(self, pattern):
        """The first text reply matching pattern (removed from the list)."""
        rx = re.compile(pattern)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + T
        while True:
            for i, t in enumerate(self.texts):
                if rx.fullmatch(t):
                    return self.texts.pop(i)
            if loop.time() > deadline:
                raise AssertionError("no reply like %r; got %r"
                                     % (pattern, self.texts))
            await self._pump()

    async def stream_data(self, sid, n):
        """Wait until stream sid delivered at least n bytes; return them."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + T
        while len(self.data.get(sid, b"")) < n:
            if loop.time() > deadline:
                raise AssertionError("stream %d: %d of %d bytes" % (
                    sid, len(self.data.get(sid, b"")), n))
            await self._pump()
        return bytes(self.data[sid])

    async def open(self, uri=None):
        await self.ws.send("open" if uri is None else "open " + uri)
        return int((await self.reply(r"opened \d+")).split()[1])

    async def write(self, sid, payload):
        await self.ws.send(struct.pack(">I", sid) + payload)


def blob(n, seed):
    return bytes((i * 7 + seed) & 0xFF for i in range(n))


async def in_thread(fn, *args):
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


# ------------------------------------------------------------- the tests
def test_open_default_and_explicit_uri(websocksy, peers):
    peer = peers.tcp_echo()
    other = peers.tcp_echo()
    srv = start(websocksy, peer)

    async def go():
        async with connect(srv.url) as ws:
            d = Demo(ws)
            a = await d.open()
            b = await d.open("tcp://127.0.0.1:%d" % other.port)
            assert a > 0 and b > 0 and a != b
            await d.write(a, b"to the default")
            await d.write(b, b"to the uri")
            assert await d.stream_data(a, 14) == b"to the default"
            assert await d.stream_data(b, 10) == b"to the uri"
    run_async(go())
    assert peer.wait_conn(0).data == b"to the default"
    assert other.wait_conn(0).data == b"to the uri"


def test_two_streams_both_ways_at_once(websocksy, peers):
    peer = peers.tcp_echo()
    srv = start(websocksy, peer)
    size, chunk = 65536, 4096
    want = {}

    async def go():
        async with connect(srv.url) as ws:
            d = Demo(ws)
            s1 = await d.open()
            s2 = await d.open("tcp://127.0.0.1:%d" % peer.port)
            want[s1], want[s2] = blob(size, 1), blob(size, 2)
            # interleave the two streams chunk by chunk, reading echoes
            # as they come
            for off in range(0, size, chunk):
                for s in (s1, s2):
                    await d.write(s, want[s][off:off + chunk])
            got1 = await d.stream_data(s1, size)
            got2 = await d.stream_data(s2, size)
            assert got1 == want[s1]
            assert got2 == want[s2]
            assert not [t for t in d.texts if t.startswith("short")], d.texts
            return s1, s2
    s1, s2 = run_async(go())
    # the echo peer saw each stream's bytes on its own connection
    assert bytes(peer.wait_conn(0).data) == want[s1]
    assert bytes(peer.wait_conn(1).data) == want[s2]


def test_refused_peer_reports_failed(websocksy, peers):
    peer = peers.tcp_echo()
    srv = start(websocksy, peer)
    port = closed_port()

    async def go():
        async with connect(srv.url) as ws:
            d = Demo(ws)
            await ws.send("open tcp://127.0.0.1:%d" % port)
            r = await d.reply(r"failed \d+ .+")
            sid = int(r.split()[1])
            assert sid > 0, r
            # the failed id is dead, the session goes on
            await d.write(sid, b"x")
            await d.reply(r"short %d -1" % sid)
            ok = await d.open()
            await d.write(ok, b"still here")
            assert await d.stream_data(ok, 10) == b"still here"
    run_async(go())


def test_shut_gives_peer_eof_and_eof_comes_back(websocksy, peers):
    peer = peers.tcp_echo()
    srv = start(websocksy, peer)

    async def go():
        async with connect(srv.url) as ws:
            d = Demo(ws)
            sid = await d.open()
            await d.write(sid, b"last words")
            await ws.send("shut %d" % sid)
            rec = await in_thread(peer.wait_conn)
            assert await in_thread(rec.eof.wait, T), "peer saw no EOF"
            # the echo peer closes after its EOF: that comes back as eof,
            # after the echoed data
            await d.reply(r"eof %d" % sid)
            assert bytes(d.data.get(sid, b"")) == b"last words"
            # the write side is shut: more data is refused
            await d.write(sid, b"more")
            await d.reply(r"short %d -1" % sid)
            return rec
    rec = run_async(go())
    assert rec.data == b"last words"


def test_close_stream(websocksy, peers):
    peer = peers.tcp_sink(hold=True)
    srv = start(websocksy, peer)

    async def go():
        async with connect(srv.url) as ws:
            d = Demo(ws)
            keep = await d.open()
            gone = await d.open()
            await d.write(gone, b"abc")
            rec = await in_thread(peer.wait_conn, 1)
            assert await in_thread(wait_for, lambda: rec.data == b"abc")
            await ws.send("close %d" % gone)
            await d.reply(r"closed %d" % gone)
            assert await in_thread(rec.eof.wait, T), "peer saw no close"
            await d.write(gone, b"x")
            await d.reply(r"short %d -1" % gone)
            # the other stream is untouched
            await d.write(keep, b"kept")
            first = await in_thread(peer.wait_conn, 0)
            assert await in_thread(wait_for, lambda: first.data == b"kept")
            assert not first.eof.is_set()
    run_async(go())


def test_pause_and_resume_stream(websocksy, peers):
    peer = peers.tcp_manual()
    srv = start(websocksy, peer)

    async def go():
        async with connect(srv.url) as ws:
            d = Demo(ws)
            sid = await d.open()
            rec = await in_thread(peer.wait_conn)
            await ws.send("pause %d" % sid)
            # a round trip through the session so the pause is in effect
            await ws.send("nonsense")
            await d.reply("unknown command")
            rec.sock.sendall(b"held back")
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.5)
            await ws.send("resume %d" % sid)
            assert await d.stream_data(sid, 9) == b"held back"
            rec.release.set()
    run_async(go())


def test_bye_closes_with_4000_and_frees_streams(websocksy, peers):
    peer = peers.tcp_sink(hold=True)
    srv = start(websocksy, peer)

    async def go():
        async with connect(srv.url) as ws:
            d = Demo(ws)
            await d.open()
            await d.open()
            await ws.send("bye")
            with pytest.raises(websockets.ConnectionClosed):
                while True:
                    await asyncio.wait_for(ws.recv(), T)
            assert ws.close_code == 4000
            assert ws.close_reason == "bye"
    run_async(go())
    for i in range(2):
        assert peer.wait_conn(i).eof.wait(T), "stream %d left open" % i


@pytest.mark.parametrize("how", ["close", "abort"])
def test_client_leaving_mid_session_frees_everything(websocksy, peers, how):
    peer = peers.tcp_sink(hold=True)
    echo = peers.tcp_echo()
    srv = start(websocksy, peer)

    async def session_then_leave():
        async with connect(srv.url) as ws:
            d = Demo(ws)
            a = await d.open()
            b = await d.open()
            await d.write(a, b"1" * 1000)
            await d.write(b, b"2" * 1000)
            rec = await in_thread(peer.wait_conn, 1)
            assert await in_thread(wait_for, lambda: rec.nbytes == 1000)
            if how == "abort":
                ws.transport.abort()   # no close frame: the TCP just goes
                return
            await ws.close(1000)

    async def next_client():
        async with connect(srv.url) as ws:
            d = Demo(ws)
            sid = await d.open("tcp://127.0.0.1:%d" % echo.port)
            await d.write(sid, b"next")
            assert await d.stream_data(sid, 4) == b"next"

    run_async(session_then_leave())
    # both streams of the gone client are closed by the core
    for i in range(2):
        assert peer.wait_conn(i).eof.wait(T), "stream %d left open" % i
    assert srv.proc.poll() is None, srv.stderr()
    run_async(next_client())
    assert srv.proc.poll() is None, srv.stderr()
