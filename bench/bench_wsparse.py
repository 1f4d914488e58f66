"""Parsing masked client frames: ws2fast.wsframes.FrameParser against aiohttp's compiled
reader, websockets and wsproto, on the same stream in the same run.

Each stream is one message size and type, ~1 MiB of single-frame masked messages (at least
16 messages), fed in 64 KiB chunks.  Every implementation turns it into messages a user can
take: aiohttp's reader (compiled, decode_text=True) queues WSMessage objects; websockets'
sans-I/O Protocol yields frames, whose text the harness decodes as its asyncio layer would;
wsproto's FrameProtocol yields frames (text already decoded).

Run: ``python -m pytest bench/bench_wsparse.py --benchmark-enable``.
"""

from __future__ import annotations

import asyncio

import pytest
import websockets.protocol as ws_protocol
from aiohttp._websocket.reader_c import WebSocketDataQueue, WebSocketReader
from aiohttp.base_protocol import BaseProtocol
from websockets.frames import Opcode as WsOpcode
from wsproto.frame_protocol import FrameProtocol

from ws2fast.wsframes import FrameParser, build_frame

CHUNK = 64 * 1024
STREAM_BYTES = 1 << 20
SIZES = {"16B": 16, "125B": 125, "4KiB": 4096, "64KiB": 65536}


def make_stream(size: int, text: bool) -> tuple[list[bytes], int]:
    payload = ("x" * size) if text else bytes(range(256)) * (size // 256) + bytes(size % 256)
    frame = build_frame(1 if text else 2, payload, mask_key=b"\x9a\x01\x7e\x33")
    count = max(16, STREAM_BYTES // len(frame))
    wire = frame * count
    return [wire[i:i + CHUNK] for i in range(0, len(wire), CHUNK)], count


def parse_ws2fast(chunks):
    parser = FrameParser(client_side=False, max_message_size=1 << 20)
    n = 0
    for chunk in chunks:
        n += len(parser.feed(chunk))
    return n


_loop = asyncio.new_event_loop()


def parse_aiohttp(chunks):
    queue = WebSocketDataQueue(BaseProtocol(_loop), 1 << 30, loop=_loop)
    reader = WebSocketReader(queue, 1 << 20, compress=False, decode_text=True)
    n = 0
    for chunk in chunks:
        reader.feed_data(chunk)
        # Take the messages, as a consumer does (the others drop theirs after each read too).
        n += len(queue._buffer)
        queue._buffer.clear()
    return n


def parse_websockets(chunks):
    protocol = ws_protocol.Protocol(ws_protocol.Side.SERVER, max_size=1 << 20)
    n = 0
    for chunk in chunks:
        protocol.receive_data(chunk)
        for frame in protocol.events_received():
            if frame.opcode == WsOpcode.TEXT:
                frame.data.decode()
            n += 1
    return n


def parse_wsproto(chunks):
    protocol = FrameProtocol(client=False, extensions=[])
    n = 0
    for chunk in chunks:
        protocol.receive_bytes(chunk)
        for frame in protocol.received_frames():
            n += frame.message_finished
    return n


PARSERS = {"ws2fast": parse_ws2fast, "aiohttp": parse_aiohttp, "websockets": parse_websockets,
           "wsproto": parse_wsproto}


@pytest.mark.parametrize("impl", PARSERS)
@pytest.mark.parametrize("kind", ["binary", "text"])
@pytest.mark.parametrize("size", SIZES)
def test_parse_masked_client_frames(benchmark, impl, kind, size):
    chunks, count = make_stream(SIZES[size], kind == "text")
    benchmark.group = f"parse {kind} {size} messages, 64 KiB chunks ({count} msgs/round)"
    benchmark.extra_info["messages_per_round"] = count
    assert benchmark(PARSERS[impl], chunks) == count
