"""permessage-deflate (RFC 7692): negotiation rules, the codec (context takeover, window bits,
decompression bombs), and compressed WebSockets against the websockets library."""

from __future__ import annotations

import os
import tracemalloc
import zlib

import pytest
from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.frames import Opcode
from websockets.uri import parse_uri

from ws2fast import Config, H1Connection
from ws2fast.deflate import (
    DeflateParameters,
    ExtensionError,
    MessageTooBig,
    PerMessageDeflate,
    client_accept,
    client_offer,
    parse_extensions,
    server_negotiate,
)
from ws2fast.events import TextMessage, WebSocketClosed

# -- negotiation ------------------------------------------------------------------------------


def test_parse_extensions_splits_offers_and_unquotes():
    assert parse_extensions([('permessage-deflate; client_max_window_bits, permessage-deflate; '
                              'server_max_window_bits="10"'), "x-other"]) == [
        ("permessage-deflate", [("client_max_window_bits", None)]),
        ("permessage-deflate", [("server_max_window_bits", "10")]),
        ("x-other", []),
    ]


@pytest.mark.parametrize("offer, response, params", [
    ("permessage-deflate", "permessage-deflate", DeflateParameters()),
    ("permessage-deflate; client_max_window_bits", "permessage-deflate", DeflateParameters()),
    ("permessage-deflate; client_max_window_bits=10", "permessage-deflate",
     DeflateParameters(remote_max_window_bits=10)),
    ("permessage-deflate; server_max_window_bits=12", "permessage-deflate; server_max_window_bits=12",
     DeflateParameters(local_max_window_bits=12)),
    ("permessage-deflate; server_no_context_takeover", "permessage-deflate; server_no_context_takeover",
     DeflateParameters(local_no_context_takeover=True)),
    ("permessage-deflate; client_no_context_takeover", "permessage-deflate; client_no_context_takeover",
     DeflateParameters(remote_no_context_takeover=True)),
    # Chromium's offer
    ("permessage-deflate; client_max_window_bits", "permessage-deflate", DeflateParameters()),
])
def test_server_accepts_valid_offers(offer, response, params):
    assert server_negotiate([offer]) == (response, params)


@pytest.mark.parametrize("offer", [
    "permessage-deflate; server_max_window_bits",            # needs a value
    "permessage-deflate; server_max_window_bits=16",
    "permessage-deflate; server_max_window_bits=7",
    "permessage-deflate; client_max_window_bits=0",
    "permessage-deflate; server_no_context_takeover=1",
    "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
    "permessage-deflate; unknown_parameter",
    "permessage-deflate; server_max_window_bits=8",          # zlib cannot compress with 8 bits
    "x-webkit-deflate-frame",
])
def test_server_declines_invalid_or_unsupported_offers(offer):
    assert server_negotiate([offer]) is None


def test_server_takes_the_first_acceptable_of_several_offers():
    offers = ["permessage-deflate; bogus, permessage-deflate; server_max_window_bits=11, permessage-deflate"]
    assert server_negotiate(offers)[0] == "permessage-deflate; server_max_window_bits=11"


def test_client_checks_the_response():
    offer = client_offer()
    assert offer == "permessage-deflate; client_max_window_bits"
    assert client_accept(["permessage-deflate; client_max_window_bits=12"], offer) == DeflateParameters(
        local_max_window_bits=12)
    assert client_accept([], offer) is None
    for bad in ("permessage-deflate; client_max_window_bits", "permessage-deflate; bogus",
                "x-other", "permessage-deflate, permessage-deflate",
                "permessage-deflate; client_max_window_bits=8"):
        with pytest.raises(ExtensionError):
            client_accept([bad], offer)
    with pytest.raises(ExtensionError):          # client_max_window_bits not offered
        client_accept(["permessage-deflate; client_max_window_bits=10"], "permessage-deflate")


# -- the codec ------------------------------------------------------------------------------------

def _pair(**kwargs):
    a = PerMessageDeflate(DeflateParameters(**kwargs))
    b = PerMessageDeflate(DeflateParameters(
        local_no_context_takeover=kwargs.get("remote_no_context_takeover", False),
        remote_no_context_takeover=kwargs.get("local_no_context_takeover", False)))
    return a, b


@pytest.mark.parametrize("takeover", [True, False])
def test_context_takeover_across_messages(takeover):
    sender, receiver = _pair(local_no_context_takeover=not takeover)
    message = b"the same sentence, again and again. " * 20
    sizes = []
    for _ in range(3):
        compressed = sender.compress(message)
        sizes.append(len(compressed))
        assert receiver.decompress(compressed) == message
    if takeover:
        assert sizes[1] < sizes[0] / 4          # the window remembers the first message
    else:
        assert sizes[0] == sizes[1] == sizes[2]


def test_compressed_form_matches_zlib_raw_deflate_without_the_tail():
    sender = PerMessageDeflate(DeflateParameters(local_max_window_bits=10))
    data = os.urandom(100) * 30
    out = sender.compress(data)
    assert zlib.decompressobj(-15).decompress(out + b"\x00\x00\xff\xff") == data


