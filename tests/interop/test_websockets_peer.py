"""The `websockets` library (its asyncio client and server) as an HTTP/1.1 peer, over real
sockets on 127.0.0.1, both directions: every message size, text and binary, ping, close codes."""

from __future__ import annotations

import asyncio
import os

import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import serve as ws_serve
from websockets.exceptions import ConnectionClosedOK as WsClosedOK

import ws2fast
from tests.aio_helpers import run
from ws2fast.exceptions import ConnectionClosedOK

SIZES = [0, 1, 125, 126, 127, 65535, 65536, 65537, 1 << 20]


def _messages():
    for i, size in enumerate(SIZES):
        yield ("ø" * (size // 2) + "q" * (size % 2)) if i % 2 else os.urandom(size)


def test_websockets_client_against_our_server(loop_kind):
    async def main():
        async def echo(ws):
            assert ws.http_version == "HTTP/1.1" and ws.subprotocol == "chat"
            async for message in ws:
                await ws.send(message)

        async with ws2fast.serve(echo, "127.0.0.1", 0, subprotocols=["chat"]) as server:
            async with ws_connect(f"ws://127.0.0.1:{server.port}/x", subprotocols=["chat"],
                                  max_size=2 << 20, compression=None) as client:
                assert client.subprotocol == "chat"
                for message in _messages():
                    await client.send(message)
                    assert await client.recv() == message
                pong = await client.ping(b"hi")
                await asyncio.wait_for(pong, 5)
                await client.close(1000, "bye")
            assert client.close_code == 1000
    run(loop_kind, main(), timeout=60)


def test_our_client_against_websockets_server(loop_kind):
    async def main():
        async def echo(ws):
            async for message in ws:
                await ws.send(message)
            # the client's close arrives here

        async with ws_serve(echo, "127.0.0.1", 0, max_size=2 << 20, compression=None) as server:
            port = server.sockets[0].getsockname()[1]
            async with ws2fast.connect(f"ws://127.0.0.1:{port}/") as ws:
                assert ws.http_version == "HTTP/1.1"
                for message in _messages():
                    await ws.send(message)
                    assert await ws.recv() == message
                await ws.send([b"a", b"b", b"c"])
                assert await ws.recv() == b"abc"
            assert ws.close_code == 1000

        async def closer(ws):
            await ws.send("last words")
            await ws.close(1001, "going away")

        async with ws_serve(closer, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            async with ws2fast.connect(f"ws://127.0.0.1:{port}/") as ws:
                assert await ws.recv() == "last words"
                with pytest.raises(ConnectionClosedOK) as info:
                    await ws.recv()
                assert (info.value.code, info.value.reason) == (1001, "going away")
    run(loop_kind, main(), timeout=60)


def test_websockets_client_sees_our_server_close_with_1001_on_shutdown(loop_kind):
    async def main():
        async def hold(ws):
            await ws.wait_closed()

        server = await ws2fast.serve(hold, "127.0.0.1", 0)
        async with ws_connect(f"ws://127.0.0.1:{server.port}/") as client:
            await asyncio.sleep(0.05)
            server.close()
            with pytest.raises(WsClosedOK):
                await client.recv()
            assert client.close_code == 1001
        await server.wait_closed()
    run(loop_kind, main(), timeout=30)
