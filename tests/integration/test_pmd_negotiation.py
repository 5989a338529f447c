"""permessage-deflate negotiation (core/pmd.c) against python3-websockets'
own implementation, before the module is wired into the server: our
server's answer to every websockets client offer is accepted by the
websockets client, and every websockets server's answer to our client offer
is accepted by our client check, for the configs we may ship (window bits
8..15, with and without context takeover)."""
import os
import subprocess

import pytest

from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory, ServerPerMessageDeflateFactory)
from websockets.headers import build_extension, parse_extension

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
CFGS = [(12, 5, 0), (15, 8, 0), (10, 4, 1), (15, 8, 1), (8, 8, 1),
        (9, 8, 0)]
CLIENTS = [dict(), dict(client_max_window_bits=True),
           dict(server_max_window_bits=10),
           dict(client_no_context_takeover=True,
                server_no_context_takeover=True),
           dict(client_max_window_bits=9, server_max_window_bits=12)]
SERVERS = [dict(), dict(server_max_window_bits=11),
           dict(client_max_window_bits=10),
           dict(server_no_context_takeover=True),
           dict(client_no_context_takeover=True)]


@pytest.fixture(scope="module")
def negotiate(tmp_path_factory):
    exe = str(tmp_path_factory.mktemp("pmd") / "negotiate")
    subprocess.run([os.environ.get("CC", "cc"), "-std=gnu11", "-Wall",
                    "-Werror", "-I", os.path.join(ROOT, "core"), "-o", exe,
                    os.path.join(ROOT, "tests/integration/pmd/negotiate.c"),
                    os.path.join(ROOT, "core/pmd.c"), "-lz"], check=True,
                   timeout=120)

    def run(*args):
        return subprocess.run([exe, *map(str, args)], capture_output=True,
                              text=True, check=True,
                              timeout=30).stdout.strip()
    return run


@pytest.mark.parametrize("cfg", CFGS)
@pytest.mark.parametrize("kw", CLIENTS)
def test_websockets_client_takes_our_answer(negotiate, cfg, kw):
    factory = ClientPerMessageDeflateFactory(**kw)
    offer = build_extension([(factory.name, factory.get_request_params())])
    answer = negotiate("s", offer, *cfg)
    assert answer != "NONE", offer
    (name, params), = parse_extension(answer)
    assert name == "permessage-deflate"
    factory.process_response_params(params, [])   # raises if refused


@pytest.mark.parametrize("cfg", CFGS)
@pytest.mark.parametrize("kw", SERVERS)
def test_our_client_takes_websockets_answer(negotiate, cfg, kw):
    offer = negotiate("o", *cfg)
    (name, params), = parse_extension(offer)
    factory = ServerPerMessageDeflateFactory(**kw)
    rparams, _ = factory.process_request_params(params, [])
    answer = build_extension([(factory.name, rparams)])
    assert negotiate("c", answer, *cfg).split()[0] == "1", answer


def test_our_client_fails_a_bad_answer(negotiate):
    out = negotiate("c", "permessage-deflate; client_max_window_bits=16",
                    12, 5, 0)
    assert out.startswith("-1 ")
