"""ASGI servers against ws2fast's, the application unchanged: the bare ASGI echo
(tests/interop/asgi_echo.py) under ``python -m ws2fast asgi`` (HTTP/2 and HTTP/1.1), uvicorn
(``--http httptools --loop uvloop``, its default WebSocket implementation; HTTP/1.1), hypercorn
(HTTP/2 and HTTP/1.1) and granian (``--interface asgi --loop uvloop``; WebSockets over HTTP/1.1
only), one worker each, and ws2fast's own ``async def`` echo server (bench/e2e_servers.py) as
the mark the ASGI path is held to (at least 0.7x of it).

- WebSocket echo, 64 B and 4 KiB, request-response (ROUND_TRIPS per round) and 100 in flight
  (MESSAGES per round); one client per HTTP version for every server: picows's over HTTP/1.1,
  ws2fast's callback client over HTTP/2 (the fastest of each, so that the client caps no one);
  client and server pinned to one CPU as in bench_e2e.py.
- Plain HTTP: a small GET, requests per second measured by C load generators, one per HTTP
  version for every server: wrk over HTTP/1.1 (10 keep-alive connections, SECONDS seconds;
  h2load's HTTP/1.1 parser refuses hypercorn's empty reason phrase) and h2load over HTTP/2
  (10 connections of 10 streams, REQUESTS requests, cleartext prior knowledge).

Targets (issue 19): with 100 in flight at 64 B, ws2fast over HTTP/2 and over HTTP/1.1 each at
least 2x uvicorn and 5x hypercorn over HTTP/2; ahead of uvicorn and hypercorn in
request-response; ahead of hypercorn in requests per second on both versions.

Run: ``python -m pytest bench/bench_asgi.py --benchmark-enable -s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bench.bench_e2e import CPU, SIZES, PicowsClient, Ws2fastListenerClient, _free_port, _pinned_loop, measure_echo
from tests.interop.test_uvicorn import wait_ready

ROOT = Path(__file__).resolve().parents[1]
APP = "tests.interop.asgi_echo:asgi_echo"
REQUESTS = int(os.environ.get("WS2FAST_BENCH_REQUESTS", "50000"))
SECONDS = int(os.environ.get("WS2FAST_BENCH_SECONDS", "5"))


def _command(server: str, port: int) -> list[str]:
    if server.startswith("ws2fast-asgi"):
        return [sys.executable, "-m", "ws2fast", "asgi", APP, "--port", str(port), "--lifespan", "off",
                "--log-level", "warning", "--ws-ping-interval", "0",
                "--loop", "asyncio" if server.endswith("asyncio") else "uvloop"]
    if server == "uvicorn":
        return [sys.executable, "-m", "uvicorn", APP, "--http", "httptools", "--loop", "uvloop", "--host",
                "127.0.0.1", "--port", str(port), "--lifespan", "off", "--log-level", "warning",
                "--no-access-log", "--ws-ping-interval", "0", "--backlog", "4096"]
    if server == "hypercorn":
        # (hypercorn ends a connection after 1000 requests by default: h2load does not reconnect)
        return [sys.executable, "-m", "hypercorn", APP, "--bind", f"127.0.0.1:{port}", "--log-level", "warning",
                "--config", f"python:{__name__}.HypercornSettings"]
    if server == "granian":
        return [sys.executable, "-m", "granian", "--interface", "asgi", "--loop", "uvloop", "--host", "127.0.0.1",
                "--port", str(port), "--http", "auto", "--workers", "1", "--runtime-threads", "1",
                "--log-level", "warning", "--no-access-log", APP]
    if server == "ws2fast-native":
        return [sys.executable, str(Path(__file__).with_name("e2e_servers.py")), "ws2fast", str(port)]
    raise AssertionError(server)


class HypercornSettings:
    """hypercorn ``--config python:bench.bench_asgi.HypercornSettings``."""

    keep_alive_max_requests = 10**9


@pytest.fixture(scope="module")
def servers():
    """Start each server once (pinned), yield a port getter, stop them by PID."""
    started: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    taskset = shutil.which("taskset")

    def get(name: str) -> int:
        if name not in started:
            if name in ("uvicorn", "hypercorn", "granian"):
                pytest.importorskip(name, reason=f"{name} is not installed")
            port = _free_port()
            command = _command(name, port)
            if taskset:
                command = [taskset, "-c", ",".join(map(str, CPU)), *command]
            # (a session of its own: granian runs its worker in a child process, which must
            # stop with it)
            process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                       env={**os.environ, "PYTHONPATH": str(ROOT)}, start_new_session=True)
            started[name] = (process, port)
            wait_ready(port, process)
        return started[name][1]

    yield get
    for process, _ in started.values():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)          # the server and whatever it started
        process.wait()


# server, HTTP version (the client follows from it)
WEBSOCKET_CASES = {
    "ws2fast-asgi-h2": ("ws2fast-asgi", 2), "ws2fast-asgi-h1": ("ws2fast-asgi", 1),
    "ws2fast-asgi-asyncio-h2": ("ws2fast-asgi-asyncio", 2), "ws2fast-asgi-asyncio-h1": ("ws2fast-asgi-asyncio", 1),
    "ws2fast-native-h2": ("ws2fast-native", 2), "ws2fast-native-h1": ("ws2fast-native", 1),
    "uvicorn-h1": ("uvicorn", 1), "hypercorn-h2": ("hypercorn", 2), "hypercorn-h1": ("hypercorn", 1),
    "granian-h1": ("granian", 1),
}


@pytest.mark.parametrize("case", list(WEBSOCKET_CASES))
@pytest.mark.parametrize("mode", ["request-response", "pipelined"])
@pytest.mark.parametrize("size", SIZES)
def test_asgi_websocket_echo(benchmark, servers, case, mode, size):
    pytest.importorskip("picows", reason="picows is not installed")
    server, version = WEBSOCKET_CASES[case]
    port = servers(server)
    with _pinned_loop() as loop:
        if version == 2:
            client: PicowsClient = Ws2fastListenerClient()
            loop.run_until_complete(asyncio.wait_for(client.connect(port, True), 30))    # type: ignore[call-arg]
        else:
            client = PicowsClient()
            loop.run_until_complete(asyncio.wait_for(client.connect(port), 30))
        measure_echo(benchmark, loop, client, mode, size, "ASGI echo")


# -- plain HTTP requests per second ----------------------------------------------------------------

HTTP_CASES = {
    "ws2fast-asgi-h2": ("ws2fast-asgi", 2), "ws2fast-asgi-h1": ("ws2fast-asgi", 1),
    "uvicorn-h1": ("uvicorn", 1), "hypercorn-h2": ("hypercorn", 2), "hypercorn-h1": ("hypercorn", 1),
    "granian-h2": ("granian", 2), "granian-h1": ("granian", 1),
}


def _pinned(command: list[str]) -> list[str]:
    taskset = shutil.which("taskset")
    return [taskset, "-c", ",".join(map(str, CPU)), *command] if taskset else command


def h2load(port: int, requests: int) -> float:
    """HTTP/2: requests per second of h2load's GETs of ``/`` (all must succeed with 200)."""
    binary = shutil.which("h2load")
    if binary is None:
        pytest.skip("h2load is not installed (Debian package nghttp2-client)")
    command = _pinned([binary, "-n", str(requests), "-c", "10", "-m", "10", f"http://127.0.0.1:{port}/"])
    out = subprocess.run(command, capture_output=True, text=True, timeout=300).stdout
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed", out)
    status = re.search(r"status codes: (\d+) 2xx", out)
    rate = re.search(r"finished in [\d.]+m?s, ([\d.]+) req/s", out)
    assert done and status and rate, out
    assert int(done.group(2)) == requests and int(status.group(1)) == requests, out
    assert "Application protocol: h2c" in out, out
    return float(rate.group(1))


