#!/usr/bin/env python3
"""Example resolver for websocksy's unix backend (protocol: docs/backends.md).

usage: resolver.py SOCKET ENDPOINT=PEER...
  e.g. resolver.py /tmp/wsy.sock /echo=tcp://127.0.0.1:7000 /vnc=127.0.0.1:5900
An endpoint without a route gets 404.  Stdlib only; one thread per query."""
import os, socketserver, sys

ROUTES = dict(a.split("=", 1) for a in sys.argv[2:])


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        req = {}                        # key -> [values]; ends at an empty line
        for line in self.rfile:
            key, _, value = line.decode("utf-8", "replace").rstrip("\n").partition(" ")
            if not key:
                break
            req.setdefault(key, []).append(value)
        peer = ROUTES.get(req.get("endpoint", [""])[0])
        if peer and "://" not in peer:
            peer = "tcp://" + peer
        self.wfile.write(("peer %s\n" % peer if peer else "status 404\n").encode())


if os.path.exists(sys.argv[1]):
    os.unlink(sys.argv[1])
with socketserver.ThreadingUnixStreamServer(sys.argv[1], Handler) as srv:
    srv.serve_forever()
