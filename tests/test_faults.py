"""Faults against a real ``ws2fast.serve`` on 127.0.0.1, over HTTP/1.1 and HTTP/2: the peer
vanishing mid-message, a TCP reset, a half-close.  Each time the handler's WebSocket ends with
1006 (abnormal closure) within a bounded time, the handler task finishes, and the server
keeps no connection behind; a message that was complete before the fault was delivered.
And a server shut down under 300 open WebSockets: each gets every accepted message, then 1001,
and no task, connection or error is left."""

from __future__ import annotations

import asyncio
import socket
import struct

import hpack
import pytest
from hyperframe import frame as hf

import ws2fast
from tests.aio_helpers import LOOPS, run
from ws2fast._core import PREFACE, build_ws_frame, build_ws_frame_header

CONNECT = [(b":method", b"CONNECT"), (b":protocol", b"websocket"), (b":scheme", b"http"),
           (b":path", b"/"), (b":authority", b"127.0.0.1"), (b"sec-websocket-version", b"13")]
UPGRADE = (b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")


async def _open(port: int, version: str):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    if version == "HTTP/1.1":
        writer.write(UPGRADE)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 101")
        wrap = bytes
    else:
        writer.write(PREFACE + hf.SettingsFrame(0).serialize()
                     + hf.HeadersFrame(1, hpack.Encoder().encode(CONNECT), flags=["END_HEADERS"]).serialize())
        data = b""
        while True:                                   # until the 200 HEADERS on stream 1
            data += await asyncio.wait_for(reader.read(65536), 10)
            frames, k = [], 0
            while len(data) - k >= 9 and len(data) - k >= 9 + int.from_bytes(data[k:k + 3], "big"):
                frames.append((data[k + 3], int.from_bytes(data[k + 5:k + 9], "big") & 0x7FFFFFFF))
                k += 9 + int.from_bytes(data[k:k + 3], "big")
            if (0x1, 1) in frames:
                break

        def wrap(payload: bytes) -> bytes:
            return hf.DataFrame(1, payload).serialize()
    return reader, writer, wrap


@pytest.mark.parametrize("version", ["HTTP/1.1", "HTTP/2"])
@pytest.mark.parametrize("fault", ["vanish mid-message", "TCP reset", "half-close"])
@pytest.mark.parametrize("loop_kind", LOOPS)
def test_fault_ends_the_websocket_with_1006_and_leaves_nothing(loop_kind, fault, version):
    async def main():
        loop = asyncio.get_running_loop()
        ended: asyncio.Future[tuple[int | None, list]] = loop.create_future()

        async def handler(ws):
            got = []
            try:
                async for message in ws:
                    got.append(message)
            finally:
                ended.set_result((ws.close_code, got))

        async with ws2fast.serve(handler, "127.0.0.1", 0) as server:
            reader, writer, wrap = await _open(server.port, version)
            # one whole message, then half of the next (its header promises 1000 octets)
            writer.write(wrap(build_ws_frame(1, "complete", mask=True))
                         + wrap(build_ws_frame_header(2, 1000, mask_key=b"abcd") + b"x" * 10))
            await writer.drain()
            await asyncio.sleep(0.1)
            sock = writer.get_extra_info("socket")
            if fault == "TCP reset":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
            elif fault == "half-close":
                writer.write_eof()
            else:
                writer.close()
            code, got = await asyncio.wait_for(ended, 10)
            if fault == "half-close":
                # the server ends its side too: the socket reaches EOF
                while await asyncio.wait_for(reader.read(65536), 10):
                    pass
                writer.close()
            for _ in range(100):
                if not server.connections:
                    break
                await asyncio.sleep(0.05)
            assert not server.connections, "the server kept a connection behind"
            return code, got

    code, got = run(loop_kind, main(), timeout=40)
    assert code == 1006
    assert got == ["complete"]


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_shutdown_with_many_open_websockets_closes_each_with_1001_and_leaves_nothing(loop_kind, caplog):
    # 300 WebSockets (3 HTTP/2 connections of 50 streams, 150 over HTTP/1.1), each handler in the
    # middle of sending when the server shuts down: every client receives every message the
    # handler's send() accepted, then Close 1001; afterwards no task, connection or error is left.
    PER = 20

    async def main():
        loop = asyncio.get_running_loop()
        errors: list[dict] = []
        loop.set_exception_handler(lambda _, context: errors.append(context))
        started = 0
        all_started = asyncio.Event()
        accepted: dict[str, int] = {}

        async def handler(ws):
            nonlocal started
            await ws.recv()                           # the client's name
            name = ws.path
            started += 1
            if started == 300:
                all_started.set()
            i = 0
            while True:                               # until the shutdown's Close stops send()
                await ws.send(f"{name}:{i}")
                accepted[name] = i + 1
                i += 1
                if i >= PER:
                    await ws.wait_closed()
                    return

        baseline = asyncio.all_tasks()
        server = await ws2fast.serve(handler, "127.0.0.1", 0)
        url = f"ws://127.0.0.1:{server.port}"
        clients = [ws2fast.Client(f"http://127.0.0.1:{server.port}") for _ in range(3)]
        sockets = [await clients[i % 3].websocket(f"/h2-{i}") for i in range(150)]
        sockets += [await ws2fast.connect(f"{url}/h1-{i}", http2=False) for i in range(150)]
        for ws in sockets:
            await ws.send("hello")
        await asyncio.wait_for(all_started.wait(), 20)
        server.close()
        await server.wait_closed()
        for ws in sockets:
            got = []
            with pytest.raises(ws2fast.exceptions.ConnectionClosedOK) as info:
                while True:
                    got.append(await asyncio.wait_for(ws.recv(), 10))
            assert info.value.code == 1001, ws.path
            assert got == [f"{ws.path}:{i}" for i in range(accepted.get(ws.path, 0))], ws.path
        for client in clients:
            await client.close()
        assert not server.connections
        assert not server._options.tasks
        await asyncio.sleep(0.05)
        left = asyncio.all_tasks() - baseline
        assert not left, left
        assert not errors, errors

    with caplog.at_level("ERROR", logger="ws2fast"):
        run(loop_kind, main(), timeout=60)
    assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.text
