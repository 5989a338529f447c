"""kcp-mux over one WebSocket: the real websocksy with framing_kcp-mux.so,
driven by a small mux client written here from docs/KCP-MUX.md (frame
codec, SETTINGS handshake, per-stream windows with WINDOW_UPDATE) over
python3-websockets, against TCP echo peers on loopback.

The plugin directory is $WEBSOCKSY_PLUGINS if set, else plugins/ next to
the binary under test, else <repo>/build/plugins.
"""
import asyncio
import hashlib
import os
import random
import struct

import pytest
import websockets

from conftest import BIN, REPO, closed_port, run_async, tcp_peer_args

DATA, HEADERS, SETTINGS, PING, GOAWAY, WINDOW_UPDATE = 0, 1, 4, 6, 7, 8
ACK = END_STREAM = 1
WINDOW = 262144
FRAME = 16384


def plugin_dir():
    env = os.environ.get("WEBSOCKSY_PLUGINS")
    if env:
        return os.path.abspath(env)
    near = os.path.join(os.path.dirname(BIN), "plugins")
    if os.path.isfile(os.path.join(near, "framing_kcp-mux.so")):
        return near
    return os.path.join(REPO, "build", "plugins")


def start(websocksy, peer_port, config=None):
    path = os.path.join(plugin_dir(), "framing_kcp-mux.so")
    if not os.path.isfile(path):
        pytest.skip("%s not built" % path)
    extra = ["-c", "framing=kcp-mux"]
    if config is not None:
        extra += ["-c", "framing-config=" + config]
    return websocksy("-C", "plugins=" + plugin_dir(), "-c", "host=127.0.0.1",
                     "-c", "port=%d" % peer_port, *extra)


def frame(ftype, flags, sid, payload=b""):
    return (struct.pack(">I", len(payload))[1:] + bytes((ftype, flags))
            + struct.pack(">I", sid) + payload)


class Stream:
    def __init__(self, mux, sid):
        self.mux = mux
        self.sid = sid
        self.chunks = bytearray()      # received, not read yet
        self.fin = False
        self.rst = None                # the reason, once reset
        self.synack = False
        self.send_win = mux.peer_window
        self.changed = asyncio.Event()  # data, fin, rst, window
        self.unacked = 0               # read, not yet announced

    def poke(self):
        self.changed.set()

    async def wait(self, timeout):
        self.changed.clear()
        await asyncio.wait_for(self.changed.wait(), timeout)

    async def write(self, data, timeout=60):
        view = memoryview(data)
        while view:
            while self.send_win <= 0 and self.rst is None:
                await self.wait(timeout)
            if self.rst is not None:
                raise ConnectionResetError(self.rst)
            n = min(len(view), self.send_win, self.mux.peer_frame)
            self.send_win -= n
            await self.mux.send(frame(DATA, 0, self.sid, bytes(view[:n])))
            view = view[n:]

    async def shutdown(self):
        await self.mux.send(frame(DATA, END_STREAM, self.sid))

    async def read(self, timeout=60):
        """Some bytes, b'' at FIN; raises on RST."""
        while not self.chunks and not self.fin and self.rst is None:
            await self.wait(timeout)
        if self.chunks:
            d = bytes(self.chunks)
            self.chunks.clear()
            await self.consumed(len(d))
            return d
        if self.rst is not None:
            raise ConnectionResetError(self.rst)
        return b""

    async def consumed(self, n):
        # Announce in halves of the window, as §7 describes.
        self.unacked += n
        if self.unacked >= WINDOW // 2:
            inc, self.unacked = self.unacked, 0
            await self.mux.send(frame(WINDOW_UPDATE, 0, self.sid,
                                      struct.pack(">I", inc)))

    async def read_all(self, timeout=60):
        out = bytearray()
        while True:
            d = await self.read(timeout)
            if not d:
                return bytes(out)
            out += d


