"""HPACK decoding: ws2fast.hpack against the `hpack` package, same blocks, same run.

Run: ``python -m pytest bench/bench_hpack.py --benchmark-enable``; read the ratio within
each group (the machine is noisy; absolute times across runs mean little).
"""

from __future__ import annotations

import hpack
import pytest

from ws2fast.hpack import Decoder

# What a browser sends to open a WebSocket over HTTP/2 (RFC 8441 extended CONNECT).
BROWSER_CONNECT = [
    (b":method", b"CONNECT"),
    (b":authority", b"chat.example.com"),
    (b":scheme", b"https"),
    (b":path", b"/socket?room=lobby&v=2"),
    (b":protocol", b"websocket"),
    (b"pragma", b"no-cache"),
    (b"cache-control", b"no-cache"),
    (b"user-agent", (b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                    b"Chrome/131.0.0.0 Safari/537.36")),
    (b"origin", b"https://chat.example.com"),
    (b"sec-websocket-version", b"13"),
    (b"accept-encoding", b"gzip, deflate, br, zstd"),
    (b"accept-language", b"en-US,en;q=0.9,de;q=0.8"),
    (b"cookie", b"session=8f14e45fceea167a5a36dedd4bea2543; _ga=GA1.1.1234567890.1700000000"),
    (b"sec-websocket-extensions", b"permessage-deflate; client_max_window_bits"),
]


def _blocks():
    encoder = hpack.Encoder()
    first = encoder.encode(BROWSER_CONNECT, huffman=True)
    repeated = encoder.encode(BROWSER_CONNECT, huffman=True)
    return first, repeated


FIRST, REPEATED = _blocks()


def _decoders(impl):
    if impl == "ws2fast":
        decoder = Decoder()
        return decoder.decode
    decoder = hpack.Decoder()
    return lambda block: decoder.decode(block, raw=True)


@pytest.mark.parametrize("impl", ["ws2fast", "hpack"])
def test_decode_first_block(benchmark, impl):
    # Decoding the first block again on the same decoder repeats exactly the same work
    # (its fields refer only to the static table; each is inserted anew), so the loop is fair.
    benchmark.group = "hpack decode: browser extended CONNECT, first block (Huffman)"
    decode = _decoders(impl)
    result = benchmark(decode, FIRST)
    assert [(bytes(n), bytes(v)) for n, v in result] == BROWSER_CONNECT


@pytest.mark.parametrize("impl", ["ws2fast", "hpack"])
def test_decode_repeated_block(benchmark, impl):
    benchmark.group = "hpack decode: browser extended CONNECT, repeated block (all indexed)"
    decode = _decoders(impl)
    decode(FIRST)
    result = benchmark(decode, REPEATED)
    assert len(REPEATED) == len(BROWSER_CONNECT)            # one octet per field
    assert [(bytes(n), bytes(v)) for n, v in result] == BROWSER_CONNECT
