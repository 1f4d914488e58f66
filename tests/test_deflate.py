"""permessage-deflate (RFC 7692): negotiation rules, the codec (context takeover, window bits,
decompression bombs), and compressed WebSockets against the websockets library."""

from __future__ import annotations

import os
import tracemalloc
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
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
from ws2fast._core import FrameParser, Inflater, build_ws_frame
from ws2fast.events import BinaryMessage, TextMessage, WebSocketClosed
from ws2fast.exceptions import WebSocketProtocolError

TAIL = b"\x00\x00\xff\xff"

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


def test_compressor_settings_come_from_config():
    # 20 KiB apart, a 4 KiB block repeats: a 15-bit window reaches back to it, a 13-bit one not.
    block, filler = os.urandom(4096), os.urandom(20_000)
    data = block + filler + block
    default = PerMessageDeflate.from_config(DeflateParameters(), Config()).compress(data)
    assert zlib.decompressobj(-13).decompress(default + b"\x00\x00\xff\xff") == data
    wide = PerMessageDeflate.from_config(DeflateParameters(), Config(compression_window_bits=15)).compress(data)
    assert len(wide) < len(default) - 3000                # only the 15-bit window found the repeat
    assert zlib.decompressobj(-15).decompress(wide + b"\x00\x00\xff\xff") == data
    # never more than was negotiated
    narrow = PerMessageDeflate.from_config(DeflateParameters(local_max_window_bits=10),
                                           Config(compression_window_bits=15)).compress(data)
    assert zlib.decompressobj(-10).decompress(narrow + b"\x00\x00\xff\xff") == data
    assert len(narrow) > len(wide) + 3000
    # the memory a compressor holds: ~54 KiB by default, zlib's own settings ~262 KiB
    tracemalloc.start()
    try:
        codecs = [PerMessageDeflate.from_config(DeflateParameters(), Config()) for _ in range(20)]
        for codec in codecs:
            codec.compress(b"warm up " * 50)
        per_codec = tracemalloc.get_traced_memory()[0] / 20
    finally:
        tracemalloc.stop()
    assert per_codec < 80 * 1024, per_codec
    for bad in ({"compression_level": 10}, {"compression_memory_level": 0}, {"compression_window_bits": 8}):
        with pytest.raises(ValueError):
            Config(**bad)


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


# -- the compiled Inflater (zlib's C API) ------------------------------------------------------

def _sync(compressor, message: bytes) -> bytes:
    data = compressor.compress(message) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert data.endswith(TAIL)
    return data[:-4]


@settings(max_examples=80, deadline=None)
@given(st.lists(st.binary(max_size=3000) | st.text(max_size=400).map(str.encode), min_size=1, max_size=6),
       st.integers(9, 15), st.booleans(), st.integers(0, 9))
def test_inflater_agrees_with_zlib(messages, wbits, takeover, level):
    # repeated messages make the compressor refer back into earlier ones (context takeover)
    compressor = zlib.compressobj(level, zlib.DEFLATED, -wbits)
    inflater = Inflater(None, no_context_takeover=not takeover)
    for message in messages + messages:
        if not takeover:
            compressor = zlib.compressobj(level, zlib.DEFLATED, -wbits)
        assert inflater.inflate(_sync(compressor, message)) == message


def test_inflater_reads_the_rfc_7692_examples():
    # RFC 7692 §7.2.3.1-§7.2.3.4: "Hello" compressed, twice with a shared window, stored
    # uncompressed, and ended with a BFINAL block
    shared = Inflater(None)
    assert shared.inflate(bytes.fromhex("f248cdc9c90700")) == b"Hello"
    assert shared.inflate(bytes.fromhex("f200110000")) == b"Hello"          # refers back
    assert Inflater().inflate(bytes.fromhex("000500faff48656c6c6f00")) == b"Hello"
    assert Inflater().inflate(bytes.fromhex("f348cdc9c9070000")) == b"Hello"


def test_inflater_without_context_takeover_forgets_the_window():
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    message = os.urandom(200)
    first, second = _sync(compressor, message), _sync(compressor, message)
    assert len(second) < 20                             # refers back into the first message
    assert Inflater(None).inflate(first) == message
    keeping = Inflater(None)
    keeping.inflate(first)
    assert keeping.inflate(second) == message
    forgetting = Inflater(None, no_context_takeover=True)
    forgetting.inflate(first)
    with pytest.raises(WebSocketProtocolError, match="invalid distance") as info:
        forgetting.inflate(second)
    assert info.value.close_code == 1007


def test_inflater_keeps_the_window_across_a_final_block():
    # RFC 7692 §7.2.3.3: a sender may end a message with a BFINAL block followed by one octet
    # 0x00 (the header bits of the empty stored block the tail completes); with context
    # takeover the next message may still refer to the data before it.
    message = os.urandom(300)
    first = zlib.compressobj(6, zlib.DEFLATED, -15)
    ended = first.compress(message) + first.flush(zlib.Z_FINISH) + b"\x00"
    second = _sync(zlib.compressobj(6, zlib.DEFLATED, -15, zdict=message), message)
    inflater = Inflater(None)
    assert inflater.inflate(ended) == message
    assert inflater.inflate(second) == message
    with pytest.raises(WebSocketProtocolError):
        Inflater(None).inflate(second)                  # it does need the window


