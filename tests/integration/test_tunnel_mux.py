"""The server's tunnel option `mux` (or `mux=1`): every connection of a
websocksy-client 'ws;...;mux' is a stream of one WebSocket, carried by the
kcp-mux framing.  `mux=0` (v2ray-plugin's one WebSocket per connection) is
the default, and v2ray-plugin's own Mux.Cool is not spoken.

Chain: local TCP -> websocksy-client -> one WebSocket -> websocksy -o ...
-> TCP echo peer, on loopback; the helpers are test_client_mux's.
"""
import pytest

from conftest import tcp_peer_args
from test_client_mux import client, need_plugin, plugin_dir, run_many, upgrades  # noqa: F401


@pytest.mark.parametrize("mux", ["mux", "mux=1"])
def test_server_tunnel_mux_one_upgrade(websocksy, peers, client, mux):  # noqa: F811
    need_plugin()
    srv = websocksy("-v", "-C", "plugins=" + plugin_dir(),
                    "-o", "ws;host=a;path=/t;" + mux, *tcp_peer_args(peers.tcp_echo()))
    c = client("127.0.0.1:%d" % srv.port, "ws;host=a;path=/t;mux")
    run_many(c, 8, 256 * 1024, srv=srv)
    assert upgrades(srv) == 1, srv.stderr()[-3000:]


def test_server_tunnel_mux0_one_upgrade_per_connection(websocksy, peers, client):  # noqa: F811
    srv = websocksy("-v", "-o", "ws;host=a;path=/t;mux=0",
                    *tcp_peer_args(peers.tcp_echo()))
    c = client("127.0.0.1:%d" % srv.port, "ws;host=a;path=/t")
    run_many(c, 4, 64 * 1024, srv=srv)
    assert upgrades(srv) == 0, srv.stderr()[-3000:]
