"""The `poller` key (issue 12): epoll by default on Linux, poll on request,
both in the server ([core] poller, -C poller=) and the client (poller=);
a bad value is refused with file:line; many idle connections beside a
busy one work with either poller.

`make test-poll` reruns the loop-sensitive tests with WEBSOCKSY_POLLER=poll.
"""
import os
import re
import socket
import subprocess
import threading

import pytest

from conftest import REPO, free_port, run_binary, tcp_peer_args, wait_for
from rawws import OP_TEXT, RawWS

CLIENT_BIN = os.path.abspath(os.environ.get(
    "WEBSOCKSY_CLIENT_BIN", os.path.join(REPO, "build", "websocksy-client")))


def echo_ok(host, port, text="ping?"):
    try:
        c = RawWS(host, port)
    except OSError:
        return False
    try:
        c.handshake()
        c.send_text(text)
        return c.read_message() == (OP_TEXT, text.encode())
    finally:
        c.close()


def env_without_poller():
    env = dict(os.environ)
    env.pop("WEBSOCKSY_POLLER", None)
    return env


@pytest.mark.parametrize("poller", ["epoll", "poll"])
def test_server_poller_key(websocksy, peers, poller):
    peer = peers.tcp_echo()
    srv = websocksy("-C", "poller=" + poller, *tcp_peer_args(peer))
    assert echo_ok("127.0.0.1", srv.port)
    assert re.search(r"info: poller: %s$" % poller, srv.stderr(), re.M), srv.stderr()


def test_server_poller_ini(websocksy, peers):
    peer = peers.tcp_echo()
    srv = websocksy(ini="[core]\nport = {port}\npoller = poll\n[backend]\nhost = 127.0.0.1\n"
                        "port = %d\n" % peer.port)
    assert echo_ok("127.0.0.1", srv.port)
    assert "poller: poll" in srv.stderr()


def test_server_default_is_epoll(tmp_path, peers):
    """Without the key or the variable, Linux builds use epoll."""
    peer = peers.tcp_echo()
    port = free_port()
    p = subprocess.Popen([os.path.join(REPO, "build", "websocksy") if "WEBSOCKSY_BIN" not in os.environ
                          else os.environ["WEBSOCKSY_BIN"], "-p", str(port)] + tcp_peer_args(peer),
                         stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env_without_poller())
    try:
        assert wait_for(lambda: echo_ok("127.0.0.1", port), timeout=10)
    finally:
        p.terminate()
        err = p.communicate(timeout=15)[1].decode()
    assert "poller: epoll" in err, err


def test_bad_poller_names_file_and_line(tmp_path):
    path = tmp_path / "bad.ini"
    path.write_text("[core]\nport = 1\npoller = select\n")
    rc, out, err = run_binary([str(path)], cwd=str(tmp_path))
    assert rc != 0
    assert "%s:3: poller: 'select' is not auto, epoll or poll" % path in err, err


def test_client_poller_option(websocksy, peers, tmp_path):
    peer = peers.tcp_echo()
    srv = websocksy(*tcp_peer_args(peer))
    lport = free_port()
    log = open(tmp_path / "client.log", "wb")
    p = subprocess.Popen([CLIENT_BIN, "-v", "127.0.0.1:%d" % lport, "127.0.0.1:%d" % srv.port,
                          "ws;host=127.0.0.1;path=/;poller=poll"], stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                         env=env_without_poller())
    try:
        def through():
            try:
                s = socket.create_connection(("127.0.0.1", lport), timeout=5)
            except OSError:
                return False
            with s:
                s.sendall(b"hello")
                return s.recv(5) == b"hello"
        assert wait_for(through, timeout=10)
    finally:
        p.terminate()
        p.wait(timeout=15)
        log.close()
    text = (tmp_path / "client.log").read_text()
    assert "poller: poll" in text, text


def test_client_bad_poller_refused(tmp_path):
    r = subprocess.run([CLIENT_BIN, "127.0.0.1:%d" % free_port(), "127.0.0.1:1", "ws;host=a;path=/;poller=kqueue"],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
    assert r.returncode != 0
    assert b"poller=kqueue" in r.stderr, r.stderr


IDLE = 600


@pytest.mark.parametrize("poller", ["epoll", "poll"])
def test_busy_beside_idle(websocksy, peers, poller):
    """600 upgraded, idle connections and a 4 MiB echo through another:
    the busy one gets every byte back in order and the idle ones all stay
    open and still answer afterwards."""
    peer = peers.tcp_echo()
    srv = websocksy("-C", "poller=" + poller, "-C", "max-connections=2000", *tcp_peer_args(peer))
    idle = []
    try:
        for _ in range(IDLE):
            c = srv.ws()
            idle.append(c)
        busy = srv.ws()
        data = os.urandom(4 << 20)
        got = {}

        def reader():
            got["data"] = busy.read_bytes(len(data), timeout=60)[0]
        t = threading.Thread(target=reader, daemon=True)
        t.start()
        for i in range(0, len(data), 65536):
            busy.send_binary(data[i:i + 65536])
        t.join(90)
        assert got.get("data") == data
        for c in idle[::50]:
            c.send_binary(b"ping")
            assert c.read_bytes(4, timeout=10)[0] == b"ping"
    finally:
        for c in idle:
            c.close()
