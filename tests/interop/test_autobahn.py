"""The Autobahn|Testsuite (wstest, Python 2.7), all cases of sections 1-7, 9, 10, 12 and 13,
four ways, and a fifth run against uvicorn with ws2fast's WebSocket class, on 127.0.0.1 only:

1. fuzzingclient (wstest as client) -> our server over HTTP/1.1;
2. fuzzingserver (wstest as server) <- our client over HTTP/1.1;
3. fuzzingclient -> HAProxy -> our server over HTTP/2 (HAProxy turns the Upgrade into an RFC 8441
   extended CONNECT);
4. our client over HTTP/2 -> HAProxy (h2c frontend) -> fuzzingserver over HTTP/1.1;
5. fuzzingclient -> ``uvicorn --ws ws2fast.uvicorn:WebSocketProtocol`` serving a bare ASGI echo,
   permessage-deflate on: sections 1-7, 9, 10, 12.1 and 13.1 (337 cases, under two minutes).

Every case must end OK, NON-STRICT or INFORMATIONAL, and the report must hold every case of those
sections (no exclusions).  wstest lives in a Python 2.7 virtualenv that .ci/run makes
(``.autobahn/``, or ``$WS2FAST_WSTEST``); its fuzzingserver runs through ``wstest_loopback.py``
so that it binds 127.0.0.1 only, and without its web UI.

A full run takes about a quarter of an hour here, nearly all of it wstest's own (single-threaded)
work, so the runs go two at a time (``WS2FAST_AUTOBAHN_PARALLEL``, default 2) in threads, each
with its own event loop, started together when the first of these tests asks; each test then
waits for its own run and checks its report.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

import ws2fast
from tests.aio_helpers import run
from tests.helpers import ROOT
from tests.interop.test_haproxy import HAProxy, _free_port, _haproxy
from ws2fast.exceptions import ConnectionClosed

CASES = ["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "9.*", "10.*", "12.*", "13.*"]
CASE_COUNT = 517            # the cases of those sections in autobahntestsuite 25.10.1
ACCEPTED = {"OK", "NON-STRICT", "INFORMATIONAL"}
CONFIG = ws2fast.Config(permessage_deflate=True, max_message_size=64 << 20, ping_interval=None,
                        compression_threshold=0, connection_window_size=16 << 20, initial_window_size=4 << 20)


def _wstest() -> str:
    path = os.environ.get("WS2FAST_WSTEST") or str(ROOT / ".autobahn" / "bin" / "wstest")
    if not os.path.exists(path):
        pytest.skip("wstest is not installed (.ci/run makes .autobahn/, a Python 2.7 virtualenv)")
    return path


def _check_report(outdir: Path, agent: str, count: int = CASE_COUNT) -> Counter:
    results = json.loads((outdir / "index.json").read_text())[agent]
    behaviors = Counter(case["behavior"] for case in results.values())
    bad = {k: v["behavior"] for k, v in results.items() if v["behavior"] not in ACCEPTED}
    bad_close = {k: v["behaviorClose"] for k, v in results.items() if v["behaviorClose"] not in ACCEPTED}
    assert not bad, f"cases not passed: {sorted(bad.items())[:20]}"
    assert not bad_close, f"closing behaviour not passed: {sorted(bad_close.items())[:20]}"
    assert len(results) == count, f"{len(results)} cases ran, not {count}"
    print(f"autobahn {agent}: {dict(behaviors)}")
    return behaviors


async def _echo(ws):
    async for message in ws:
        await ws.send(message)


def _fuzzingclient(wstest: str, url: str, agent: str, tmp_path: Path, cases: list[str] = CASES,
                   count: int = CASE_COUNT) -> Counter:
    outdir = tmp_path / f"report-{agent}"
    spec = tmp_path / f"client-{agent}.json"
    spec.write_text(json.dumps({"outdir": str(outdir), "servers": [{"agent": agent, "url": url}],
                                "cases": cases, "exclude-cases": [], "exclude-agent-cases": {}}))
    proc = subprocess.run([wstest, "-m", "fuzzingclient", "-s", str(spec)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=1500)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return _check_report(outdir, agent, count)


class FuzzingServer:
    def __init__(self, wstest: str, tmp_path: Path, agent: str) -> None:
        self.port = _free_port()
        self.outdir = tmp_path / f"report-{agent}"
        spec = tmp_path / f"server-{agent}.json"
        spec.write_text(json.dumps({"url": f"ws://127.0.0.1:{self.port}", "outdir": str(self.outdir),
                                    "cases": CASES, "exclude-cases": [], "exclude-agent-cases": {}}))
        # through the loopback wrapper, and without the web UI (it would take port 8080 of every
        # interface)
        python = str(Path(wstest).with_name("python"))
        self.process = subprocess.Popen([python, str(Path(__file__).with_name("wstest_loopback.py")), "-m",
                                         "fuzzingserver", "-s", str(spec), "--webport", "0"], cwd=tmp_path,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                assert self.process.poll() is None, "wstest fuzzingserver exited: " + \
                    self.process.stderr.read().decode(errors="replace")[-2000:]
                assert time.monotonic() < deadline, "wstest fuzzingserver did not listen"
                time.sleep(0.1)

    def stop(self) -> None:
        self.process.kill()
        self.process.communicate()


async def _run_cases(base: str, agent: str, http2: bool) -> None:
    async with ws2fast.connect(f"{base}/getCaseCount", http2=http2, config=CONFIG) as ws:
        count = int(await ws.recv())
    assert count == CASE_COUNT
    for case in range(1, count + 1):
        try:
            async with ws2fast.connect(f"{base}/runCase?case={case}&agent={agent}", http2=http2,
                                       config=CONFIG, open_timeout=30) as ws:
                await _echo(ws)
        except (ConnectionClosed, ConnectionError, OSError, asyncio.TimeoutError, ws2fast.exceptions.HandshakeFailed):
            pass                                  # cases that fail the connection on purpose
    async with ws2fast.connect(f"{base}/updateReports?agent={agent}", http2=http2, config=CONFIG) as ws:
        with pytest.raises(ConnectionClosed):
            await ws.recv()


def _server_h1(wstest: str, tmp_path: Path) -> Counter:
    async def main():
        async with ws2fast.serve(_echo, "127.0.0.1", 0, config=CONFIG) as server:
            return await asyncio.to_thread(_fuzzingclient, wstest, f"ws://127.0.0.1:{server.port}",
                                           "ws2fast-server-h1", tmp_path)
    return run("asyncio", main(), timeout=1800)


def _client_h1(wstest: str, tmp_path: Path) -> Counter:
    fuzzer = FuzzingServer(wstest, tmp_path, "ws2fast-client-h1")
    try:
        run("asyncio", _run_cases(f"ws://127.0.0.1:{fuzzer.port}", "ws2fast-client-h1", False), timeout=1800)
    finally:
        fuzzer.stop()
    return _check_report(fuzzer.outdir, "ws2fast-client-h1")


def _server_h2_through_haproxy(wstest: str, tmp_path: Path) -> Counter:
    binary = _haproxy()

    async def main():
        async with ws2fast.serve(_echo, "127.0.0.1", 0, config=CONFIG) as server:
            proxy = await asyncio.to_thread(HAProxy, binary, server.port, tmp_path)
            try:
                return await asyncio.to_thread(_fuzzingclient, wstest, f"ws://127.0.0.1:{proxy.h1_front}",
                                               "ws2fast-server-h2", tmp_path)
            finally:
                await asyncio.to_thread(proxy.stop)
    return run("asyncio", main(), timeout=1800)


def _client_h2_through_haproxy(wstest: str, tmp_path: Path) -> Counter:
    binary = _haproxy()
    fuzzer = FuzzingServer(wstest, tmp_path, "ws2fast-client-h2")
    try:
        proxy = HAProxy(binary, fuzzer.port, tmp_path)       # its h2c frontend -> HTTP/1.1 backend
        try:
            run("asyncio", _run_cases(f"ws://127.0.0.1:{proxy.h2_front}", "ws2fast-client-h2", True),
                timeout=1800)
        finally:
            proxy.stop()
    finally:
        fuzzer.stop()
    return _check_report(fuzzer.outdir, "ws2fast-client-h2")


def _uvicorn_server(wstest: str, tmp_path: Path) -> Counter:
    # uvicorn --ws ws2fast.uvicorn:WebSocketProtocol serving a bare ASGI echo, permessage-deflate
    # on (uvicorn's default); the sections that test what the class adds (the rest of 12 and 13
    # repeats what the runs above cover)
    from tests.interop.test_uvicorn import uvicorn_server
    with uvicorn_server("tests.interop.uvicorn_apps:asgi_echo", "--http", "httptools", "--ws-max-size",
                        str(64 << 20), "--ws-ping-interval", "0") as (port, _):
        return _fuzzingclient(wstest, f"ws://127.0.0.1:{port}", "ws2fast-uvicorn", tmp_path, UVICORN_CASES,
                              UVICORN_CASE_COUNT)


UVICORN_CASES = ["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "9.*", "10.*", "12.1.*", "13.1.*"]
UVICORN_CASE_COUNT = 337          # the cases of UVICORN_CASES in autobahntestsuite 25.10.1

RUNS = {"uvicorn": _uvicorn_server, "server-h1": _server_h1, "client-h1": _client_h1,
        "server-h2": _server_h2_through_haproxy, "client-h2": _client_h2_through_haproxy}


@pytest.fixture(scope="module")
def autobahn_runs(tmp_path_factory):
    """The runs, started together on first use, two at a time; name -> Future[Counter]."""
    wstest = _wstest()
    pool = ThreadPoolExecutor(max_workers=int(os.environ.get("WS2FAST_AUTOBAHN_PARALLEL", "2")),
                              thread_name_prefix="autobahn")
    futures = {name: pool.submit(fn, wstest, tmp_path_factory.mktemp(f"autobahn-{name}"))
               for name, fn in RUNS.items()}
    try:
        yield futures
    finally:
        for future in futures.values():
            future.cancel()                 # those not started; a started one ends by its timeout
        pool.shutdown(wait=True)


def _result(futures: dict[str, Future], name: str) -> Counter:
    counts = futures[name].result(timeout=3600)
    assert sum(counts.values()) == CASE_COUNT and set(counts) <= ACCEPTED, counts
    return counts


def test_autobahn_fuzzingclient_against_our_server_over_http1(autobahn_runs):
    _result(autobahn_runs, "server-h1")


def test_autobahn_fuzzingserver_against_our_client_over_http1(autobahn_runs):
    _result(autobahn_runs, "client-h1")


def test_autobahn_fuzzingclient_through_haproxy_to_our_server_over_http2(autobahn_runs):
    _result(autobahn_runs, "server-h2")


def test_autobahn_fuzzingserver_against_our_client_over_http2_through_haproxy(autobahn_runs):
    _result(autobahn_runs, "client-h2")


def test_autobahn_fuzzingclient_against_uvicorn_with_our_websocket_protocol(autobahn_runs):
    counts = autobahn_runs["uvicorn"].result(timeout=3600)
    assert sum(counts.values()) == UVICORN_CASE_COUNT and set(counts) <= ACCEPTED, counts