class MuxClient:
    """The client role of KCP-MUX.md over one websockets connection."""

    def __init__(self, ws):
        self.ws = ws
        self.buf = bytearray()
        self.streams = {}
        self.next_id = 1
        self.peer_window = WINDOW
        self.peer_frame = FRAME
        self.settings = asyncio.Event()   # the server's SETTINGS
        self.settings_acked = asyncio.Event()
        self.pongs = {}
        self.pong = asyncio.Event()
        self.goaway = None
        self.pings = 0                    # PINGs from the server
        self.deaf = False                 # do not answer them
        self.closed = asyncio.Event()
        self.lock = asyncio.Lock()
        self.reader = None

    async def start(self):
        settings = b"".join(struct.pack(">HI", i, v) for i, v in
                            ((3, 128), (4, WINDOW), (5, FRAME)))
        await self.send(frame(SETTINGS, 0, 0, settings))
        self.reader = asyncio.ensure_future(self._read())
        await asyncio.wait_for(self.settings.wait(), 5)
        await asyncio.wait_for(self.settings_acked.wait(), 5)

    async def send(self, b):
        async with self.lock:
            await self.ws.send(b)

    async def open(self, uri=b""):
        sid = self.next_id
        self.next_id += 2
        s = Stream(self, sid)
        self.streams[sid] = s
        await self.send(frame(HEADERS, 0, sid, uri))
        return s

    async def ping(self, data, timeout=5):
        self.pong.clear()
        await self.send(frame(PING, 0, 0, data))
        while data not in self.pongs:
            await asyncio.wait_for(self.pong.wait(), timeout)
            self.pong.clear()
        return True

    async def close(self):
        if self.reader:
            self.reader.cancel()
            try:
                await self.reader
            except (asyncio.CancelledError, Exception):
                pass

    async def _read(self):
        try:
            async for msg in self.ws:
                assert isinstance(msg, bytes), "text message from server"
                self.buf += msg
                await self._frames()
        except websockets.ConnectionClosed:
            pass
        finally:
            self.closed.set()
            for s in self.streams.values():
                if s.rst is None and not s.fin:
                    s.rst = "connection closed"
                s.poke()

    async def _frames(self):
        while len(self.buf) >= 9:
            n = int.from_bytes(self.buf[0:3], "big")
            if len(self.buf) < 9 + n:
                return
            ftype, flags = self.buf[3], self.buf[4]
            sid = int.from_bytes(self.buf[5:9], "big") & 0x7fffffff
            payload = bytes(self.buf[9:9 + n])
            del self.buf[:9 + n]
            await self._dispatch(ftype, flags, sid, payload)

    async def _dispatch(self, ftype, flags, sid, p):
        s = self.streams.get(sid)
        if ftype == SETTINGS:
            if flags & ACK:
                self.settings_acked.set()
                return
            assert not self.settings.is_set() or len(p) % 6 == 0
            for i in range(0, len(p), 6):
                k, v = struct.unpack(">HI", p[i:i + 6])
                if k == 4:
                    for st in self.streams.values():
                        st.send_win += v - self.peer_window
                    self.peer_window = v
                elif k == 5:
                    self.peer_frame = min(v, 65535)
            self.settings.set()
            await self.send(frame(SETTINGS, ACK, 0))
        elif ftype == PING:
            if flags & ACK:
                self.pongs[p] = True
                self.pong.set()
            else:
                self.pings += 1
                if not self.deaf:
                    await self.send(frame(PING, ACK, 0, p))
        elif ftype == GOAWAY:
            self.goaway = (struct.unpack(">I", p[4:8])[0], p[8:].decode())
        elif ftype == WINDOW_UPDATE and s is not None:
            s.send_win += struct.unpack(">I", p)[0] & 0x7fffffff
            s.poke()
        elif ftype == HEADERS and s is not None:
            if flags & END_STREAM:
                s.rst = p.decode(errors="replace")
            else:
                s.synack = True
            s.poke()
        elif ftype == DATA and s is not None:
            assert s.rst is None and not s.fin, "DATA after end"
            s.chunks += p
            if flags & END_STREAM:
                s.fin = True
            s.poke()


def connect(url):
    return websockets.connect(url, open_timeout=5, close_timeout=5,
                              ping_interval=None, compression=None,
                              max_size=None, max_queue=64)


def payload(seed, n):
    return random.Random(seed).randbytes(n)


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


