#!/usr/bin/python3
"""demo/peer.py - the websocksy demo peer: a tiny TCP line service.

Listens on 127.0.0.1:8002 (or the port given as the only argument).  For
every line a client sends it answers exactly one line:

    help   the list of commands
    time   the server's local time
    quit   "bye", then the server closes the connection
    other  the line upper-cased, prefixed with the line's number on this
           connection ("3: HELLO")

Lines end with LF; a CR before it is ignored.  Answers end with LF.
Standard library only; one thread, selectors; exits 0 on SIGINT/SIGTERM.
"""

import os
import selectors
import signal
import socket
import sys
import time

HOST = "127.0.0.1"
DEFAULT_PORT = 8002
MAX_LINE = 64 * 1024          # a longer line is answered with an error
MAX_OUT = 1024 * 1024         # stop reading a client that does not read

HELP = "commands: help, time, quit; any other line comes back upper-cased"


class Stop(Exception):
    """Raised from the signal handler to leave the loop."""


def log(msg):
    sys.stderr.write("peer.py[%d]: %s\n" % (os.getpid(), msg))
    sys.stderr.flush()


class Client:
    def __init__(self, sock, addr):
        self.sock = sock
        self.addr = "%s:%d" % addr[:2]
        self.inbuf = b""
        self.outbuf = b""
        self.count = 0
        self.closing = False      # close once outbuf is written

    def answer(self, line):
        """The one-line answer to line (bytes, without its line ending)."""
        self.count += 1
        text = line.decode("utf-8", "replace")
        cmd = text.strip().lower()
        if cmd == "help":
            return HELP
        if cmd == "time":
            return time.strftime("%Y-%m-%d %H:%M:%S %z")
        if cmd == "quit":
            self.closing = True
            return "bye"
        if cmd == "":
            return "%d: (empty line; try help)" % self.count
        return "%d: %s" % (self.count, text.upper())

    def feed(self, data):
        self.inbuf += data
        while not self.closing:
            nl = self.inbuf.find(b"\n")
            if nl < 0:
                break
            line, self.inbuf = self.inbuf[:nl], self.inbuf[nl + 1:]
            if line.endswith(b"\r"):
                line = line[:-1]
            self.outbuf += self.answer(line).encode("utf-8") + b"\n"
        if len(self.inbuf) > MAX_LINE:
            self.inbuf = b""
            self.outbuf += b"error: line longer than %d bytes dropped\n" % MAX_LINE


class Server:
    def __init__(self, port):
        self.sel = selectors.DefaultSelector()
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((HOST, port))
        self.lsock.listen(128)
        self.lsock.setblocking(False)
        self.sel.register(self.lsock, selectors.EVENT_READ, None)
        self.clients = {}

    def update(self, c):
        ev = 0
        if not c.closing and len(c.outbuf) < MAX_OUT:
            ev |= selectors.EVENT_READ
        if c.outbuf:
            ev |= selectors.EVENT_WRITE
        if ev == 0:
            self.drop(c)
        else:
            self.sel.modify(c.sock, ev, c)

    def drop(self, c):
        self.sel.unregister(c.sock)
        c.sock.close()
        del self.clients[c.sock]
        log("%s: closed" % c.addr)

    def accept(self):
        try:
            sock, addr = self.lsock.accept()
        except (BlockingIOError, InterruptedError):
            return
        sock.setblocking(False)
        c = Client(sock, addr)
        self.clients[sock] = c
        self.sel.register(sock, selectors.EVENT_READ, c)
        log("%s: connected" % c.addr)

    def readable(self, c):
        try:
            data = c.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            # EOF: a last line without LF still gets its answer.
            if c.inbuf and not c.closing:
                c.feed(b"\n")
            c.closing = True
        else:
            c.feed(data)
        self.update(c)

    def writable(self, c):
        try:
            n = c.sock.send(c.outbuf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.drop(c)
            return
        c.outbuf = c.outbuf[n:]
        if not c.outbuf and c.closing:
            self.drop(c)
        else:
            self.update(c)

    def run(self):
        while True:
            for key, mask in self.sel.select():
                c = key.data
                if c is None:
                    self.accept()
                    continue
                if c.sock not in self.clients:
                    continue
                if mask & selectors.EVENT_WRITE:
                    self.writable(c)
                if c.sock in self.clients and mask & selectors.EVENT_READ:
                    self.readable(c)

    def close(self):
        for c in list(self.clients.values()):
            self.drop(c)
        self.sel.unregister(self.lsock)
        self.lsock.close()
        self.sel.close()


def on_signal(signum, frame):
    raise Stop()


def main(argv):
    if len(argv) > 2 or (len(argv) == 2 and argv[1] in ("-h", "--help")):
        sys.stderr.write("usage: %s [PORT]\n" % argv[0])
        return 0 if len(argv) == 2 else 2
    port = DEFAULT_PORT
    if len(argv) == 2:
        try:
            port = int(argv[1])
            if not 0 < port < 65536:
                raise ValueError
        except ValueError:
            sys.stderr.write("%s: bad port %r\n" % (argv[0], argv[1]))
            return 2
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        srv = Server(port)
    except OSError as e:
        log("cannot listen on %s:%d: %s" % (HOST, port, e.strerror))
        return 1
    log("listening on %s:%d" % (HOST, port))
    try:
        srv.run()
    except Stop:
        pass
    srv.close()
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
