#!/usr/bin/env python3
"""Seeds for fuzz_file (template, endpoint, outlen, nh, headers, protocols,
route file, NUL-separated; route files from config/file-backend/routes and
docs/backends.md), fuzz_psk (mode, clock, payload) and fuzz_utf8."""
import glob, os, struct, sys
here = os.path.dirname(os.path.abspath(__file__))
repo = os.path.join(here, "..", "..", "..")
root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "corpus")

def put(target, name, data):
    d = os.path.join(root, target); os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed_" + name), "wb") as f: f.write(data)

def fb(tmpl, endpoint, headers, protos, text, outlen=255):
    f = [tmpl.encode(), endpoint.encode(), bytes([outlen]), bytes([len(headers)])]
    for k, v in headers:
        f += [k.encode(), v.encode()]
    return b"\0".join(f + [protos.encode(), text])

routes = {os.path.basename(p): open(p, "rb").read() for p in sorted(glob.glob(os.path.join(repo, "config/file-backend/routes/*")))}
doc = b"tcp://127.0.0.1:5900   binary   binary\ntcp://127.0.0.1:5901   base64\ntcp://127.0.0.1:5901   *\n"
mixed = (b"# comment\n\n  # indented\r\nudp://127.0.0.1:53 dns\nunix:///run/s.sock chat json depth=4  \n"
         b"unix-dgram:///run/d.sock dg separator \\r\\n\n[::1]:5900 vnc binary\nbadpeer\n127.0.0.1 x\n"
         b"tcp://h:1 p fixedlength 188\t\n\ttcp://h:2\t*\tnewline\tlf\r\n")
H = [("Cookie", 'route=demo; sess="abc"; x=1'), ("X-Site", "acme"), ("Host", "example.com")]
put("file", "endpoint_demo", fb("%endpoint%", "demo", H, "chat,json", routes.get("demo", doc)))
put("file", "cookie_route", fb("%cookie:route%", "x", H, "binary", routes.get("binary", doc)))
put("file", "header_subdir", fb("by-host/%header:X-Site%", "", H, "", routes.get("default", doc)))
put("file", "literal", fb("default", "a", [], "base64,binary", doc))
put("file", "percent", fb("%%%endpoint%%%.r", "chat", [], "base64", doc, 8))
put("file", "mixed", fb("routes/%endpoint%/%cookie:sess%", "chat", H, "dg,chat,vnc,p", mixed))
put("file", "traversal", fb("%endpoint%", "..", [("Cookie", "a=../x; b=.hidden")], "x", mixed))
put("file", "traversal2", fb("%cookie:a%/%cookie:b%", "a/b", [("Cookie", "a=..; b=\x01")], "*", doc))
put("file", "abs", fb("/%endpoint%", "etc", [], "", doc))
put("file", "unknown_var", fb("%query%%cookie%%header:%%", "e", H, "", doc))
put("file", "long_value", fb("%header:X-Long%", "e", [("X-Long", "v" * 250)], "", doc))
put("file", "many_headers", fb("%header:h7%", "e", [(f"h{i}", f"v{i}") for i in range(8)], "a,b,c,d,e,f,g,h,i", doc))
put("file", "cookies_odd", fb("%cookie:s%", "e", [("cookie", 's=""'), ("Cookie", 's="a'), ("Cookie", "=;;s=b")], "", doc))

KEY_B64 = b"d2Vic29ja3N5IGZ1enoga2V5LCAzMiBieXRlcy4uLgA="
for i, (mode, now, payload) in enumerate([
        (0x00, 1700000000000, b""), (0x01, 1700000000000, b"\x00" * 16), (0x3f, 2, seg := bytes(range(24)) + b"kcp"),
        (0x20, 1700000000000, b"tamper me" * 4), (0x40, 1700000000000, b"15 s skew"), (0x80, 1700000000000, b"30 s"),
        (0xc0, 1700000000000, b"45 s: too far"), (0x07, 0, KEY_B64), (0x07, 0, KEY_B64[:-1] + b"A"),
        (0x07, 0, b"not base64!"), (0x07, 0, b"QUJD"), (0x10, 0xffffffffffffffff, b"x" * 1400),
        (0x05, 1700000000000, bytes(12) + bytes(16) + b"forged")]):
    put("psk", f"{i:02d}", bytes([mode]) + struct.pack(">Q", (now << 1) & 0xffffffffffffffff) + payload)

for name, s in {"ascii": b"hello world", "two": "é ñ ß".encode(), "three": "€ 世界 \ufffd".encode(),
                "four": "𝄞 😀 \U0010ffff".encode(), "mixed": "aé€𝄞".encode() * 8,
                "surrogate": b"\xed\xa0\x80\xed\xbf\xbf", "overlong": b"\xc0\x80\xe0\x80\x80\xf0\x80\x80\x80",
                "too_big": b"\xf4\x90\x80\x80\xf5\x80\x80\x80", "truncated": "€".encode()[:2] + b"a" + "𝄞".encode()[:3],
                "lone_cont": b"\x80\xbf", "nul": b"a\x00b", "max3": b"\xef\xbf\xbf\xee\x80\x80"}.items():
    put("utf8", name, s)
