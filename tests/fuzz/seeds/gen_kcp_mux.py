#!/usr/bin/env python3
"""Seeds for fuzz_kcp (captured kcp-go datagrams, /work/shared/kcp-vectors.md,
copied below) and fuzz_mux (KCP-mux frames per docs/KCP-MUX.md)."""
import os, re, struct, sys
here = os.path.dirname(os.path.abspath(__file__))
root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "corpus")

def put(target, name, data):
    d = os.path.join(root, target); os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed_" + name), "wb") as f: f.write(data)

def seg(conv, cmd, frg=0, wnd=32, ts=0, sn=0, una=0, data=b""):
    return struct.pack("<IBBHIIII", conv, cmd, frg, wnd, ts, sn, una, len(data)) + data

C = 0x01020304
V = {  # the captured vectors, rebuilt field by field (they match the hex dumps)
 "v1_push": [seg(C, 81, sn=0, data=bytes(range(64)))],
 "v2_ack": [seg(C, 82, sn=0, una=1)],
 "v3_ack_push": [seg(C, 82, ts=504, una=1) + seg(C, 81, ts=1, sn=1, una=1, data=bytes(range(1, 65)))],
 "v4_msg_pushes": [b"".join(seg(C, 81, ts=10, sn=i, data=bytes([i]) * 100) for i in range(4))],
 "v5_stream_full": [seg(C, 81, ts=20, sn=0, data=bytes(i & 0xff for i in range(1376)))],
 "v6_zero_wnd": [seg(C, 82, wnd=0, ts=30, sn=5, una=6)],
 "v7_wask": [seg(C, 83)],
 "v8_wins": [seg(C, 84, wnd=32)],
 "v10_acks": [b"".join(seg(C, 82, ts=100 + i, sn=s, una=2) for i, s in enumerate([3, 5, 4, 7, 6, 2]))],
 "msgmode_frags": [seg(0x11223344, 81, frg=2, ts=52, sn=0, data=bytes(range(0, 40))),
                   seg(0x11223344, 81, frg=1, ts=52, sn=1, data=bytes(range(40, 80))),
                   seg(0x11223344, 81, frg=0, ts=52, sn=2, data=bytes(range(80, 100))),
                   seg(0x11223344, 82, ts=52, sn=2, una=3)],
 "probe": [seg(0x99aabbcc, 83), seg(0x99aabbcc, 84, wnd=0, una=2)],
 "out_of_order": [seg(C, 81, sn=2, data=b"c" * 10), seg(C, 81, sn=0, data=b"a" * 10),
                  seg(C, 81, sn=1, data=b"b" * 10), seg(C, 81, sn=1, data=b"b" * 10)],
 "far_future_sn": [seg(C, 81, sn=5000, data=b"x"), seg(C, 81, sn=0xffffffff, data=b"y")],
 "wrong_conv": [seg(C, 81, data=b"x") + seg(C + 1, 81, sn=1, data=b"y")],
 "bad_cmd_len": [seg(C, 99), struct.pack("<IBBHIIII", C, 81, 0, 32, 0, 0, 0, 1000) + b"short"],
 "truncated": [seg(C, 81, data=b"abc")[:20]],
}
for name, dgrams in V.items():
    for flags in (0x00, 0x01, 0x1b, 0x86):   # message/stream, small wnd, small mtu, nodelay...
        b = bytes([flags])
        for i, d in enumerate(dgrams):
            b += bytes([3 + i * 5]) + struct.pack(">H", len(d)) + d
        put("kcp", f"{name}_{flags:02x}", b)

# ---- mux ----
DATA, HEADERS, SETTINGS, PING, GOAWAY, WUPD = 0, 1, 4, 6, 7, 8
def fr(t, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([t, flags]) + struct.pack(">I", sid) + payload
settings = fr(SETTINGS, 0, 0, struct.pack(">HIHIHI", 3, 100, 4, 262144, 5, 16384))
frames = {
 "server_open": [settings, fr(HEADERS, 0, 1), fr(DATA, 0, 1, b"hello"), fr(DATA, 1, 1)],
 "server_open_uri": [fr(SETTINGS, 0, 0), fr(HEADERS, 0, 1, b"tcp://127.0.0.1:22"), fr(DATA, 1, 1, b"bye")],
 "client_synack": [settings, fr(SETTINGS, 1, 0), fr(HEADERS, 0, 1), fr(DATA, 0, 1, b"x" * 100), fr(WUPD, 0, 1, struct.pack(">I", 65536))],
 "ping_goaway": [settings, fr(PING, 0, 0, b"12345678"), fr(PING, 1, 0, b"12345678"),
                 fr(GOAWAY, 0, 0, struct.pack(">II", 1, 0) + b"going away")],
 "rst": [settings, fr(HEADERS, 0, 1), fr(HEADERS, 1, 1, b"refused"), fr(DATA, 0, 1, b"late")],
 "wrong_parity": [settings, fr(HEADERS, 0, 2), fr(DATA, 0, 4, b"x")],
 "too_long": [settings, struct.pack(">I", 70000)[1:] + bytes([DATA, 0]) + struct.pack(">I", 1)],
 "window_overflow": [settings, fr(HEADERS, 0, 1), fr(WUPD, 0, 1, b"\x7f\xff\xff\xff"), fr(WUPD, 0, 0, b"\x7f\xff\xff\xff")],
 "unknown_type": [settings, fr(0x42, 0xff, 0, b"junk"), fr(0x5, 0, 1)],
 "empty_settings_many": [fr(SETTINGS, 0, 0)] + [fr(HEADERS, 0, i) for i in range(1, 12, 2)] + [fr(DATA, 0, 3, b"z" * 50)],
 "bad_settings": [fr(SETTINGS, 0, 0, b"\x00\x05\x00\x01\x00\x00\x00\x04\x80\x00\x00\x00\x00")],
}
for name, fs in frames.items():
    for flags in (0x00, 0x01, 0x0a, 0x51):      # client/server, no window, small max_frame...
        ops = b""
        for f in fs:
            while f:
                c, f = f[:100], f[100:]
                ops += bytes([len(c) - 1]) + c
        ops += bytes([0x80 | 8, 0x81 | 8, 0x82, 0x83 | 16, 0x85 | 16, 0x84 | 8, 0x87, 0x86, 0x87 | 8])
        put("mux", f"{name}_{flags:02x}", bytes([flags]) + ops)
