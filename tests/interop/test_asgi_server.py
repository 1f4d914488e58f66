"""``python -m ws2fast asgi`` as users run it: a process of its own on 127.0.0.1 serving the
Starlette and FastAPI applications of tests/interop/asgi_apps.py, driven by httpx (HTTP/1.1 and
HTTP/2), the ``websockets`` client, ws2fast's client over HTTP/2 (RFC 8441), Node's http2
module, and Chromium (a page over TLS and HTTP/2 whose wss:// WebSockets must ride the page's
connection); ``--workers 2`` supervised and shut down gracefully.  In-process tests of every
scope key and event rule: tests/test_asgi_server.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

httpx = pytest.importorskip("httpx", reason="httpx is not installed")

import websockets  # noqa: E402
from websockets.asyncio.client import connect as ws_connect  # noqa: E402

from tests.aio_helpers import run  # noqa: E402
from tests.interop.test_uvicorn import stop_process  # noqa: E402
from ws2fast.aio import connect as ws2fast_connect  # noqa: E402
from ws2fast.exceptions import HandshakeFailed  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
APPS = ["tests.interop.asgi_apps:starlette_app", "tests.interop.asgi_apps:fastapi_app"]
NODE_SCRIPT = Path(__file__).with_name("node_rfc8441.js")


@contextmanager
def asgi_server(app: str, *options: str, env: dict[str, str] | None = None,
                log: Path | None = None) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """``python -m ws2fast asgi APP --port 0``; yields (port, process) once it serves.  Stopped
    by its PID (SIGTERM: the graceful shutdown), killed if it hangs."""
    err = open(log, "wb") if log is not None else subprocess.DEVNULL     # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "ws2fast", "asgi", app, "--port", "0", "--log-level", "info", *options],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=err, env=dict(os.environ, **(env or {})))
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode()
        match = re.search(r"://127\.0\.0\.1:(\d+)/", line)
        assert match, f"no address announced (exit {process.poll()}): {line!r}" + (
            log.read_text()[-3000:] if log is not None else "")
        yield int(match.group(1)), process
    finally:
        stop_process(process, signal.SIGTERM, 30)
        if log is not None:
            err.close()  # type: ignore[union-attr]


def _client(version: str) -> Any:
    return httpx.AsyncClient(http1=version == "1.1", http2=version == "2", timeout=20)


@pytest.mark.parametrize("app", APPS, ids=["starlette", "fastapi"])
def test_http_routes_over_both_versions(app: str) -> None:
    body = os.urandom(3_000_000)

    async def main(port: int) -> None:
        base = f"http://127.0.0.1:{port}"
        for version in ("1.1", "2"):
            async with _client(version) as c:
                r = await c.get(base + "/hello")
                assert (r.status_code, r.text, r.http_version) == (200, f"hello over HTTP/{version}",
                                                                    f"HTTP/{version}")
                r = await c.post(base + "/upload", content=body)
                assert r.json()["size"] == len(body) and r.json()["sha256"] == hashlib.sha256(body).hexdigest()
                assert r.json()["parts"] > 1                           # streamed to the application

                async def chunks() -> Any:
                    for i in range(0, len(body), 100_000):
                        yield body[i:i + 100_000]
                r = await c.post(base + "/upload", content=chunks())   # no content-length
                assert r.json()["sha256"] == hashlib.sha256(body).hexdigest()
                async with c.stream("GET", base + "/stream") as response:
                    parts = [part async for part in response.aiter_bytes()]
                assert b"".join(parts) == b"".join(b"%d" % i * 10_000 for i in range(10))
                r = await c.get(base + "/big")
                assert r.content == b"b" * 5_000_000 and r.headers["content-length"] == "5000000"
                r = await c.get(base + "/items/42?q=x%20y")
                assert r.json() == {"id": 42, "q": "x y"}
                r = await c.get(base + "/nothing")
                assert r.status_code == 404
                r = await c.head(base + "/hello")
                assert r.status_code in (200, 405) and r.content == b""

    with asgi_server(app) as (port, _):
        run("asyncio", main(port), timeout=60)


@pytest.mark.parametrize("app", APPS, ids=["starlette", "fastapi"])
def test_websocket_routes_over_both_versions(app: str) -> None:
    async def main(port: int) -> None:
        base = f"ws://127.0.0.1:{port}"
        # RFC 6455, the websockets library
        async with ws_connect(base + "/echo") as ws:
            for message in ("héllo", b"\x00\xff" * 40_000):
                await ws.send(message)
                assert await ws.recv() == message
        async with ws_connect(base + "/json") as ws:
            await ws.send(json.dumps({"a": [1, 2]}))
            assert json.loads(await ws.recv()) == {"got": {"a": [1, 2]}}
        async with ws_connect(base + "/proto", subprotocols=["one", "two"]) as ws:  # type: ignore[list-item]
            assert ws.subprotocol == "two" and await ws.recv() == "one,two"
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with ws_connect(base + "/deny"):
                pass
        assert refused.value.response.status_code == 403 and refused.value.response.body == b"no entry\n"
        # RFC 8441, ws2fast's client over cleartext HTTP/2
        async with ws2fast_connect(base + "/echo", http2=True) as ws:
            assert ws.http_version == "HTTP/2"
            for message in ("héllo", b"\x00\xff" * 40_000):
                await ws.send(message)
                assert await ws.recv() == message
        async with ws2fast_connect(base + "/proto", http2=True, subprotocols=["one", "two"]) as ws:
            assert ws.subprotocol == "two" and await ws.recv() == "one,two"
        with pytest.raises(HandshakeFailed) as denied:
            async with ws2fast_connect(base + "/deny", http2=True):
                pass
        assert denied.value.status == 403 and denied.value.body == b"no entry\n"
        async with ws2fast_connect(base + "/close", http2=True) as ws:
            await ws.send("bye?")
            await ws.wait_closed()
            assert (ws.close_code, ws.close_reason) == (4001, "bye")
        async with ws2fast_connect(base + "/headers?x=1", http2=True) as ws:
            scope = json.loads(await ws.recv())
        assert scope["http_version"] == "2" and scope["query_string"] == "x=1"
        assert ["host", f"127.0.0.1:{port}"] in scope["headers"]

    with asgi_server(app) as (port, _):
        run("asyncio", main(port), timeout=60)


def test_node_http2_client() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed")
    with asgi_server(APPS[1]) as (port, _):
        out = subprocess.run([node, str(NODE_SCRIPT), "client", str(port), "3"], capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr.decode()
    result = json.loads(out.stdout.decode().strip().splitlines()[-1])
    assert result["errors"] == [] and result["settings"] == {"enableConnectProtocol": True}
    assert len(result["streams"]) == 3
    for report in result["streams"]:
        assert report["status"] == 200 and report["mismatched"] == 0 and report["echoed"] == 9
        assert report["close"] == 1000 and report["ended"] and report["rstCode"] == 0


def test_chromium_page_and_websockets_share_one_http2_connection(certificate: Any, tmp_path: Path) -> None:
    browser = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)),
                   None)
    if browser is None:
        pytest.skip("Chromium is not installed (Debian package chromium)")
    result = tmp_path / "result.json"
    cert, key = certificate
    with asgi_server(APPS[1], "--certfile", str(cert), "--keyfile", str(key),
                     env={"WS2FAST_RESULT_FILE": str(result)}, log=tmp_path / "server.log") as (port, _):
        process = subprocess.Popen(
            [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", "--ignore-certificate-errors", f"--user-data-dir={tmp_path / 'profile'}",
             f"https://127.0.0.1:{port}/"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 90
            while not result.exists() and time.monotonic() < deadline and process.poll() is None:
                time.sleep(0.1)
            time.sleep(0.2)
        finally:
            process.kill()
            _, err = process.communicate()
        assert result.exists(), err.decode(errors="replace")[-3000:]
    report = json.loads(result.read_text())
    assert "fatal" not in report, report
    assert report["mismatches"] == [] and report["echoes"] == 2 * 8 * 2
    assert report["closes"] == [[1000, True], [1000, True]]
    assert report["extensions"] == ["permessage-deflate", "permessage-deflate"]
    seen = report["seen"]
    (page,) = [s for s in seen if s[0] == "page"]
    sockets = [s for s in seen if s[0] == "websocket"]
    assert page[1] == "2" and len(sockets) == 2
    # extended CONNECT on the page's own connection: same HTTP/2 connection, same client port
    assert all(s[1] == "2" and s[2] == page[2] for s in sockets), seen


# -- the command line ----------------------------------------------------------------------------------


def test_command_line_failures(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "ws2fast", "asgi", "tests.interop.asgi_apps:nothing"], cwd=ROOT,
                         capture_output=True, timeout=60)
    assert out.returncode == 1 and b"no attribute 'nothing'" in out.stderr and b"Traceback" not in out.stderr
    out = subprocess.run([sys.executable, "-m", "ws2fast", "asgi", "tests.interop.asgi_apps:failing_startup",
                          "--port", "0"], cwd=ROOT, capture_output=True, timeout=60)
    assert out.returncode == 3 and b"the database is down" in out.stderr
    out = subprocess.run([sys.executable, "-m", "ws2fast", "asgi", APPS[0], "--keyfile", "k.pem"], cwd=ROOT,
                         capture_output=True, timeout=60)
    assert out.returncode == 1 and b"--keyfile needs --certfile" in out.stderr


def test_sigterm_finishes_requests_in_flight() -> None:
    async def main(port: int, process: subprocess.Popen[bytes]) -> None:
        async with _client("1.1") as c:
            slow = asyncio.ensure_future(c.get(f"http://127.0.0.1:{port}/slow"))
            await asyncio.sleep(0.3)
            process.send_signal(signal.SIGTERM)
            r = await slow
            assert (r.status_code, r.text) == (200, "slow done")

    with asgi_server(APPS[0]) as (port, process):
        run("asyncio", main(port, process), timeout=30)
        assert process.wait(20) == 0


# -- workers -------------------------------------------------------------------------------------------


def test_two_workers_serve_are_replaced_and_stop_gracefully(tmp_path: Path) -> None:
    log = tmp_path / "server.log"

    async def pids(port: int, count: int) -> set[int]:
        found: set[int] = set()
        for _ in range(count):
            async with _client("2") as c:      # a new connection each time: the kernel spreads them
                found.add(int((await c.get(f"http://127.0.0.1:{port}/pid")).text))
        return found

    async def graceful(port: int, process: subprocess.Popen[bytes]) -> None:
        async with _client("1.1") as c:
            slow = [asyncio.ensure_future(c.get(f"http://127.0.0.1:{port}/slow")) for _ in range(4)]
            await asyncio.sleep(0.3)
            process.send_signal(signal.SIGTERM)
            for r in await asyncio.gather(*slow):
                assert (r.status_code, r.text) == (200, "slow done")

    with asgi_server(APPS[0], "--workers", "2", log=log) as (port, process):
        first = run("asyncio", pids(port, 40), timeout=60)
        assert len(first) == 2 and process.pid not in first
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        now: set[int] = set()
        while time.monotonic() < deadline:
            try:
                now = run("asyncio", pids(port, 20), timeout=30)
            except (httpx.HTTPError, AssertionError):
                now = set()
            if len(now) == 2 and victim not in now:
                break
            time.sleep(0.2)
        assert len(now) == 2 and victim not in now and (now & first), (first, now)
        assert f"worker {victim} died" in log.read_text()
        run("asyncio", graceful(port, process), timeout=60)
        assert process.wait(30) == 0


# -- past one machine: HAProxy in front of two instances -----------------------------------------------


def test_haproxy_in_front_of_two_instances_http2_on_both_hops(tmp_path: Path) -> None:
    from tests.interop.test_haproxy import HAPROXY_DEFAULTS, _free_port, _haproxy

    binary = _haproxy()
    front = _free_port()

    async def main() -> tuple[set[int], list[Any]]:
        pids: set[int] = set()
        scopes = []
        base = f"127.0.0.1:{front}"
        async with _client("2") as c:
            for _ in range(6):
                r = await c.get(f"http://{base}/pid")
                assert r.http_version == "HTTP/2"
                pids.add(int(r.text))
        for _ in range(4):
            # RFC 8441 from us to HAProxy, and from HAProxy to the instance
            async with ws2fast_connect(f"ws://{base}/echo", http2=True) as ws:
                assert ws.http_version == "HTTP/2"
                await ws.send(b"x" * 70_000)
                assert await ws.recv() == b"x" * 70_000
            async with ws2fast_connect(f"ws://{base}/headers", http2=True) as ws:
                scopes.append(json.loads(await ws.recv()))
        return pids, scopes

    with asgi_server(APPS[1]) as (port_a, a), asgi_server(APPS[1]) as (port_b, b):
        config = tmp_path / "haproxy.cfg"
        config.write_text(HAPROXY_DEFAULTS + f"""
frontend h2_in
    bind 127.0.0.1:{front} proto h2
    default_backend instances
backend instances
    balance roundrobin
    server a 127.0.0.1:{port_a} proto h2
    server b 127.0.0.1:{port_b} proto h2
""")
        check = subprocess.run([binary, "-c", "-f", str(config)], capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, check.stdout + check.stderr
        proxy = subprocess.Popen([binary, "-db", "-f", str(config)], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", front), timeout=1).close()
                    break
                except OSError:
                    assert proxy.poll() is None and time.monotonic() < deadline, "HAProxy did not start"
                    time.sleep(0.05)
            pids, scopes = run("asyncio", main(), timeout=60)
        finally:
            proxy.kill()
            proxy.wait()
        assert pids == {a.pid, b.pid}                          # both instances served
    assert all(s["http_version"] == "2" for s in scopes)       # HAProxy -> instance: RFC 8441 too