async def echo_stream(mux, seed, size, uri=b"", stall=None):
    """Write size bytes on a new stream, FIN, read the echo back; compare
    by hash.  With stall (an Event), nothing is read until it is set."""
    s = await mux.open(uri)
    data = payload(seed, size)
    want = hashlib.sha256(data).hexdigest()

    async def writer():
        await s.write(data, timeout=60)
        await s.shutdown()

    w = asyncio.ensure_future(writer())
    try:
        if stall is not None:
            await asyncio.wait_for(stall.wait(), 90)
        h, n = hashlib.sha256(), 0
        while True:
            d = await s.read(60)
            if not d:
                break
            h.update(d)
            n += len(d)
        await asyncio.wait_for(w, 60)
    finally:
        # A failed read must not leave the writer's error unretrieved.
        w.cancel()
        await asyncio.gather(w, return_exceptions=True)
    return n == size and h.hexdigest() == want


def test_fifty_streams_of_2mb_byte_identical(websocksy, peers):
    echo = peers.tcp_echo()
    srv = start(websocksy, echo.port)
    base = open_fds(srv.pid)

    async def main():
        async with connect(srv.url) as ws:
            mux = MuxClient(ws)
            await mux.start()
            res = await asyncio.gather(*(echo_stream(mux, i, 2 << 20)
                                         for i in range(50)))
            await mux.close()
            return res

    res = run_async(main(), timeout=150)
    assert res == [True] * 50
    # Every peer stream was closed after its FINs (only the listener
    # fds and the like remain).
    from conftest import wait_for
    assert wait_for(lambda: open_fds(srv.pid) <= base, 5), \
        (open_fds(srv.pid), base)
    assert len(echo.conns) == 50


def test_stalled_reader_does_not_stall_others(websocksy, peers):
    echo = peers.tcp_echo()
    srv = start(websocksy, echo.port)

    async def main():
        async with connect(srv.url) as ws:
            mux = MuxClient(ws)
            await mux.start()
            stall = asyncio.Event()
            stalled = asyncio.ensure_future(
                echo_stream(mux, 99, 2 << 20, stall=stall))
            await asyncio.sleep(0.2)
            others = await asyncio.gather(*(echo_stream(mux, i, 2 << 20)
                                            for i in range(10)))
            # The others are done while the stalled one holds at most
            # one window of unread bytes.
            st = mux.streams[1]
            held = len(st.chunks)
            assert not stalled.done()
            stall.set()
            ok = await asyncio.wait_for(stalled, 60)
            await mux.close()
            return others, held, ok

    others, held, ok = run_async(main(), timeout=150)
    assert others == [True] * 10
    assert 0 < held <= WINDOW
    assert ok


def test_refused_peer_gets_rst_with_reason(websocksy, peers):
    srv = start(websocksy, closed_port())

    async def main():
        async with connect(srv.url) as ws:
            mux = MuxClient(ws)
            await mux.start()
            s = await mux.open()
            await s.write(b"0-RTT bytes crossing the RST")
            while s.rst is None:
                await s.wait(5)
            # The tunnel survives: PING still answered.
            await mux.ping(b"stillup!")
            await mux.close()
            return s.rst

    reason = run_async(main(), timeout=20)
    assert "refused" in reason.lower(), reason


def test_targets_allow_list(websocksy, peers):
    echo = peers.tcp_echo()
    srv = start(websocksy, closed_port(), "targets=tcp://127.0.0.1:*")
    dead = closed_port()

    async def main():
        async with connect(srv.url) as ws:
            mux = MuxClient(ws)
            await mux.start()
            ok = await echo_stream(mux, 1, 100000,
                                   b"tcp://127.0.0.1:%d" % echo.port)
            out = await mux.open(b"tcp://10.255.255.1:80")
            v6 = await mux.open(b"tcp://[::1]:%d" % echo.port)
            opt = await mux.open(b"tcp://127.0.0.1:%d?bind=127.0.0.2"
                                 % echo.port)
            gone = await mux.open(b"tcp://127.0.0.1:%d" % dead)
            for s in (out, v6, opt, gone):
                while s.rst is None:
                    await s.wait(5)
            await mux.close()
            return ok, out.rst, v6.rst, opt.rst, gone.rst

    ok, out, v6, opt, gone = run_async(main(), timeout=30)
    assert ok
    assert out == "target not allowed"
    assert v6 == "target not allowed"
    assert opt == "target not allowed"
    assert "refused" in gone.lower(), gone