@pytest.mark.parametrize("payload, is_text, match", [
    (b"\xff\xff\xff", False, "invalid compressed data"),
    (_sync(zlib.compressobj(6, zlib.DEFLATED, -15), b"ok \xc3\x28"), True, "invalid UTF-8"),
    (_sync(zlib.compressobj(6, zlib.DEFLATED, -15), b"ok") + b"\x03\x00" + b"junk", False, "invalid"),
])
def test_inflater_fails_bad_data_with_1007(payload, is_text, match):
    with pytest.raises(WebSocketProtocolError, match=match) as info:
        Inflater(None).inflate(payload, is_text)
    assert info.value.close_code == 1007


@pytest.mark.parametrize("limit", [0, 1, 1023, 1024, 1025, 100_000])
def test_inflater_limit_at_its_edges(limit):
    for size in (limit, limit + 1):
        payload = _sync(zlib.compressobj(6, zlib.DEFLATED, -15), b"q" * size)
        inflater = Inflater(limit)
        if size <= limit:
            assert inflater.inflate(payload) == b"q" * size
        else:
            with pytest.raises(WebSocketProtocolError) as info:
                inflater.inflate(payload)
            assert info.value.close_code == 1009


def test_inflaters_share_one_output_buffer_and_each_keeps_its_own_limit():
    # One output buffer serves every Inflater: after a large limit grew it, a small limit
    # still holds, and the outputs never mix.
    big, small = Inflater(1 << 20), Inflater(1000)
    compress = lambda data: _sync(zlib.compressobj(6, zlib.DEFLATED, -15), data)  # noqa: E731
    for size in (60_000, 900_000, 65_536, 10):
        data = os.urandom(size // 2) * 2
        assert big.inflate(compress(data)) == data
        assert small.inflate(compress(b"s" * 1000)) == b"s" * 1000
        with pytest.raises(WebSocketProtocolError) as info:
            Inflater(1000).inflate(compress(b"t" * 1001))     # (a failed Inflater is done)
        assert info.value.close_code == 1009
    with pytest.raises(WebSocketProtocolError) as info:      # a bomb, then all is well again
        Inflater(1000).inflate(compress(b"\0" * (1 << 22)))
    assert info.value.close_code == 1009
    assert big.inflate(compress(b"after")) == b"after"


def test_an_idle_inflater_holds_no_output_buffer():
    inflaters = [Inflater(1 << 20) for _ in range(200)]
    payload = _sync(zlib.compressobj(6, zlib.DEFLATED, -15), os.urandom(16_000) * 2)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for inflater in inflaters:
            assert len(inflater.inflate(payload)) == 32_000
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 200 * 1024, grown          # not 32 KiB each: one buffer for all


def test_frame_parser_with_an_inflater_delivers_fragmented_compressed_messages_in_any_chunking():
    text = "fragmented and compressed, ünïcödé " * 40
    compressed = _sync(zlib.compressobj(6, zlib.DEFLATED, -15), text.encode())
    third = len(compressed) // 3
    wire = (build_ws_frame(1, compressed[:third], fin=False, rsv1=True, mask=True)
            + build_ws_frame(9, b"ping", mask=True)
            + build_ws_frame(0, compressed[third:2 * third], fin=False, mask=True)
            + build_ws_frame(0, compressed[2 * third:], mask=True)
            + build_ws_frame(2, _sync(zlib.compressobj(6, zlib.DEFLATED, -15), b"\0" * 5000), rsv1=True, mask=True))
    for step in (1, 7, len(wire)):
        parser = FrameParser(False, 10_000, permessage_deflate=True,
                             inflater=Inflater(10_000, no_context_takeover=True))
        events = [e for k in range(0, len(wire), step) for e in parser.feed(wire[k:k + step])]
        message, binary = events[1], events[2]
        assert type(events[0]).__name__ == "Ping"
        assert message == TextMessage(text) and message.nbytes == len(text.encode())
        assert message.wire_size == len(compressed)
        assert binary == BinaryMessage(b"\0" * 5000) and binary.wire_size < 100
    with pytest.raises(ValueError):
        FrameParser(False, permessage_deflate=False, inflater=Inflater())


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


def test_h2_compressed_messages_are_held_until_acknowledged():
    from hyperframe import frame as hf

    from tests.rawpeer import CONNECT, server_pair

    peer = server_pair(Config(permessage_deflate=True, release_on_consume=True, initial_window_size=65535))
    peer.send(peer.headers(1, CONNECT + [(b"sec-websocket-extensions", b"permessage-deflate")]))
    peer.ours.accept_websocket(1)
    peer.read()
    client = PerMessageDeflate(DeflateParameters())
    messages = [os.urandom(12_000) for _ in range(3)]       # incompressible: ~36 KB on the wire
    frames = [build_ws_frame(2, client.compress(m), rsv1=True, mask=True) for m in messages]
    events = [e for frame in frames for e in peer.send(peer.data(1, frame))]
    assert [e.data for e in events] == messages
    assert all(e.nbytes == 12_000 and 12_000 <= e.wire_size < 12_100 for e in events)
    stream_updates = [f for f in peer.read() if isinstance(f, hf.WindowUpdateFrame) and f.stream_id == 1]
    assert stream_updates == []                             # past half the window, yet held
    for event in events:
        peer.ours.acknowledge(1, event.wire_size)
    stream_updates = [f for f in peer.read() if isinstance(f, hf.WindowUpdateFrame) and f.stream_id == 1]
    assert sum(f.window_increment for f in stream_updates) == sum(len(f) for f in frames)
