#!/usr/bin/env python3
"""Seeds for fuzz_http and fuzz_ws: real upgrade requests and RFC 6455 frames."""
import os, struct, sys
root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "corpus")

def put(target, name, data):
    d = os.path.join(root, target); os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed_" + name), "wb") as f: f.write(data)

def req(path, hdrs, method="GET", ver="HTTP/1.1", eol="\r\n"):
    s = f"{method} {path} {ver}{eol}" + "".join(f"{k}: {v}{eol}" for k, v in hdrs) + eol
    return s.encode()

base = [("Host", "example.com:8080"), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13")]
put("http", "rfc6455", req("/chat", base))
put("http", "origin_proto", req("/ws?token=a%20b", base + [("Origin", "https://example.com"),
    ("Sec-WebSocket-Protocol", "chat, superchat"), ("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits")]))
put("http", "wss_proxy", req("/%2Fescaped%41%zz/path+x", [("Host", "[::1]:443"), ("upgrade", "WebSocket"),
    ("connection", "keep-alive, Upgrade"), ("sec-websocket-key", "x3JJHMbDL1EzLkh9GBhXDw=="),
    ("sec-websocket-version", "13"), ("X-Forwarded-For", "10.0.0.1, 10.0.0.2"), ("X-Forwarded-Proto", "https"),
    ("User-Agent", "Mozilla/5.0"), ("Cookie", "a=b; c=d")]))
put("http", "bad_version", req("/", base[:3] + [("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "8")]))
put("http", "http10", req("/", [("Host", "h")], ver="HTTP/1.0"))
put("http", "http2", req("/", [("Host", "h")], ver="HTTP/2.0"))
put("http", "post", req("/up", [("Host", "h"), ("Content-Length", "5")], method="POST") + b"hello")
put("http", "lf_only", req("/", base, eol="\n"))
put("http", "folded", b"GET / HTTP/1.1\r\nHost: h\r\nX-Long: a\r\n  continued\r\nUpgrade: websocket\r\n\r\n")
put("http", "dup_key", req("/", base + [("Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAAAA==")]))
put("http", "short_key", req("/", base[:3] + [("Sec-WebSocket-Key", "c2hvcnQ="), ("Sec-WebSocket-Version", "13")]))
put("http", "pipelined", req("/", base) + b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58")
put("http", "many_headers", req("/", base + [(f"X-H{i}", "v" * i) for i in range(20)]))
put("http", "long_line", req("/" + "a" * 300, base))
put("http", "space_in_name", b"GET / HTTP/1.1\r\nHost : h\r\nBad Name: x\r\n\r\n")
put("http", "empty_value", req("/", [("Host", ""), ("Upgrade", ""), ("Connection", "")]))
put("http", "nul", b"GET /\x00 HTTP/1.1\r\nHost: h\x00\r\n\r\n")

def frame(op, payload, fin=True, mask=None, rsv=0, forcelen=None):
    b0 = (0x80 if fin else 0) | rsv | op
    n = len(payload) if forcelen is None else forcelen
    mb = 0x80 if mask is not None else 0
    if n < 126: h = bytes([b0, mb | n])
    elif n < 65536: h = bytes([b0, mb | 126]) + struct.pack(">H", n)
    else: h = bytes([b0, mb | 127]) + struct.pack(">Q", n)
    if mask is not None:
        h += mask; payload = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
    return h + payload
M = b"\x37\xfa\x21\x3d"
put("ws", "text_masked", frame(1, b"Hello", mask=M))
put("ws", "text_unmasked", frame(1, b"Hello"))
put("ws", "binary_126", frame(2, bytes(range(256)) * 2, mask=M))
put("ws", "binary_127", frame(2, b"x" * 70000, mask=b"\0\0\0\0", forcelen=70000)[:14] + b"x" * 200)
put("ws", "fragmented_masked", frame(1, b"Hel", fin=False, mask=M) + frame(9, b"hi", mask=M) + frame(0, b"lo", mask=M))
put("ws", "fragmented_unmasked", frame(2, b"ab", fin=False) + frame(0, b"cd", fin=False) + frame(0, b"ef"))
put("ws", "ping_pong", frame(9, b"ping", mask=M) + frame(10, b"pong", mask=M) + frame(10, b"") )
put("ws", "close_code", frame(8, b"\x03\xe8bye", mask=M) )
put("ws", "close_empty", frame(8, b"", mask=M))
put("ws", "close_1byte", frame(8, b"\x03", mask=M))
put("ws", "close_badcode", frame(8, b"\x03\xedx", mask=M) + frame(8, b"\x0b\xb8", mask=M))
put("ws", "close_badutf8", frame(8, b"\x03\xe8\xc3\x28", mask=M))
put("ws", "ctrl_too_long", frame(9, b"p" * 126, mask=M))
put("ws", "ctrl_fragmented", frame(9, b"p", fin=False, mask=M))
put("ws", "rsv_bits", frame(1, b"x", rsv=0x40, mask=M))
put("ws", "bad_opcode", frame(3, b"x", mask=M) + frame(11, b"", mask=M))
put("ws", "cont_first", frame(0, b"x", mask=M))
put("ws", "text_during_frag", frame(1, b"a", fin=False, mask=M) + frame(1, b"b", mask=M))
put("ws", "utf8_multi", frame(1, "héllo wörld €𝄞".encode(), mask=M))
put("ws", "utf8_split", frame(1, "€".encode()[:2], fin=False, mask=M) + frame(0, "€".encode()[2:], mask=M))
put("ws", "utf8_bad", frame(1, b"\xed\xa0\x80\xf4\x90\x80\x80", mask=M))
put("ws", "nonminimal_len", bytes([0x82, 0xfe, 0, 5]) + M + b"hello")
put("ws", "len64_highbit", bytes([0x82, 0xff]) + b"\x80" + b"\0" * 7 + M)
put("ws", "many_small", b"".join(frame(2, bytes([i]), mask=M) for i in range(30)))