@pytest.mark.parametrize("size, too_big", [(999, False), (1000, False), (1001, True)])
def test_max_message_size_applies_to_the_inflated_size(size, too_big):
    sender = PerMessageDeflate(DeflateParameters())
    receiver = PerMessageDeflate(DeflateParameters(), max_message_size=1000)
    compressed = sender.compress(b"z" * size)
    if too_big:
        with pytest.raises(MessageTooBig):
            receiver.decompress(compressed)
    else:
        assert len(receiver.decompress(compressed)) == size


def test_a_decompression_bomb_never_costs_more_memory_than_the_limit():
    bomb = PerMessageDeflate(DeflateParameters()).compress(b"\0" * (200 << 20))   # 200 MiB of zeros
    assert len(bomb) < 300_000
    receiver = PerMessageDeflate(DeflateParameters(), max_message_size=1 << 20)
    tracemalloc.start()
    try:
        with pytest.raises(MessageTooBig):
            receiver.decompress(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20                       # ~1 MiB of output plus the input, never 200 MiB


# -- over HTTP/1.1, against websockets with compression ---------------------------------------------

def _pump(ours, theirs):
    for _ in range(100):
        a = ours.data_to_send()
        if a:
            theirs.receive_data(a)
        b = b"".join(theirs.data_to_send())
        events = ours.receive_data(b) if b else []
        if not a and not b:
            return
        yield from events


def test_websockets_client_with_compression_against_our_server():
    ours = H1Connection(client_side=False, config=Config(permessage_deflate=True, compression_threshold=0))
    client = ClientProtocol(parse_uri("ws://a/"), extensions=[ClientPerMessageDeflateFactory()])
    client.send_request(client.connect())
    list(_pump(ours, client))
    ours.accept_websocket(0)
    list(_pump(ours, client))
    response = next(iter(client.events_received()))
    assert response.status_code == 101
    assert response.headers["Sec-WebSocket-Extensions"].startswith("permessage-deflate")
    sent = ["hello " * 100, "hello " * 100, "ünïcode" * 50]
    for text in sent:
        client.send_text(text.encode())
    events = list(_pump(ours, client))
    assert events == [TextMessage(t) for t in sent]
    for text in sent:
        ours.send_message(0, text)
    out = ours.data_to_send()
    assert out[0] & 0x40                           # RSV1: compressed
    assert len(out) < sum(len(t) for t in sent) / 3
    client.receive_data(out)
    assert [f.data.decode() for f in client.events_received() if f.opcode == Opcode.TEXT] == sent


def test_our_server_closes_1009_when_a_compressed_message_inflates_past_the_limit():
    ours = H1Connection(client_side=False, config=Config(permessage_deflate=True, max_message_size=10000))
    client = ClientProtocol(parse_uri("ws://a/"), extensions=[ClientPerMessageDeflateFactory()], max_size=None)
    client.send_request(client.connect())
    list(_pump(ours, client))
    ours.accept_websocket(0)
    list(_pump(ours, client))
    client.send_binary(b"\0" * 100_000)          # ~100 bytes on the wire
    events = ours.receive_data(b"".join(client.data_to_send()))
    assert events == [WebSocketClosed(0, 1009, events[0].reason)]


# -- over HTTP/2 -------------------------------------------------------------------------------

def test_h2_compressed_messages_and_a_bomb_closed_with_1009():
    from hyperframe import frame as hf

    from tests.rawpeer import CONNECT, server_pair
    from ws2fast._core import build_ws_frame

    peer = server_pair(Config(permessage_deflate=True, max_message_size=10000, compression_threshold=0))
    offer = CONNECT + [(b"sec-websocket-extensions", b"permessage-deflate; client_max_window_bits")]
    peer.send(peer.headers(1, offer), peer.headers(3, offer))
    for sid in (1, 3):
        peer.ours.accept_websocket(sid)
    (response, _) = [f for f in peer.read() if isinstance(f, hf.HeadersFrame)]
    assert dict(response.fields)[b"sec-websocket-extensions"] == b"permessage-deflate"
    client = PerMessageDeflate(DeflateParameters())
    text = "compress me " * 50
    events = peer.send(peer.data(1, build_ws_frame(1, client.compress(text.encode()), rsv1=True, mask=True)))
    assert events == [TextMessage(text, 1)]
    peer.ours.send_message(1, text)
    (frame,) = [f for f in peer.read() if isinstance(f, hf.DataFrame)]
    assert frame.data[0] == 0xC1 and len(frame.data) < len(text) / 4      # RSV1, compressed
    server_side = PerMessageDeflate(DeflateParameters())
    assert server_side.decompress(frame.data[2:] if frame.data[1] < 126 else frame.data[4:]) == text.encode()
    bomb = PerMessageDeflate(DeflateParameters()).compress(b"\0" * 1_000_000)
    events = peer.send(peer.data(3, build_ws_frame(2, bomb, rsv1=True, mask=True)))
    assert events == [WebSocketClosed(3, 1009, events[0].reason)]
    events = peer.send(peer.data(1, build_ws_frame(1, client.compress(b"still"), rsv1=True, mask=True)))
    assert events == [TextMessage("still", 1)]
