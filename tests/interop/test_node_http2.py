"""Node.js's http2 module (with its enableConnectProtocol setting) as an RFC 8441 peer, over real
sockets on 127.0.0.1: a Node client against our server, and our client against a Node server.
WebSocket framing on the Node side is written in the script, from RFC 6455."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import ws2fast
from tests.aio_helpers import run

SCRIPT = Path(__file__).with_name("node_rfc8441.js")
SIZES = [0, 1, 125, 126, 127, 65535, 65536, 65537, 1 << 20]


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed")
    return node


def test_node_http2_client_against_our_server(loop_kind):
    node = _node()

    async def main():
        seen = []

        async def echo(ws):
            seen.append((ws.http_version, ws.path))
            async for message in ws:
                await ws.send(message)

        async with ws2fast.serve(echo, "127.0.0.1", 0) as server:
            process = await asyncio.create_subprocess_exec(
                node, str(SCRIPT), "client", str(server.port), "3", stdout=subprocess.PIPE,
                stderr=subprocess.PIPE)
            try:
                out, err = await asyncio.wait_for(process.communicate(), 60)
            finally:
                if process.returncode is None:
                    process.kill()
                    await process.wait()
            assert process.returncode == 0, err.decode()
            result = json.loads(out.decode().strip().splitlines()[-1])
        assert result["errors"] == []
        assert result["settings"] == {"enableConnectProtocol": True}
        assert len(result["streams"]) == 3
        for report in result["streams"]:
            assert report["status"] == 200
            assert (report["echoed"], report["mismatched"]) == (len(SIZES), 0)
            assert report["close"] == 1000 and report["ended"]          # Close echoed, END_STREAM
            assert report["rstCode"] == 0                               # no reset: an orderly close
        assert sorted(seen) == [("HTTP/2", f"/node/{i}") for i in range(3)]
    run(loop_kind, main(), timeout=90)


def test_our_client_against_a_node_http2_server(loop_kind):
    node = _node()

    async def main():
        process = await asyncio.create_subprocess_exec(
            node, str(SCRIPT), "server", stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        try:
            line = await asyncio.wait_for(process.stdout.readline(), 30)
            port = json.loads(line)["port"]
            async with ws2fast.Client(f"http://127.0.0.1:{port}") as client:
                status, _, body = await client.request("GET", "/hello")
                assert (status, body) == (200, b"node says hi\n")
                sockets = [await client.websocket(f"/{i}") for i in range(3)]
                for ws in sockets:
                    assert ws.http_version == "HTTP/2"
                for i, size in enumerate(SIZES):
                    message = ("ü" * (size // 2) + "x" * (size % 2)) if i % 2 else os.urandom(size)
                    for ws in sockets:
                        await ws.send(message)
                    for ws in sockets:
                        assert await ws.recv() == message
                await sockets[0].send([b"frag", b"mented"])
                assert await sockets[0].recv() == b"fragmented"
                pong = await sockets[1].ping(b"node?")
                await asyncio.wait_for(pong, 5)
                for ws in sockets:
                    await ws.close(1000)
                    assert ws.close_code == 1000
        finally:
            process.stdin.close()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except asyncio.TimeoutError:
                process.kill()
                await process.wait()
    run(loop_kind, main(), timeout=90)
