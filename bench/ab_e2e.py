"""End to end, two builds of ws2fast in alternating rounds, so that a shared machine's drift
hits both alike:

    python bench/ab_e2e.py --a /path/to/base --b /path/to/change [--rounds 8]

Each path is put first on ``PYTHONPATH`` (build each in place: ``python setup.py build_ext
--inplace``).  A round runs, for each build in turn (the order flips every round), the
coroutine echo server of ``bench/e2e_servers.py`` and a coroutine client of the same build on
127.0.0.1, over HTTP/2 and HTTP/1.1: request-response (one message in flight) and 100 in
flight, 64-byte messages.  Prints messages/s per round, then each build's median and spread
(min-max) and the ratio of medians.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PAYLOAD = bytes(64)
CASES = [("h2", "rr", 3000), ("h2", "100", 30000), ("h1", "rr", 3000), ("h1", "100", 30000)]


async def _client(port: int, http: str, mode: str, n: int) -> float:
    import ws2fast
    ws = await ws2fast.connect(f"ws://127.0.0.1:{port}/", http2=http == "h2",
                               config=ws2fast.Config(ping_interval=None))
    for _ in range(200):                                    # warm up
        await ws.send(PAYLOAD)
        await ws.recv()
    window = 1 if mode == "rr" else 100
    start = time.perf_counter()
    sent = 0
    for _ in range(window):
        await ws.send(PAYLOAD)
        sent += 1
    for _ in range(n):
        assert len(await ws.recv()) == len(PAYLOAD)
        if sent < n:
            await ws.send(PAYLOAD)
            sent += 1
    elapsed = time.perf_counter() - start
    await ws.close()
    return n / elapsed


def _measure(build: str, case: tuple[str, str, int]) -> float:
    env = dict(os.environ, PYTHONPATH=build)
    port = 20000 + os.getpid() % 20000
    server = subprocess.Popen([sys.executable, str(HERE / "e2e_servers.py"), "ws2fast", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert server.stdout is not None
        if server.stdout.readline().strip() != "ready":
            raise RuntimeError(f"server from {build} did not start: {server.stderr.read() if server.stderr else ''}")
        out = subprocess.run([sys.executable, __file__, "--client", str(port), *map(str, case)],
                             env=env, capture_output=True, text=True, timeout=300, check=True)
        return float(out.stdout.strip())
    finally:
        server.kill()
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--a")
    parser.add_argument("--b")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--client", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        port, http, mode, n = args.client
        print(asyncio.run(_client(int(port), http, mode, int(n))))
        return
    results: dict[tuple[str, str], list[float]] = {}
    for r in range(args.rounds):
        order = [("a", args.a), ("b", args.b)] if r % 2 == 0 else [("b", args.b), ("a", args.a)]
        line = []
        for label, build in order:
            for case in CASES:
                rate = _measure(build, case)
                results.setdefault((label, f"{case[0]}-{case[1]}"), []).append(rate)
                line.append(f"{label}:{case[0]}-{case[1]}={rate:,.0f}")
        print(f"round {r + 1}: " + "  ".join(line), flush=True)
    print(f"\n{'case':8} {'a median':>10} {'a spread':>18} {'b median':>10} {'b spread':>18} {'b/a':>6}")
    for case in CASES:
        name = f"{case[0]}-{case[1]}"
        a, b = results[("a", name)], results[("b", name)]
        ma, mb = statistics.median(a), statistics.median(b)
        print(f"{name:8} {ma:10,.0f} {min(a):8,.0f}-{max(a):<9,.0f} {mb:10,.0f} "
              f"{min(b):8,.0f}-{max(b):<9,.0f} {mb / ma:6.3f}")


if __name__ == "__main__":
    main()
