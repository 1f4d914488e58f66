"""``connect(early=True)`` against real peers, real processes on 127.0.0.1: which of them accept
a speculative extended CONNECT (sent with the preface, before their SETTINGS), which refuse it
and take it again on the same connection once their SETTINGS are acknowledged, and which do not
speak RFC 8441 (fall back to HTTP/1.1 on a new connection).  For each, the path taken is
asserted, and that every early message was echoed exactly once.

- hypercorn (the h2 library) serving an ASGI echo over cleartext HTTP/2;
- Node.js's http2 server with enableConnectProtocol, and without it (then with allowHTTP1 over
  TLS, the HTTP/1.1 Upgrade handled by the script);
- HAProxy as the HTTP/2 front of our HTTP/1.1 echo server, normally and with
  ``h2-workaround-bogus-websocket-clients`` (it then stops advertising the setting);
- nghttpx (Debian's nghttp2-proxy) in front of our HTTP/1.1 echo server.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import ws2fast
from tests.aio_helpers import client_context, make_certificate, run
from ws2fast.capabilities import EARLY, NONE, STRICT, CapabilityCache, capability_cache

ROOT = Path(__file__).resolve().parents[2]
NODE_SCRIPT = Path(__file__).with_name("node_rfc8441.js")
MESSAGES = ["first", b"\x00\x01second", "third" * 100, b"4" * 70000]   # the last outruns 65,535


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, process: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if process.poll() is not None:
                out = process.stdout.read().decode(errors="replace") if process.stdout else ""
                raise AssertionError(f"{what} exited: {out}") from None
            assert time.monotonic() < deadline, f"{what} did not start listening"
            time.sleep(0.05)


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()


def _binary(name: str, package: str) -> str:
    path = shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.path.exists(p)), None)
    if path is None:
        pytest.skip(f"{name} is not installed (Debian package {package})")
    return path


async def _early_exchange(uri: str, **kwargs) -> tuple[str, int, list, str | None]:
    """Open early, send MESSAGES before any answer, read their echoes and one more (a marker:
    a message echoed twice would come before it).  (http_version, stream id, echoes, what the
    capability cache learnt)."""
    capability_cache.clear()
    ws = await ws2fast.connect(uri, early=True, **kwargs)
    for message in MESSAGES:
        await ws.send(message)
    await ws.send("marker")
    echoes = [await asyncio.wait_for(ws.recv(), 10) for _ in range(len(MESSAGES) + 1)]
    version, stream = ws.http_version, ws.stream_id
    await ws.close()
    secure = uri.startswith("wss:")
    host, port = uri.split("//")[1].split("/")[0].rsplit(":", 1)
    learnt = capability_cache.get(CapabilityCache.origin("wss" if secure else "ws", host, int(port)))
    capability_cache.clear()
    return version, stream, echoes, learnt


def _assert_echoed_once(echoes: list) -> None:
    assert echoes == [*MESSAGES, "marker"]


async def _counting_echo_server():
    """Our HTTP/1.1 echo server, the backend of the proxies; counts what its handlers receive."""
    seen: list = []

    async def echo(ws):
        async for message in ws:
            seen.append(message)
            await ws.send(message)
    server = ws2fast.serve(echo, "127.0.0.1", 0)
    return server, seen


async def _through_proxy(command, what: str) -> tuple[tuple, list]:
    """Our counting HTTP/1.1 echo server behind a proxy (``command(front_port, backend_port)``
    is its command line): the early exchange through it, and what the backend's handlers got."""
    serving, seen = await _counting_echo_server()
    async with serving as server:
        front = _free_port()
        process = subprocess.Popen(command(front, server.port), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            await asyncio.to_thread(_wait_port, front, process, what)
            result = await _early_exchange(f"ws://127.0.0.1:{front}/", http2=True)
        finally:
            _stop(process)
    return result, seen


# -- hypercorn (h2 + wsproto) ----------------------------------------------------------------------

def test_hypercorn():
    pytest.importorskip("hypercorn")

    async def main():
        port = _free_port()
        process = subprocess.Popen([sys.executable, "-m", "bench.e2e_servers", "hypercorn", str(port)],
                                   cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            await asyncio.to_thread(_wait_port, port, process, "hypercorn")
            return await _early_exchange(f"ws://127.0.0.1:{port}/", http2=True)
        finally:
            _stop(process)
    version, stream, echoes, learnt = run("asyncio", main(), timeout=60)
    _assert_echoed_once(echoes)
    # hypercorn takes the speculative CONNECT (h2 does not hold it to the SETTINGS), but answers
    # 400 to DATA that arrives before its application accepted, which early messages sent with
    # the CONNECT nearly always do: then the WebSocket is opened again on the same connection,
    # strictly (the messages follow the 2xx), and the cache learns not to speculate there.
    assert (version, stream, learnt) in {("HTTP/2", 3, STRICT), ("HTTP/2", 1, EARLY)}


# -- Node.js http2 -----------------------------------------------------------------------------------

def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed")
    return node


@pytest.mark.parametrize("connect_protocol", [True, False])
def test_node_http2_server(connect_protocol, tmp_path):
    node = _node()
    cert, key = make_certificate(tmp_path)

    async def main():
        args = [node, str(NODE_SCRIPT), "server"] if connect_protocol else \
            [node, str(NODE_SCRIPT), "server-no-connect-protocol", str(cert), str(key)]
        process = await asyncio.create_subprocess_exec(*args, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        try:
            port = json.loads(await asyncio.wait_for(process.stdout.readline(), 30))["port"]
            if connect_protocol:
                return await _early_exchange(f"ws://127.0.0.1:{port}/", http2=True)
            return await _early_exchange(f"wss://localhost:{port}/", ssl=client_context(cert))
        finally:
            process.stdin.close()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except asyncio.TimeoutError:
                process.kill()
                await process.wait()
    version, stream, echoes, learnt = run("asyncio", main(), timeout=60)
    _assert_echoed_once(echoes)
    if connect_protocol:
        assert (version, stream, learnt) == ("HTTP/2", 1, EARLY)      # speculation accepted
    else:
        assert (version, learnt) == ("HTTP/1.1", NONE)


# -- HAProxy -------------------------------------------------------------------------------------------

def _haproxy_config(tmp_path: Path, front: int, backend: int, workaround: bool) -> Path:
    config = tmp_path / "haproxy.cfg"
    config.write_text(f"""
global
    maxconn 100
{"    h2-workaround-bogus-websocket-clients" if workaround else ""}
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    timeout tunnel 30s
frontend front
    # HTTP/1.1, and HTTP/2 by prior knowledge (HAProxy tells them apart by the preface)
    bind 127.0.0.1:{front}
    default_backend ours
backend ours
    server ours 127.0.0.1:{backend}
""")
    return config


@pytest.mark.parametrize("workaround", [False, True])
def test_haproxy_in_front_of_an_http11_server(workaround, tmp_path):
    binary = _binary("haproxy", "haproxy")

    def command(front: int, backend: int) -> list[str]:
        config = _haproxy_config(tmp_path, front, backend, workaround)
        check = subprocess.run([binary, "-c", "-f", str(config)], capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, check.stdout + check.stderr
        return [binary, "-db", "-f", str(config)]
    (version, stream, echoes, learnt), seen = run("asyncio", _through_proxy(command, "HAProxy"), timeout=60)
    _assert_echoed_once(echoes)
    assert seen == [*MESSAGES, "marker"]                 # the backend's handler: each message once
    # HAProxy 2.6 takes the speculative CONNECT even when it does not advertise the setting, but
    # now and then answers 500 to DATA that came with it (its log says "IH": an internal error
    # while waiting for the response; its backend saw nothing): then the WebSocket is opened
    # again strictly, on the same connection if HAProxy advertised the setting, else over
    # HTTP/1.1 on a new one.
    refused = ("HTTP/1.1", 0, NONE) if workaround else ("HTTP/2", 3, STRICT)
    assert (version, stream, learnt) in {PATHS[("haproxy", workaround)], refused}


# -- nghttpx -------------------------------------------------------------------------------------------

def test_nghttpx_in_front_of_an_http11_server(tmp_path):
    binary = _binary("nghttpx", "nghttp2-proxy")

    def command(front: int, backend: int) -> list[str]:
        return [binary, f"--frontend=127.0.0.1,{front};no-tls", f"--backend=127.0.0.1,{backend}",
                "--workers=1", "--conf=/dev/null", "--no-ocsp", f"--pid-file={tmp_path / 'nghttpx.pid'}",
                "--accesslog-file=/dev/null", f"--errorlog-file={tmp_path / 'error.log'}"]
    (version, stream, echoes, learnt), seen = run("asyncio", _through_proxy(command, "nghttpx"), timeout=60)
    _assert_echoed_once(echoes)
    assert seen == [*MESSAGES, "marker"]
    assert (version, stream, learnt) == PATHS[("nghttpx", False)]


# What each proxy does with a speculative CONNECT (measured; the README's table says the same).
PATHS = {
    ("haproxy", False): ("HTTP/2", 1, EARLY),
    ("haproxy", True): ("HTTP/2", 1, EARLY),
    ("nghttpx", False): ("HTTP/2", 1, EARLY),
}
