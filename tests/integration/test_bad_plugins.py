"""Plugins that misbehave must cost one connection, never the server:
a framing that claims more bytes than it was given gets the connection
closed with 1011; a backend that answers garbage, fails or never answers
gets an HTTP error (500, or 503 at the handshake deadline) and a log line;
after each, the same server still serves a good request."""
import os

import pytest

from conftest import BIN, REPO
from rawws import OP_BIN, OP_CLOSE, build_frame


def bad_plugin_dir():
    near = os.path.join(os.path.dirname(BIN), "testplugins")
    if os.path.isfile(os.path.join(near, "framing_overrun.so")):
        return near
    return os.path.join(REPO, "build", "testplugins")


def still_serves(srv):
    """A plain GET on the same server still gets a real HTTP answer."""
    c = srv.raw()
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    r = c.read_response(timeout=5)
    c.close()
    assert r.status == 426


def test_framing_overrun_closes_1011(websocksy, peers):
    d = bad_plugin_dir()
    if not os.path.isfile(os.path.join(d, "framing_overrun.so")):
        pytest.skip("build/testplugins not built")
    peer = peers.tcp_echo()
    srv = websocksy("-C", "plugins=" + d, "-c", "host=127.0.0.1",
                    "-c", "port=%d" % peer.port, "-c", "framing=overrun")
    c = srv.ws()
    c.send(build_frame(OP_BIN, b"hello", mask_key=b"\1\2\3\4"))
    f = c.read_frame(timeout=5)
    assert f.opcode == OP_CLOSE
    assert int.from_bytes(f.payload[:2], "big") == 1011
    c.close()
    assert "framing error" in srv.stderr()
    still_serves(srv)


@pytest.mark.parametrize("mode,status", [
    ("badpeer", 500), ("badstatus", 500), ("badframing", 500),
    ("error", 500)])
def test_backend_garbage_gets_http_error(websocksy, mode, status):
    d = bad_plugin_dir()
    if not os.path.isfile(os.path.join(d, "backend_garbage.so")):
        pytest.skip("build/testplugins not built")
    srv = websocksy("-C", "plugins=" + d, "-b", "garbage",
                    "-c", "mode=" + mode)
    c = srv.raw()
    r = c.handshake(expect=None)
    c.close()
    assert r.status == status, r
    still_serves(srv)


def test_backend_that_never_answers_gets_503_in_time(websocksy):
    d = bad_plugin_dir()
    if not os.path.isfile(os.path.join(d, "backend_garbage.so")):
        pytest.skip("build/testplugins not built")
    srv = websocksy("-C", "plugins=" + d, "-b", "garbage", "-c",
                    "mode=silent", "-C", "handshake-timeout=1")
    c = srv.raw()
    r = c.handshake(expect=None)
    c.close()
    assert r.status == 503, r
    still_serves(srv)
