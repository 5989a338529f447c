"""Issue 13 part 3 and the papercuts of part 6: what a new user trips on.

auto framing's utf8-hold, the README's examples, the messages of the
client for a URL and a wrong KCP key, the browser close's log level, and
plugins found next to the binary in the build tree."""
import time

from conftest import tcp_peer_args
from rawws import OP_BIN, OP_TEXT


# ------------------------------------------------------ auto and utf8-hold
def test_auto_sends_a_held_incomplete_sequence_after_utf8_hold(websocksy, peers):
    """A peer that sends 00 01 C8 and waits for an answer: the client gets
    all three bytes, as one binary message, well within a second (the
    default utf8-hold is 20 ms), and can answer."""
    peer = peers.tcp_manual()
    srv = websocksy(*tcp_peer_args(peer, "-c", "framing=auto"))
    c = srv.ws()
    rec = peer.wait_conn()
    t0 = time.monotonic()
    rec.sock.sendall(b"\x00\x01\xc8")
    op, p = c.read_message(timeout=5)
    took = time.monotonic() - t0
    assert (op, p) == (OP_BIN, b"\x00\x01\xc8")
    assert took < 1.0, "held %.3f s" % took
    # the connection goes on: text is still text
    rec.sock.sendall("h\u00e9".encode())
    assert c.read_message(timeout=5) == (OP_TEXT, "h\u00e9".encode())


def test_auto_default_framing_does_not_stall(websocksy, peers):
    """The same with auto chosen by default (no framing option)."""
    peer = peers.tcp_manual()
    srv = websocksy(*tcp_peer_args(peer))
    c = srv.ws()
    rec = peer.wait_conn()
    rec.sock.sendall(b"ab\xe2\x82")
    assert c.read_message(timeout=5) == (OP_BIN, b"ab\xe2\x82")


def test_utf8_hold_waits_for_the_end_of_a_sequence(websocksy, peers):
    """Within utf8-hold the end of a split character makes it text, and the
    read that ended in its first bytes goes out with it, as one message."""
    peer = peers.tcp_manual()
    srv = websocksy(*tcp_peer_args(peer, "-C", "utf8-hold=10"))
    c = srv.ws()
    rec = peer.wait_conn()
    rec.sock.sendall(b"ab\xe2\x82")
    time.sleep(0.3)
    rec.sock.sendall(b"\xac")
    assert c.read_message(timeout=5) == (OP_TEXT, "ab\u20ac".encode())


def test_utf8_hold_full_buffer_stays_text(websocksy, peers):
    """A read that fills the buffer and ends inside a character: the text
    goes out as text and the character waits for its end (not the whole
    buffer as binary)."""
    peer = peers.tcp_manual()
    srv = websocksy(*tcp_peer_args(peer, "-C", "buffer-size=1024",
                                   "-C", "utf8-hold=10"))
    c = srv.ws()
    rec = peer.wait_conn()
    want = b"a" * 1023 + "\u20ac".encode() + b"b" * 10
    rec.sock.sendall(want)
    data, msgs = c.read_bytes(len(want), timeout=10)
    assert data == want
    assert all(op == OP_TEXT for op, _ in msgs), [(op, len(p)) for op, p in msgs]


def test_utf8_hold_bad_value_is_refused(websocksy):
    from conftest import run_binary
    rc, out, err = run_binary(["-C", "utf8-hold=forever", "-c", "host=127.0.0.1",
                               "-c", "port=1"])
    assert rc != 0
    assert "utf8-hold" in err, err
