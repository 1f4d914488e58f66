"""Time to the first echoed message, over TLS 1.3 through a loopback proxy that delays each
direction by 20 ms (a 40 ms round trip, ``bench/delay_proxy.py``):

- on a new connection, from the ``connect()`` call to the first echo: ws2fast strict RFC 8441,
  ws2fast ``early=True`` (the extended CONNECT and the first message leave with the preface),
  and the ``websockets`` library over HTTP/1.1 (the peer);
- on an existing ``Client`` connection, from ``client.websocket()`` to its first echo:
  strict and early.

The servers (ws2fast's and websockets', each an echo) and the proxies in front of them run in
a process of their own.  ``extra_info["round_trips"]`` is the median time over the
round trip.  ``python -m bench.bench_latency`` prints the table the README shows.

Run: ``python -m pytest bench/bench_latency.py --benchmark-enable``.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect as websockets_connect
from websockets.asyncio.server import serve as websockets_serve

import ws2fast
from bench.delay_proxy import DelayProxy
from tests.aio_helpers import client_context, make_certificate, server_context
from ws2fast.capabilities import capability_cache

DELAY = 0.020                       # each direction
RTT = 2 * DELAY
ROUNDS = 15
NEW = ["ws2fast-strict", "ws2fast-early", "websockets-h1"]
EXISTING = ["ws2fast-strict", "ws2fast-early"]
MESSAGE = "x" * 64


class Servers:
    """ws2fast's and websockets' TLS echo servers behind delay proxies, in a process of their own
    (``python -m bench.bench_latency serve DIR``), so that the client's work does not delay
    theirs (one interpreter would share one GIL)."""

    def __init__(self, directory: Path) -> None:
        self.cert, self.key = make_certificate(directory)
        self.process = subprocess.Popen([sys.executable, "-m", "bench.bench_latency", "serve", str(directory)],
                                        cwd=Path(__file__).resolve().parents[1], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self.process.wait(10)
            raise RuntimeError("the benchmark servers did not start")
        self.ports: dict[str, int] = json.loads(line)

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()                  # (the server process ends on EOF)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


async def serve(directory: Path) -> None:
    """The server process: both servers and their proxies, until stdin ends."""
    cert, key = directory / "cert.pem", directory / "key.pem"

    async def echo(ws: Any) -> None:
        async for message in ws:
            await ws.send(message)

    loop = asyncio.get_running_loop()
    async with ws2fast.serve(echo, "127.0.0.1", 0, ssl=server_context(cert, key)) as ours, \
            websockets_serve(echo, "127.0.0.1", 0, ssl=server_context(cert, key), compression=None) as theirs, \
            DelayProxy(ours.port, DELAY) as ours_proxy, \
            DelayProxy(theirs.sockets[0].getsockname()[1], DELAY) as theirs_proxy:
        print(json.dumps({"ws2fast": ours_proxy.port, "websockets": theirs_proxy.port}), flush=True)
        await loop.run_in_executor(None, sys.stdin.read)


async def first_echo_new(servers: Servers, impl: str) -> float:
    """Seconds from connect() to the first echo on a new connection (the close is not timed)."""
    context = client_context(servers.cert)
    started = time.perf_counter()
    if impl == "websockets-h1":
        ws: Any = await websockets_connect(f"wss://localhost:{servers.ports['websockets']}/", ssl=context,
                                           compression=None)
    else:
        ws = await ws2fast.connect(f"wss://localhost:{servers.ports['ws2fast']}/", ssl=context,
                                   early=impl == "ws2fast-early")
    await ws.send(MESSAGE)
    assert await ws.recv() == MESSAGE
    took = time.perf_counter() - started
    await ws.close()
    return took


async def first_echo_existing(client: ws2fast.Client) -> float:
    """Seconds from client.websocket() to the first echo, on the client's open connection."""
    started = time.perf_counter()
    ws = await client.websocket("/")
    await ws.send(MESSAGE)
    assert await ws.recv() == MESSAGE
    took = time.perf_counter() - started
    ws.close_nowait()
    return took


