#!/usr/bin/env python3
"""Seeds for the framing targets (tests/fuzz/fuzz_sim.h layout: byte 0 read
seed, byte 1 buffer size, [config NUL], the peer's byte stream)."""
import json, os, struct, sys
here = os.path.dirname(os.path.abspath(__file__))
root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "corpus")

def put(target, name, data):
    d = os.path.join(root, target); os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed_" + name), "wb") as f: f.write(data)

def sim(target, name, stream, config=None, seeds=((7, 65), (200, 3), (1, 20))):
    for s, b in seeds:   # big buffer, small buffer (flushes), medium
        put(target, f"{name}_{s}_{b}", bytes([s, b]) + (b"" if config is None else config + b"\0") + stream)

text = "Grüße, 世界! 𝄞 ok\n".encode()
sim("framing_auto", "utf8_text", text * 5)
sim("framing_auto", "utf8_split", "€€€€€€€€€€€€€€€€€€€€€€".encode())
sim("framing_auto", "binary", bytes(range(256)))
sim("framing_auto", "bad_utf8", b"abc\xc3\x28def\xed\xa0\x80\xf0\x9f\x98" + b"x" * 40)
sim("framing_auto", "overlong", b"\xc0\xaf\xe0\x80\xaf\xf8\x88\x80\x80\x80ascii")

for cfg, eol in ((b"", b"\r\n"), (b"crlf", b"\r\n"), (b"lf", b"\n"), (b"cr", b"\r"), (b"lfcr", b"\n\r"), (b"bogus", b"\n")):
    sim("framing_newline", f"{cfg.decode() or 'default'}", eol.join([b"line one", b"", b"line two with more words", b"partial"]) + b"\r\n\n\r", cfg)
sim("framing_newline", "long_line", b"a" * 1500 + b"\n" + b"b" * 10 + b"\n", b"lf")
sim("framing_newline", "utf8", text * 4, b"lf")

for cfg, sep in ((b"\\r\\n", b"\r\n"), (b"\\x1e", b"\x1e"), (b"--boundary--", b"--boundary--"), (b"\\x00\\xff", b"\x00\xff"),
                 (b"\\\\", b"\\"), (b"\\n\\n", b"\n\n"), (b"aa", b"aa"), (b"\\t", b"\t")):
    sim("framing_separator", cfg.decode().replace("\\", "_"), sep.join([b"rec1", b"", b"rec 2 longer", b"a" + sep[:1] + b"b"]) + sep + b"tail", cfg)
for bad in (b"", b"\\", b"\\x", b"\\xg0", b"\\q", b"\\x0"):
    sim("framing_separator", "bad" + bad.decode().replace("\\", "_"), b"data\r\ndata", bad, seeds=((7, 65),))

def d32(payloads, little=False):
    return b"".join(struct.pack("<I" if little else ">I", len(p)) + p for p in payloads)
P = [b"abc", b"", b"x" * 300, bytes(range(50)), b"z" * 2000]
for cfg, little in ((b"", False), (b"big", False), (b"little", True), (b"big strip", False), (b"little, keep", True),
                    (b"keep", False), (b"strip,big", False)):
    sim("framing_dynamic32", (cfg.decode() or "default").replace(" ", "_").replace(",", ""), d32(P, little), cfg)
sim("framing_dynamic32", "huge_len", b"\xff\xff\xff\xff" + b"a" * 20, b"")
sim("framing_dynamic32", "bad_cfg", d32(P), b"middle")
sim("framing_dynamic32", "truncated", d32([b"abcdef"])[:7], b"keep")

for cfg in (b"1", b"4", b"188", b"1000", b"16777216", b"0", b"16777217", b"4x", b"", b"-1", b" 4"):
    sim("framing_fixedlength", "n" + cfg.decode().replace(" ", "_"), bytes(i & 0xff for i in range(777)), cfg, seeds=((7, 65), (200, 3)))
ts = bytes([0x47]) + bytes(187)
sim("framing_fixedlength", "mpegts", ts * 5, b"188")

J = [json.dumps({"a": [1, 2.5e-3, -0, True, False, None], "s": "q\"\\\u00e9\ud83d\ude00 \u0041", "o": {"k": {}}}).encode(),
     b"[]", b"{}", b'"str"', b"123", b"-1.5E+10", b"true", b"false", b"null", b'[[[[[[[[[[1]]]]]]]]]]',
     b'{"nested":{"deeper":{"deepest":[{"x":"}]{["}]}}}']
sim("framing_json", "stream", b" \n\t".join(J) + b"\r\n", b"")
sim("framing_json", "ndjson", b"\n".join(J) + b"\n", b"depth=16")
sim("framing_json", "depth2", b'{"a":[1]} [[[1]]] {"b":{"c":{}}}', b"depth=2")
sim("framing_json", "bad_literals", b"tru fals nul 01 1. .5 -x", b"")
sim("framing_json", "bad_strings", b'"\\u12" "\\x" "ctrl\x01" "\xc3\x28" ', b"")
sim("framing_json", "bom", b"\xef\xbb\xbf{}", b"")
sim("framing_json", "unbalanced", b"]}{[ {\"a\":1]", b"")
sim("framing_json", "bad_cfg", b"{}", b"depth=x")
sim("framing_json", "deep", b"[" * 200 + b"]" * 200, b"depth=300")
