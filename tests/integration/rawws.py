"""A tiny raw-socket WebSocket client for protocol-level tests.

It can send arbitrary bytes, build frames with any flags / opcodes / masks /
length encodings, read frames, and read HTTP responses (status line, headers,
body).  Every blocking operation is bounded by a socket timeout.
"""
import base64
import hashlib
import os
import socket
import struct
import time
import weakref

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
DEFAULT_KEY = "dGhlIHNhbXBsZSBub25jZQ=="

OP_CONT, OP_TEXT, OP_BIN, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10

# every RawWS ever created and still alive; conftest closes them before it
# stops the server so that a lingering client never delays shutdown
_instances = weakref.WeakSet()


def accept_key(key):
    if isinstance(key, str):
        key = key.encode()
    return base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()


def apply_mask(data, key):
    n = len(data)
    if n == 0:
        return b""
    rep = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(rep, "big")).to_bytes(n, "big")


def build_frame(opcode, payload=b"", fin=True, rsv=0, mask=True, mask_key=None,
                length=None, length_form=None):
    """Build one frame.

    rsv: 3-bit value (4 = RSV1, 2 = RSV2, 1 = RSV3).
    length: override the advertised payload length.
    length_form: force 7-bit (None/0), 16-bit (126) or 64-bit (127) encoding.
    """
    if isinstance(payload, str):
        payload = payload.encode()
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0x0F)
    n = len(payload) if length is None else length
    mbit = 0x80 if mask else 0
    if length_form is None:
        length_form = 0 if n < 126 else (126 if n < 65536 else 127)
    if length_form == 126:
        hdr = struct.pack("!BBH", b0, mbit | 126, n)
    elif length_form == 127:
        hdr = struct.pack("!BBQ", b0, mbit | 127, n)
    else:
        hdr = struct.pack("!BB", b0, mbit | n)
    if mask:
        if mask_key is None:
            mask_key = os.urandom(4)
        return hdr + mask_key + apply_mask(payload, mask_key)
    return hdr + payload


def close_payload(code=None, reason=b""):
    if code is None:
        return b""
    if isinstance(reason, str):
        reason = reason.encode()
    return struct.pack("!H", code) + reason


class Frame:
    def __init__(self, fin, rsv, opcode, payload, masked):
        self.fin, self.rsv, self.opcode = fin, rsv, opcode
        self.payload, self.masked = payload, masked

    @property
    def close_code(self):
        if len(self.payload) >= 2:
            return struct.unpack("!H", self.payload[:2])[0]
        return None

    @property
    def close_reason(self):
        return self.payload[2:]

    def __repr__(self):
        p = self.payload if len(self.payload) <= 40 else self.payload[:40] + b"..."
        return "Frame(fin=%d rsv=%d op=%d len=%d %r)" % (
            self.fin, self.rsv, self.opcode, len(self.payload), p)


class Response:
    def __init__(self, status, reason, version, headers, body, raw_head):
        self.status, self.reason, self.version = status, reason, version
        self.header_list = headers          # [(name, value)] in order
        self.body = body
        self.raw_head = raw_head

    def get(self, name, default=None):
        name = name.lower()
        for k, v in reversed(self.header_list):
            if k.lower() == name:
                return v
        return default

    def get_all(self, name):
        name = name.lower()
        return [v for k, v in self.header_list if k.lower() == name]

    def __repr__(self):
        return "Response(%d %s %r body=%r)" % (self.status, self.reason,
                                               self.header_list, self.body[:200])


class ConnectionClosed(Exception):
    pass