@pytest.fixture(scope="module")
def servers():
    with tempfile.TemporaryDirectory() as directory:
        running = Servers(Path(directory))
        yield running
        running.close()


def _record(benchmark: Any, times: list[float]) -> None:
    benchmark.extra_info["round_trips"] = round(statistics.median(times) / RTT, 2)


@pytest.mark.parametrize("impl", NEW)
def test_first_echo_on_a_new_connection(benchmark, servers, impl):
    benchmark.group = "latency: connect() to first echo, new TLS connection, 40 ms RTT"
    loop = asyncio.new_event_loop()
    times: list[float] = []
    try:
        benchmark.pedantic(lambda: times.append(loop.run_until_complete(first_echo_new(servers, impl))),
                           rounds=ROUNDS if benchmark.enabled else 1, iterations=1)
    finally:
        loop.run_until_complete(asyncio.sleep(0.1))
        loop.close()
        capability_cache.clear()
    # one round trip at least, whatever the options (the proxy delays every byte)
    assert min(times) >= RTT
    _record(benchmark, times)


@pytest.mark.parametrize("impl", EXISTING)
def test_first_echo_on_an_existing_connection(benchmark, servers, impl):
    benchmark.group = "latency: client.websocket() to first echo, existing connection, 40 ms RTT"
    loop = asyncio.new_event_loop()
    client = ws2fast.Client(f"https://localhost:{servers.ports['ws2fast']}", ssl=client_context(servers.cert),
                            early=impl == "ws2fast-early")
    times: list[float] = []
    try:
        loop.run_until_complete(first_echo_existing(client))          # the connection opens
        benchmark.pedantic(lambda: times.append(loop.run_until_complete(first_echo_existing(client))),
                           rounds=ROUNDS if benchmark.enabled else 1, iterations=1)
        loop.run_until_complete(client.close())
    finally:
        loop.run_until_complete(asyncio.sleep(0.1))     # (transports closing finish)
        loop.close()
    assert min(times) >= RTT
    _record(benchmark, times)


def table(rounds: int = ROUNDS) -> list[str]:
    """The README's table: median round trips to the first echo, per case."""
    with tempfile.TemporaryDirectory() as directory:
        servers = Servers(Path(directory))
        loop = asyncio.new_event_loop()
        try:
            new = {}
            for impl in NEW:
                new[impl] = statistics.median(loop.run_until_complete(first_echo_new(servers, impl))
                                              for _ in range(rounds)) / RTT
                capability_cache.clear()
            existing = {}
            for impl in EXISTING:
                client = ws2fast.Client(f"https://localhost:{servers.ports['ws2fast']}",
                                        ssl=client_context(servers.cert), early=impl == "ws2fast-early")
                loop.run_until_complete(first_echo_existing(client))
                existing[impl] = statistics.median(loop.run_until_complete(first_echo_existing(client))
                                                   for _ in range(rounds)) / RTT
                loop.run_until_complete(client.close())
        finally:
            loop.close()
            servers.close()
    lines = [f"Round trips to the first echo (TLS 1.3, {RTT * 1000:.0f} ms round trip, median of {rounds}):",
             "", "| | new connection | existing connection |", "|---|---|---|"]
    names = {"ws2fast-strict": "ws2fast, strict RFC 8441", "ws2fast-early": "ws2fast, `early=True`",
             "websockets-h1": "websockets, HTTP/1.1"}
    for impl in NEW:
        old = f"{existing[impl]:.2f}" if impl in existing else "n/a"
        lines.append(f"| {names[impl]} | {new[impl]:.2f} | {old} |")
    lines += ["", (f"early saves {new['ws2fast-strict'] - new['ws2fast-early']:.2f} round trips on a new "
                   f"connection ({new['websockets-h1'] - new['ws2fast-early']:.2f} against HTTP/1.1) and "
                   f"{existing['ws2fast-strict'] - existing['ws2fast-early']:.2f} on an existing one")]
    return lines


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        asyncio.run(serve(Path(sys.argv[2])))
    else:
        print("\n".join(table(int(sys.argv[1]) if len(sys.argv) > 1 else ROUNDS)))