def test_keepalive_ping_answered(websocksy, peers):
    echo = peers.tcp_echo()
    srv = start(websocksy, echo.port, "keepalive=10 window=131072")

    async def main():
        async with connect(srv.url) as ws:
            mux = MuxClient(ws)
            await mux.start()
            assert mux.peer_window == 131072
            for i in range(3):
                await mux.ping(struct.pack(">Q", 0x1122334455667700 + i))
            ok = await echo_stream(mux, 5, 300000)
            await mux.ping(b"\x00" * 8)
            await mux.close()
            return ok

    assert run_async(main(), timeout=20)


def test_protocol_error_goaway_and_close(websocksy, peers):
    echo = peers.tcp_echo()
    srv = start(websocksy, echo.port)

    async def main():
        async with connect(srv.url) as ws:
            await ws.send(frame(DATA, 0, 1, b"x"))
            got = bytearray()
            try:
                while True:
                    got += await asyncio.wait_for(ws.recv(), 5)
            except websockets.ConnectionClosed as e:
                code = e.rcvd.code if e.rcvd else None
            return bytes(got), code

    got, code = run_async(main(), timeout=20)
    assert code == 1002
    assert got[3] == GOAWAY
    assert struct.unpack(">I", got[13:17])[0] == 1   # PROTOCOL_ERROR
    assert got[17:].decode() == "expected SETTINGS"


def test_peer_half_close_then_upload_is_delivered(websocksy, peers):
    """The peer ends its side first, then reads a slow upload to the end:
    the client's FIN must not cut off bytes still queued for the peer."""
    import socket
    import threading
    import time
    size = 8 << 20
    data = payload(7, size)
    got = {}
    done = threading.Event()

    def handler(rec, srv):
        s = rec.sock
        s.sendall(b"greeting")
        s.shutdown(socket.SHUT_WR)
        time.sleep(1.0)            # let the upload pile up in websocksy
        h, n = hashlib.sha256(), 0
        s.settimeout(10)
        while True:
            try:
                d = s.recv(262144)
            except OSError:
                break
            if not d:
                break
            h.update(d)
            n += len(d)
            time.sleep(0.001)      # slower than the client
        got["n"], got["sha"] = n, h.hexdigest()
        done.set()

    peer = peers.tcp(handler)
    # A small receive window keeps websocksy's socket buffer small, so the
    # tail of the upload waits in websocksy when the client's FIN comes.
    peer.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    srv = start(websocksy, peer.port)

    async def main():
        async with connect(srv.url) as ws:
            mux = MuxClient(ws)
            await mux.start()
            s = await mux.open()
            hello = await s.read_all(10)
            await s.write(data)
            await s.shutdown()
            ok = await asyncio.get_running_loop().run_in_executor(
                None, done.wait, 30)
            await mux.close()
            return hello, ok

    hello, ok = run_async(main(), timeout=60)
    assert hello == b"greeting"
    assert ok
    assert got["n"] == size
    assert got["sha"] == hashlib.sha256(data).hexdigest()


def test_server_keepalive_and_timeout(websocksy, peers):
    """The server PINGs an idle tunnel (host timer); a client that answers
    stays, one that stops answering gets GOAWAY and a 1001 close."""
    echo = peers.tcp_echo()
    srv = start(websocksy, echo.port, "keepalive=1 timeout=1")

    async def main():
        async with connect(srv.url) as ws:
            mux = MuxClient(ws)
            await mux.start()
            await asyncio.sleep(2.6)
            pings = mux.pings
            ok = await echo_stream(mux, 3, 10000)
            mux.deaf = True
            await asyncio.wait_for(mux.closed.wait(), 6)
            await mux.close()
            return pings, ok, mux.goaway, ws.close_code, ws.close_reason

    pings, ok, goaway, code, reason = run_async(main(), timeout=20)
    assert pings >= 2
    assert ok
    assert goaway == (0, "keepalive timeout")
    assert code == 1001 and reason == "keepalive timeout"