class RawWS:
    def __init__(self, host="127.0.0.1", port=None, timeout=5.0, nodelay=False,
                 rcvbuf=None):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.host, self.port = host, port
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if nodelay:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(timeout)
        self.timeout = timeout
        self.sock.connect((host, port))
        self.buf = bytearray()
        self.closed = False
        _instances.add(self)

    # ---------------------------------------------------------------- raw io
    def send(self, data):
        self.sock.sendall(data)

    def send_quiet(self, data):
        """Send, ignoring errors caused by the server having closed already."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, OSError):
            return False

    def _fill(self, deadline=None):
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("deadline passed")
            self.sock.settimeout(min(self.timeout, left))
        try:
            d = self.sock.recv(262144)
        finally:
            if deadline is not None:
                self.sock.settimeout(self.timeout)
        if not d:
            raise ConnectionClosed("EOF")
        self.buf += d

    def read_exact(self, n, deadline=None):
        while len(self.buf) < n:
            self._fill(deadline)
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_until(self, marker, limit=1 << 20, deadline=None):
        while True:
            i = self.buf.find(marker)
            if i >= 0:
                out = bytes(self.buf[:i + len(marker)])
                del self.buf[:i + len(marker)]
                return out
            if len(self.buf) > limit:
                raise AssertionError("marker not found within %d bytes" % limit)
            self._fill(deadline)

    def read_all_until_eof(self, timeout=5.0):
        """Read until EOF (or reset); returns the bytes. Raises on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._fill(deadline)
            except ConnectionClosed:
                break
            except (ConnectionResetError, ConnectionAbortedError):
                break
        out = bytes(self.buf)
        self.buf.clear()
        return out

    def wait_eof(self, timeout=5.0):
        """True if the server closes the TCP connection within timeout."""
        try:
            self.read_all_until_eof(timeout)
            return True
        except socket.timeout:
            return False

    # ------------------------------------------------------------- http side
    def request_bytes(self, path="/", method="GET", version="HTTP/1.1", key=DEFAULT_KEY,
                      ws_version="13", host=None, headers=None, omit=()):
        """Build an upgrade request; headers: list of (name, value) added at
        the end; omit: lower-case names of default headers to leave out."""
        if host is None:
            host = "%s:%d" % (self.host if ":" not in self.host else "[%s]" % self.host,
                              self.port)
        defaults = [("Host", host), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
                    ("Sec-WebSocket-Key", key), ("Sec-WebSocket-Version", ws_version)]
        lines = ["%s %s %s" % (method, path, version)]
        for k, v in defaults:
            if k.lower() not in omit and v is not None:
                lines.append("%s: %s" % (k, v))
        for k, v in headers or []:
            lines.append("%s: %s" % (k, v))
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def read_response(self, timeout=None, body=True):
        deadline = time.monotonic() + (timeout or self.timeout)
        head = self.read_until(b"\r\n\r\n", limit=65536, deadline=deadline)
        text = head.decode("latin-1")
        lines = text.split("\r\n")
        status_line = lines[0]
        parts = status_line.split(" ", 2)
        assert len(parts) >= 2 and parts[0].startswith("HTTP/"), "bad status line %r" % status_line
        version = parts[0]
        status = int(parts[1])
        reason = parts[2] if len(parts) > 2 else ""
        hdrs = []
        for ln in lines[1:]:
            if not ln:
                continue
            k, _, v = ln.partition(":")
            hdrs.append((k.strip(), v.strip()))
        r = Response(status, reason, version, hdrs, b"", head)
        if body and status != 101:
            cl = r.get("Content-Length")
            if cl is not None and int(cl) > 0:
                r.body = self.read_exact(int(cl), deadline=deadline)
        return r

    def handshake(self, expect=101, **kw):
        self.send(self.request_bytes(**kw))
        r = self.read_response()
        if expect is not None:
            assert r.status == expect, "expected %s, got %r" % (expect, r)
        if r.status == 101:
            key = kw.get("key", DEFAULT_KEY)
            assert r.get("Sec-WebSocket-Accept") == accept_key(key), r
        return r

    # ------------------------------------------------------------ frame side
    def send_frame(self, opcode, payload=b"", **kw):
        self.send(build_frame(opcode, payload, **kw))

    def send_text(self, s, **kw):
        self.send_frame(OP_TEXT, s.encode() if isinstance(s, str) else s, **kw)

    def send_binary(self, b, **kw):
        self.send_frame(OP_BIN, b, **kw)

    def ping(self, payload=b""):
        self.send_frame(OP_PING, payload)

    def send_close(self, code=None, reason=b""):
        self.send_frame(OP_CLOSE, close_payload(code, reason))

    def read_frame(self, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        h = self.read_exact(2, deadline)
        fin = bool(h[0] & 0x80)
        rsv = (h[0] >> 4) & 7
        op = h[0] & 0x0F
        masked = bool(h[1] & 0x80)
        n = h[1] & 0x7F
        if n == 126:
            n = struct.unpack("!H", self.read_exact(2, deadline))[0]
        elif n == 127:
            n = struct.unpack("!Q", self.read_exact(8, deadline))[0]
        key = self.read_exact(4, deadline) if masked else None
        payload = self.read_exact(n, deadline)
        if masked:
            payload = apply_mask(payload, key)
        return Frame(fin, rsv, op, payload, masked)

    def read_message(self, timeout=None, answer_pings=True):
        """Next data message: (opcode, payload). Control frames in between:
        pings are answered; a close frame raises ConnectionClosed with the
        frame as .frame."""
        deadline = time.monotonic() + (timeout or self.timeout)
        op, parts = None, []
        while True:
            f = self.read_frame(timeout=max(0.01, deadline - time.monotonic()))
            assert not f.masked, "server frame is masked: %r" % f
            assert f.rsv == 0, "server frame has RSV bits: %r" % f
            if f.opcode == OP_PING:
                if answer_pings:
                    self.send_frame(OP_PONG, f.payload)
                continue
            if f.opcode == OP_PONG:
                continue
            if f.opcode == OP_CLOSE:
                e = ConnectionClosed("close frame %r" % f)
                e.frame = f
                raise e
            if op is None:
                assert f.opcode in (OP_TEXT, OP_BIN), "unexpected frame %r" % f
                op = f.opcode
            else:
                assert f.opcode == OP_CONT, "unexpected frame inside message %r" % f
            parts.append(f.payload)
            if f.fin:
                return op, b"".join(parts)

    def read_bytes(self, n, timeout=None):
        """Collect data messages until n payload bytes arrived; returns
        (data, [(opcode, payload)])."""
        deadline = time.monotonic() + (timeout or self.timeout)
        msgs, total = [], 0
        while total < n:
            op, p = self.read_message(timeout=max(0.01, deadline - time.monotonic()))
            msgs.append((op, p))
            total += len(p)
        return b"".join(p for _, p in msgs), msgs

    def read_close(self, timeout=None, data=None):
        """Read frames until a close frame; data messages are appended to the
        list `data` if given (else ignored). Returns the close Frame."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            try:
                m = self.read_message(timeout=max(0.01, deadline - time.monotonic()))
            except ConnectionClosed as e:
                if hasattr(e, "frame"):
                    return e.frame
                raise
            if data is not None:
                data.append(m)

    def close(self):
        if not self.closed:
            self.closed = True
            try:
                self.sock.close()
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def close_all():
    for c in list(_instances):
        c.close()


def http_request(host, port, raw, timeout=5.0):
    """Send raw bytes on a fresh connection and return (Response, RawWS)."""
    c = RawWS(host, port, timeout=timeout)
    c.send(raw)
    return c.read_response(), c
