#!/usr/bin/env python3
"""Seeds for fuzz_cfg (first byte: even = INI file, odd = key=value lines)
and fuzz_opts (SIP003 / Kaminari option strings from docs/sip003.md)."""
import glob, os, sys
here = os.path.dirname(os.path.abspath(__file__))
repo = os.path.join(here, "..", "..", "..")
root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "corpus")

def put(target, name, data):
    d = os.path.join(root, target); os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed_" + name), "wb") as f: f.write(data)

for p in ["websocksy.cfg"] + sorted(glob.glob(os.path.join(repo, "config", "**", "*.ini"), recursive=True)):
    p = os.path.join(repo, p)
    name = os.path.relpath(p, repo).replace("/", "_")
    put("cfg", "ini_" + name, b"\0" + open(p, "rb").read())
put("cfg", "ini_tls", b"\0" + b"""[core]
port = 0
log-level = debug
origin = https://a.example, https://b.example
poller = poll
[tls]
tls-port = 8443
tls-cert = a.pem
tls-key = a.key
tls-cert = b.pem
tls-key = b.key
tls-priority = NORMAL:-VERS-TLS1.0
tls-client-verify = optional
tls-only = yes
tls-handshake-timeout = 2.5
[kcp]
kcp-listen = 127.0.0.1:4000
kcp-psk = 00112233445566778899aabbccddeeff
kcp-mtu = 1350
kcp-window = 256
kcp-session-timeout = 60
kcp-allow-move = true
[backend]
host = tcp://[::1]:22
framing = json
framing-config = depth=8
[unknown]
x = y
""")
put("cfg", "ini_errors", b"\0" + b"""[core]
port = 70000
buffer-size = 12
max-headers = 999
ping = -1
ping = 1.0005
log-level = loud
tls-cert = 1
tls-cert = 2
tls-cert = 3
tls-cert = 4
tls-cert = 5
tls-cert = 6
tls-cert = 7
tls-cert = 8
tls-cert = 9
noequals
= novalue
[core
""")
put("cfg", "set_all", b"\x01" + b"\n".join(l.encode() for l in [
    "port=8080", "listen=127.0.0.1", "backend=file", "origin=https://x,https://y", "origin=",
    "ping=0.5", "ping=86400", "ping=1e3", "max-connections=1", "buffer-size=1024",
    "max-request-line=64", "max-header-bytes=256", "max-headers=8", "handshake-timeout=0.1",
    "linger=0", "send-timeout=86400", "max-datagram=1048576", "max-streams=65536",
    "buffer-pool=17179869184", "ws-host=h", "ws-path=/p", "poller=epoll", "utf8-hold=60",
    "log-level=warn", "tls-port=443", "tls-cert=c", "tls-key=k", "tls-only=no",
    "tls-client-verify=require", "kcp-mtu=256", "kcp-window=65535", "kcp-replay-cache=1024",
    "kcp-allow-move=1", "nosuchkey=1"]))
put("cfg", "set_bad", b"\x01" + b"port=abc\nping=1.2.3\nping=99999999999999999999\nmax-streams=0\nlog-level=\nbuffer-size=-5\nping= 5\nping=5s\npoller=kqueue\ntls-only=maybe")

opts = [
    "server;host=example.com;path=/ws", "ws;host=example.com;path=/ws",
    "server;tls;cert=/etc/ssl/example.com/fullchain.pem;key=/etc/ssl/example.com/privkey.pem;host=example.com;path=/ws",
    "ws;tls;sni=example.com;host=example.com;path=/ws", "server;tls;servername=example.com;host=example.com;path=/ws",
    "ws;tls;sni=example.com;pin=AB:CD:EF:01;host=example.com;path=/ws",
    "mux=0;host=example.com;path=/ws", "server;host=example.com;path=/ws;loglevel=warning",
    "ws;tls;sni=example.com;host=example.com;path=/ws;mask=skip", "ws;host=localhost;path=/;mux",
    "ws;host=localhost;path=/ws;tls;sni=localhost;ca=tests/certs/ca.pem",
    "ws;tls;host=example.com;sni=example.com;path=/ws?ed\\=2048", "kcp;psk=KEY", "kcp;mux=0",
    "ws;mask=none", "ws;mask=random;ping=0;timeout=0", "ws;mask=fixed", "ws;tls;insecure;0rtt;alpn=http/1.1",
    "ws;ping=99999999999;timeout=-1", "ws;host=;path=", "ws;tls;pin=zz", "ws\\;x=1\\\\;y",
    "=v", ";", "ws;;", "a=b\\", "tls;alpn=h2,http/1.1;pin=ab\\q",
]
for i, s in enumerate(opts):
    put("opts", f"{i:02d}", s.encode())
