"""uvicorn's WebSocket implementations against ours, the application unchanged: a Starlette
WebSocket echo (tests/interop/uvicorn_apps.py, route ``/``) under ``uvicorn --http httptools
--loop uvloop`` with ``--ws websockets-sansio``, ``--ws wsproto`` and ``--ws
ws2fast.uvicorn:WebSocketProtocol``, in the same run.

- echo, 64 B and 4 KiB: request-response (ROUND_TRIPS per round) and 100 in flight (MESSAGES
  per round), one client for every server (picows's, the fastest Python client, so that the
  client caps no one), client and server pinned to one CPU as in bench_e2e.py;
- memory per idle WebSocket: the server's RSS growth over WEBSOCKETS (10,000) WebSockets
  opened and left idle (each echoed one message), divided by their number.

Targets (issue 20): at least 2x websockets-sansio with 100 in flight at 64 B, ahead of it in
request-response, and less memory per idle WebSocket.

Run: ``python -m pytest bench/bench_uvicorn.py --benchmark-enable -s``.
"""

from __future__ import annotations

import asyncio
import base64
import os
import resource
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.interop.test_uvicorn import wait_ready
from bench.bench_e2e import CPU, SIZES, PicowsClient, _pinned_loop, measure_echo

ROOT = Path(__file__).resolve().parents[1]
WS = {"ws2fast": "ws2fast.uvicorn:WebSocketProtocol", "websockets-sansio": "websockets-sansio",
      "wsproto": "wsproto"}
WEBSOCKETS = int(os.environ.get("WS2FAST_MEMORY_WEBSOCKETS", "10000"))
RESULTS: dict[str, dict[str, float]] = {}


class Uvicorn:
    """``uvicorn`` serving the Starlette echo with one ``--ws``, pinned, on its own socket."""

    def __init__(self, ws: str, pinned: bool = True) -> None:
        # (--host/--port, not --fd: uvicorn wraps an --fd socket as AF_UNIX, so its loop leaves
        # Nagle on for the connections, which would stall uvicorn's own implementations)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        command = [sys.executable, "-m", "uvicorn", "tests.interop.uvicorn_apps:starlette_app", "--ws", WS[ws],
                   "--http", "httptools", "--loop", "uvloop", "--host", "127.0.0.1", "--port", str(self.port),
                   "--lifespan", "off", "--log-level", "warning", "--no-access-log", "--ws-ping-interval", "0",
                   "--backlog", "4096"]
        taskset = shutil.which("taskset")
        if pinned and taskset:
            command = [taskset, "-c", ",".join(map(str, CPU)), *command]
        self.proc = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        wait_ready(self.port, self.proc)

    def rss(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture(scope="module")
def servers():
    started: dict[str, Uvicorn] = {}

    def get(ws: str) -> int:
        if ws not in started:
            started[ws] = Uvicorn(ws)
        return started[ws].port

    yield get
    for server in started.values():
        server.stop()


@pytest.mark.parametrize("ws", list(WS))
@pytest.mark.parametrize("mode", ["request-response", "pipelined"])
@pytest.mark.parametrize("size", SIZES)
def test_uvicorn_echo(benchmark, servers, ws, mode, size):
    pytest.importorskip("picows", reason="picows is not installed")
    port = servers(ws)
    with _pinned_loop() as loop:
        client = PicowsClient()
        loop.run_until_complete(asyncio.wait_for(client.connect(port), 30))
        measure_echo(benchmark, loop, client, mode, size, "uvicorn, Starlette echo")


# -- memory per idle WebSocket -------------------------------------------------------------------

async def _open_idle(port: int, count: int) -> list[asyncio.StreamWriter]:
    writers = []
    frame = b"\x82\x84" + b"\x01\x02\x03\x04" + bytes(b ^ m for b, m in zip(b"ping", b"\x01\x02\x03\x04", strict=True))

    async def one() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16))
        writer.write(b"GET / HTTP/1.1\r\nhost: 127.0.0.1\r\nupgrade: websocket\r\nconnection: Upgrade\r\n"
                     b"sec-websocket-key: " + key + b"\r\nsec-websocket-version: 13\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        writer.write(frame)
        echo = await reader.readexactly(6)
        assert echo == b"\x82\x04ping", echo
        writers.append(writer)

    for start in range(0, count, 200):
        await asyncio.gather(*(one() for _ in range(min(200, count - start))))
    return writers


def _file_limit(need: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        if hard < need:
            pytest.skip(f"open-file limit {hard} < {need}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


@pytest.mark.parametrize("ws", list(WS))
def test_uvicorn_idle_memory_per_websocket(benchmark, ws):
    _file_limit(WEBSOCKETS + 1000)
    server = Uvicorn(ws, pinned=False)
    try:
        loop = asyncio.new_event_loop()
        warm = loop.run_until_complete(_open_idle(server.port, 100))     # imports, first allocations
        before = server.rss()
        benchmark.group = f"uvicorn: opening {WEBSOCKETS} idle WebSockets"
        writers = benchmark.pedantic(lambda: loop.run_until_complete(_open_idle(server.port, WEBSOCKETS)),
                                     rounds=1, iterations=1)
        time.sleep(0.5)
        after = server.rss()
        per = (after - before) / WEBSOCKETS
        RESULTS[ws] = {"rss_per_websocket": per}
        benchmark.extra_info["rss_bytes_per_websocket"] = round(per)
        print(f"\nuvicorn --ws {ws}: {per / 1024:.1f} KiB RSS per idle WebSocket ({WEBSOCKETS})")
        for writer in warm + writers:
            writer.close()
        loop.run_until_complete(asyncio.sleep(0.1))
        loop.close()
    finally:
        server.stop()
