"""permessage-deflate: sending and receiving 4 KiB JSON-like text messages with compression
(context takeover, 15-bit windows), ws2fast against the websockets library with compression and
against raw zlib compressobj/decompressobj on the same data, in the same run.

- send: messages in -> compressed frames out (server side: unmasked);
- receive: masked compressed frames in (as a client sends them) -> text messages out, fed in
  64 KiB reads (what the asyncio layer reads at once) and each read's messages consumed before
  the next, as raw zlib's loop consumes each message.  (Fed as one 190 KB batch, ws2fast's
  list holds all 256 inflated messages at once, and allocating that 1 MiB costs it ~25% more;
  zlib's loop frees each string as it goes.)

Run: ``python -m pytest bench/bench_deflate.py --benchmark-enable``.
"""

from __future__ import annotations

import json
import random
import zlib

import pytest
from websockets.extensions.permessage_deflate import PerMessageDeflate as WsDeflate
from websockets.frames import Opcode
from websockets.protocol import Protocol, Side, State

from ws2fast import Config
from ws2fast.deflate import DeflateParameters
from ws2fast.websocket import WebSocketSession

COUNT = 256


def _messages() -> list[str]:
    rng = random.Random(7)
    words = ["alpha", "beta", "gamma", "delta", "price", "volume", "symbol", "bid", "ask", "time"]
    out = []
    for i in range(COUNT):
        record: dict = {"id": i, "type": "update", "items": []}
        while len(json.dumps(record)) < 4096:
            record["items"].append({rng.choice(words): rng.randint(0, 10**6), "name": rng.choice(words),
                                    "value": round(rng.random() * 1000, 3), "flag": rng.random() < 0.5})
        out.append(json.dumps(record)[:4096].ljust(4096))
    return out


MESSAGES = _messages()
TOTAL = sum(len(m) for m in MESSAGES)
# zlib's own settings (15-bit window, memory level 8, level 6) on every side, so that the three
# compress and inflate the same way (ws2fast's defaults use less memory: 13 bits, level 5)
CONFIG = Config(permessage_deflate=True, compression_threshold=0, compression_window_bits=15,
                compression_memory_level=8)


def _client_wire() -> bytes:
    """What a client sends: each message compressed with context takeover, masked."""
    client = WebSocketSession(client_side=True, config=CONFIG, deflate=DeflateParameters())
    for message in MESSAGES:
        client.send_message(message)
    return client.data_to_send()


WIRE = _client_wire()


def send_ws2fast() -> int:
    session = WebSocketSession(client_side=False, config=CONFIG, deflate=DeflateParameters())
    for message in MESSAGES:
        session.send_message(message)
    return len(session.data_to_send())


def send_websockets() -> int:
    protocol = Protocol(Side.SERVER, state=State.OPEN)
    protocol.extensions = [WsDeflate(False, False, 15, 15)]
    for message in MESSAGES:
        protocol.send_text(message.encode())
    return sum(len(chunk) for chunk in protocol.data_to_send())


def send_zlib() -> int:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    n = 0
    for message in MESSAGES:
        n += len(compressor.compress(message.encode()) + compressor.flush(zlib.Z_SYNC_FLUSH))
    return n


READ = 65536
READS = [WIRE[k:k + READ] for k in range(0, len(WIRE), READ)]


def receive_ws2fast() -> int:
    session = WebSocketSession(client_side=False, config=CONFIG, deflate=DeflateParameters())
    return sum(sum(len(e.data) for e in session.receive_data(read)) for read in READS)


def receive_websockets() -> int:
    protocol = Protocol(Side.SERVER, state=State.OPEN, max_size=None)
    protocol.extensions = [WsDeflate(False, False, 15, 15)]
    n = 0
    for read in READS:
        protocol.receive_data(read)
        n += sum(len(f.data.decode()) for f in protocol.events_received() if f.opcode == Opcode.TEXT)
    return n


_COMPRESSED: list[bytes] = []


def _raw_compressed() -> list[bytes]:
    if not _COMPRESSED:
        compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
        for message in MESSAGES:
            _COMPRESSED.append(compressor.compress(message.encode()) + compressor.flush(zlib.Z_SYNC_FLUSH))
    return _COMPRESSED


def receive_zlib() -> int:
    decompressor = zlib.decompressobj(-15)
    return sum(len(decompressor.decompress(chunk).decode()) for chunk in _raw_compressed())


SEND = {"ws2fast": send_ws2fast, "websockets": send_websockets, "zlib": send_zlib}
RECEIVE = {"ws2fast": receive_ws2fast, "websockets": receive_websockets, "zlib": receive_zlib}


@pytest.mark.parametrize("impl", SEND)
def test_send_compressed_json(benchmark, impl):
    benchmark.group = f"send {COUNT} x 4 KiB JSON-like text, permessage-deflate"
    n = benchmark(SEND[impl])
    assert 0 < n < TOTAL / 3                     # it did compress


@pytest.mark.parametrize("impl", RECEIVE)
def test_receive_compressed_json(benchmark, impl):
    benchmark.group = f"receive {COUNT} x 4 KiB JSON-like text, permessage-deflate"
    assert benchmark(RECEIVE[impl]) == TOTAL
