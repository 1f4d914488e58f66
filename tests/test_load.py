"""Load and soak against one ws2fast server process on 127.0.0.1 (tests/load_server.py), every
loop bounded in count and time:

- 10,000 concurrent WebSockets as 100 HTTP/2 connections of 100 streams each, all echoing;
- 2,000 concurrent WebSockets over HTTP/1.1, all echoing;
- a soak of echo traffic (WS2FAST_SOAK_SECONDS, 180 by default) with WebSockets opening and
  closing throughout, over both HTTP versions, with and without permessage-deflate, in which
  the server's RSS grows by less than 5% after warm-up.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import resource
import subprocess
import sys
import time

import ws2fast
from tests.aio_helpers import run
from tests.helpers import ROOT

SOAK_SECONDS = float(os.environ.get("WS2FAST_SOAK_SECONDS", "180"))


def _raise_file_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(needed, min(hard, needed)), max(hard, needed)))
        except (ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert soft >= needed, f"RLIMIT_NOFILE is {soft} (hard {hard}); this test needs {needed}"


class LoadServer:
    """tests/load_server.py as a child process; stopped by closing its stdin, then by PID."""

    def __init__(self) -> None:
        _raise_file_limit(8192)                  # inherited by the child
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "load_server.py")],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("PORT "), f"the load server did not start: {line!r}"
        self.port = int(line.split()[1])
        self.origin = f"http://127.0.0.1:{self.port}"

    async def stats(self) -> dict:
        async with ws2fast.Client(self.origin) as client:
            status, _, body = await client.request("GET", "/stats")
        assert status == 200
        return json.loads(body)

    async def settled(self) -> dict:
        """The stats once no WebSocket is open any more (or after 5 s)."""
        for _ in range(50):
            stats = await self.stats()
            if stats["websockets"] == 0:
                break
            await asyncio.sleep(0.1)
        return stats

    def stop(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.proc.stdout.close()

    def __enter__(self) -> LoadServer:  # noqa: PYI034
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


async def _talk(ws: ws2fast.WebSocket, tag: str, rounds: int, size: int) -> int:
    for r in range(rounds):
        message = f"{tag}:{r}:" + "x" * size
        await ws.send(message)
        echoed = await asyncio.wait_for(ws.recv(), 60)
        assert echoed == message, (tag, r)
    return rounds


async def _gather_bounded(coros, limit: int):
    semaphore = asyncio.Semaphore(limit)

    async def one(coro):
        async with semaphore:
            return await coro
    return await asyncio.gather(*(one(c) for c in coros))


def test_ten_thousand_websockets_as_100_http2_connections_of_100_streams():
    async def main(server: LoadServer):
        clients = [ws2fast.Client(server.origin, open_timeout=60) for _ in range(100)]
        try:
            async def open_streams(client: ws2fast.Client, c: int):
                await client.websocket(f"/warm/{c}")                     # the connection first
                return await asyncio.gather(*(client.websocket(f"/{c}/{s}") for s in range(99)))

            groups = await _gather_bounded([open_streams(client, c) for c, client in enumerate(clients)], 20)
            sockets = [ws for group in groups for ws in group] + \
                [ws for client in clients for ws in client.connection.websockets.values()
                 if ws.path.startswith("/warm/")]
            assert len(sockets) == 10000
            assert all(ws.http_version == "HTTP/2" for ws in sockets)
            assert len({id(client.connection) for client in clients}) == 100
            during = await server.stats()
            echoed = await asyncio.gather(*(_talk(ws, str(i), 3, 64) for i, ws in enumerate(sockets)))
            assert sum(echoed) == 30000
            await asyncio.gather(*(ws.close() for ws in sockets))
            assert all(ws.close_code == 1000 for ws in sockets)
        finally:
            await asyncio.gather(*(client.close() for client in clients), return_exceptions=True)
        return during, await server.settled()

    with LoadServer() as server:
        during, after = run("asyncio", main(server), timeout=600)
    assert during["websockets"] == 10000 and during["peak"] >= 10000, during
    assert during["echoed"] == 0 or during["echoed"] < 30000
    assert after["echoed"] == 30000 and after["websockets"] == 0, after
    print(f"10,000 WebSockets over HTTP/2: server RSS {during['rss_kib']} KiB with all open")


def test_two_thousand_websockets_over_http1():
    async def main(server: LoadServer):
        url = f"ws://127.0.0.1:{server.port}/h1"
        sockets = await _gather_bounded([ws2fast.connect(url, http2=False, open_timeout=60)
                                         for _ in range(2000)], 200)
        try:
            assert all(ws.http_version == "HTTP/1.1" for ws in sockets)
            during = await server.stats()
            echoed = await asyncio.gather(*(_talk(ws, str(i), 3, 64) for i, ws in enumerate(sockets)))
            assert sum(echoed) == 6000
        finally:
            await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
        assert all(ws.close_code == 1000 for ws in sockets)
        return during, await server.settled()

    with LoadServer() as server:
        during, after = run("asyncio", main(server), timeout=600)
    assert during["websockets"] == 2000, during
    assert after["echoed"] == 6000 and after["websockets"] == 0 and after["connections"] <= 1, after


def test_soak_rss_stays_flat_after_warm_up():
    async def main(server: LoadServer):
        rng = random.Random(7)
        deadline = time.monotonic() + SOAK_SECONDS
        warm_until = time.monotonic() + min(60.0, SOAK_SECONDS / 3)      # caches, free lists, arenas
        samples: list[tuple[float, int]] = []
        totals = {"echoed": 0, "opened": 0}

        async def worker(n: int):
            # open a WebSocket (HTTP/2 through a shared Client, or HTTP/1.1), echo a while, close
            # half the workers compress (permessage-deflate), half do not
            config = ws2fast.Config(permessage_deflate=n % 4 < 2)
            client = ws2fast.Client(server.origin, config=config)
            try:
                while time.monotonic() < deadline:
                    if n % 2:
                        ws = await client.websocket(f"/soak/{n}")
                    else:
                        ws = await ws2fast.connect(f"ws://127.0.0.1:{server.port}/soak/{n}", http2=False,
                                                   config=config)
                    assert bool(ws.extensions) == config.permessage_deflate
                    totals["opened"] += 1
                    for _ in range(rng.randint(10, 200)):
                        if time.monotonic() >= deadline:
                            break
                        size = rng.choice((16, 200, 4096, 65536))
                        totals["echoed"] += await _talk(ws, str(n), 1, size)
                    await ws.close()
                    assert ws.close_code == 1000
            finally:
                await client.close()

        async def sampler():
            while time.monotonic() < deadline:
                await asyncio.sleep(5)
                if time.monotonic() >= warm_until:
                    samples.append((time.monotonic(), (await server.stats())["rss_kib"]))

        await asyncio.gather(sampler(), *(worker(n) for n in range(40)))
        return samples, totals

    with LoadServer() as server:
        samples, totals = run("asyncio", main(server), timeout=SOAK_SECONDS + 300)
    assert len(samples) >= 3, samples
    warm = samples[0][1]
    peak = max(rss for _, rss in samples)
    print(f"soak: {totals['echoed']} echoes, {totals['opened']} WebSockets opened; "
          f"server RSS {warm} KiB after warm-up, {samples[-1][1]} KiB at the end, peak {peak} KiB: "
          f"{[rss for _, rss in samples]}")
    assert totals["echoed"] > 20 * SOAK_SECONDS          # traffic flowed all along (~120/s here)
    assert peak < warm * 1.05, f"server RSS grew from {warm} to {peak} KiB after warm-up: {samples}"