def wrk(port: int, seconds: int) -> float:
    """HTTP/1.1: requests per second of wrk's keep-alive GETs of ``/`` (no error, no non-2xx)."""
    binary = shutil.which("wrk")
    if binary is None:
        pytest.skip("wrk is not installed (Debian package wrk)")
    command = _pinned([binary, "-t1", "-c10", f"-d{seconds}s", f"http://127.0.0.1:{port}/"])
    out = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert rate and "Non-2xx" not in out and "Socket errors" not in out, out
    assert int(re.search(r"(\d+) requests in", out).group(1)) > 0, out  # type: ignore[union-attr]
    return float(rate.group(1))


@pytest.mark.parametrize("case", list(HTTP_CASES))
def test_asgi_http_requests_per_second(benchmark, servers, case):
    server, version = HTTP_CASES[case]
    port = servers(server)
    requests = REQUESTS if not benchmark.disabled else 2000
    seconds = SECONDS if not benchmark.disabled else 1
    rates: list[float] = []
    benchmark.group = ("ASGI small GET over HTTP/2: h2load, 10 connections x 10 streams" if version == 2 else
                       "ASGI small GET over HTTP/1.1: wrk, 10 connections") + " (one CPU)"

    def one() -> None:
        rates.append(h2load(port, requests) if version == 2 else wrk(port, seconds))

    benchmark.pedantic(one, rounds=1, iterations=1)
    benchmark.extra_info["requests_per_second"] = round(rates[0])
    print(f"\n{case}: {rates[0]:.0f} requests/s")
