"""uvicorn with ``--ws ws2fast.uvicorn:WebSocketProtocol``, as users run it: the ``uvicorn``
command in a process of its own on 127.0.0.1, Starlette and FastAPI applications
(tests/interop/uvicorn_apps.py), under both of uvicorn's HTTP/1.1 protocols and both loops,
driven by the ``websockets`` client, a raw socket client (what is on the wire) and Chromium.

uvicorn's own WebSocket tests run against the class too: tests/interop/test_uvicorn_suite.py.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import websockets
from websockets.asyncio.client import connect
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

from tests.aio_helpers import run

ROOT = Path(__file__).resolve().parents[2]
WS = "ws2fast.uvicorn:WebSocketProtocol"


@contextmanager
def uvicorn_server(app: str, *options: str, env: dict[str, str] | None = None):
    """``uvicorn APP --ws ws2fast...`` on a listening socket of ours (``--fd``); yields (port,
    process).  Stopped by its PID (SIGINT: uvicorn's graceful shutdown), killed if it hangs."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", app, "--ws", WS, "--fd", str(listener.fileno()), "--lifespan", "off",
         "--log-level", "warning", *options],
        cwd=ROOT, pass_fds=[listener.fileno()], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env=dict(os.environ, **(env or {})))
    listener.close()
    try:
        wait_ready(port, process)
        yield port, process
    finally:
        stop_process(process, signal.SIGINT, 10)


def stop_process(process: subprocess.Popen, sig: int, timeout: float) -> None:
    """Stop a server by its PID: ``sig`` (its graceful shutdown), killed if it is still running
    after ``timeout``; its stdout pipe closed (tests/interop/test_asgi_server.py too)."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stdout is not None:
        process.stdout.close()


def wait_ready(port: int, process: subprocess.Popen) -> None:
    """Wait until the server on ``port`` answers an HTTP request (bench/bench_uvicorn.py and
    bench/bench_asgi.py too)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read().decode()[-3000:] if process.stdout is not None else ""
            raise AssertionError(f"the server exited with {process.returncode}: {output}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as probe:
                probe.sendall(b"GET /nothing HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
                if probe.recv(100).startswith(b"HTTP/1.1"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError("the server did not start")


SETUPS = [pytest.param(http, loop, id=f"{http}-{loop}")
          for http in ("h11", "httptools") for loop in ("asyncio", "uvloop")]


@pytest.mark.parametrize("app", ["starlette_app", "fastapi_app"])
@pytest.mark.parametrize(("http", "loop"), SETUPS)
def test_framework_routes_over_our_engine(app, http, loop):
    async def main(port):
        url = f"ws://127.0.0.1:{port}"
        async with connect(f"{url}/echo", max_size=None, compression=None) as ws:
            for size in (0, 1, 125, 126, 65535, 65536, 1 << 20):
                text = "é" * (size // 2) + "a" * (size % 2)
                await ws.send(text)
                assert await ws.recv() == text
                data = os.urandom(size)
                await ws.send(data)
                assert await ws.recv() == data
            # many in flight, in order
            for i in range(200):
                await ws.send(str(i))
            assert [await ws.recv() for _ in range(200)] == [str(i) for i in range(200)]
        assert ws.close_code == 1000
        async with connect(f"{url}/json") as ws:
            await ws.send(json.dumps({"a": [1, 2]}))
            assert json.loads(await ws.recv()) == {"got": {"a": [1, 2]}}
        async with connect(f"{url}/proto", subprotocols=["one", "two"]) as ws:
            assert ws.subprotocol == "two"
            assert await ws.recv() == "one,two"
        with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
            async with connect(f"{url}/deny"):
                pass
        assert refused.value.response.status_code == 403
        assert refused.value.response.body == b"no entry\n"
        async with connect(f"{url}/close") as ws:
            await ws.send("x")
            with pytest.raises(websockets.exceptions.ConnectionClosedError):
                await ws.recv()
        assert (ws.close_code, ws.close_reason) == (4001, "bye")
        async with connect(f"{url}/headers?q=1", additional_headers=[("x-thing", "v")]) as ws:
            scope = json.loads(await ws.recv())
        assert scope["http_version"] == "1.1" and scope["scheme"] == "ws"
        assert scope["path"] == "/headers" and scope["query_string"] == "q=1"
        assert ["x-thing", "v"] in scope["headers"] and all(n == n.lower() for n, _ in scope["headers"])
        assert scope["server"] == ["127.0.0.1", port] and scope["client"][0] == "127.0.0.1"

    with uvicorn_server(f"tests.interop.uvicorn_apps:{app}", "--http", http, "--loop", loop) as (port, _):
        run("asyncio", main(port), timeout=60)


@pytest.mark.parametrize(("http", "loop"), SETUPS)
def test_permessage_deflate_negotiated_and_compressed(http, loop):
    async def main(port):
        async with connect(f"ws://127.0.0.1:{port}/echo", extensions=[ClientPerMessageDeflateFactory()],
                           compression=None) as ws:
            assert [e.name for e in ws.protocol.extensions] == ["permessage-deflate"]
            header = ws.response.headers["sec-websocket-extensions"]
            assert header.startswith("permessage-deflate")
            for size in (10, 1000, 300_000):
                message = "abc" * size
                await ws.send(message)
                assert await ws.recv() == message
        async with connect(f"ws://127.0.0.1:{port}/echo", compression=None) as ws:     # no offer
            assert "sec-websocket-extensions" not in ws.response.headers
            await ws.send("plain")
            assert await ws.recv() == "plain"

    with uvicorn_server("tests.interop.uvicorn_apps:starlette_app", "--http", http, "--loop", loop) as (port, _):
        run("asyncio", main(port), timeout=30)


def test_no_deflate_when_disabled():
    async def main(port):
        async with connect(f"ws://127.0.0.1:{port}/echo", extensions=[ClientPerMessageDeflateFactory()],
                           compression=None) as ws:
            assert ws.protocol.extensions == []
            assert "sec-websocket-extensions" not in ws.response.headers

    with uvicorn_server("tests.interop.uvicorn_apps:starlette_app", "--ws-per-message-deflate", "false") as (port, _):
        run("asyncio", main(port), timeout=30)


def test_ws_max_size_closes_with_1009():
    async def main(port):
        async with connect(f"ws://127.0.0.1:{port}/echo", max_size=None, compression=None) as ws:
            await ws.send(b"x" * 1000)
            assert await ws.recv() == b"x" * 1000
            await ws.send(b"x" * 1001)
            with pytest.raises(websockets.exceptions.ConnectionClosedError):
                await ws.recv()
        assert ws.close_code == 1009

    with uvicorn_server("tests.interop.uvicorn_apps:starlette_app", "--ws-max-size", "1000") as (port, _):
        run("asyncio", main(port), timeout=30)


# -- on the wire: a raw client -------------------------------------------------------------------

def _raw_websocket(port: int, path: str = "/echo") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(f"GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nupgrade: websocket\r\nconnection: Upgrade\r\n"
                 f"sec-websocket-key: {key}\r\nsec-websocket-version: 13\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        assert chunk, head
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def _read_frame(sock: socket.socket) -> tuple[int, bytes]:
    def exactly(n):
        out = b""
        while len(out) < n:
            chunk = sock.recv(n - len(out))
            if not chunk:
                raise EOFError
            out += chunk
        return out
    first, second = exactly(2)
    length = second & 0x7F
    assert not second & 0x80, "a server's frames are not masked"
    if length == 126:
        length = int.from_bytes(exactly(2), "big")
    elif length == 127:
        length = int.from_bytes(exactly(8), "big")
    return first & 0x0F, exactly(length)


def _client_frame(opcode: int, payload: bytes) -> bytes:
    mask = os.urandom(4)
    assert len(payload) < 126
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def test_keepalive_pings_and_their_timeout():
    # ws_ping_interval 0.2 s: pings come; answered, the WebSocket stays; unanswered for
    # ws_ping_timeout, Close 1011 "keepalive ping timeout".
    with uvicorn_server("tests.interop.uvicorn_apps:starlette_app", "--ws-ping-interval", "0.2",
                        "--ws-ping-timeout", "0.5") as (port, _):
        sock = _raw_websocket(port)
        pings = 0
        start = time.monotonic()
        while time.monotonic() - start < 1.2:
            opcode, payload = _read_frame(sock)
            assert opcode == 0x9
            pings += 1
            sock.sendall(_client_frame(0xA, payload))
        assert pings >= 3
        # now silent: the next ping goes unanswered
        opcode, payload = _read_frame(sock)
        assert opcode == 0x9
        opcode, payload = _read_frame(sock)
        assert (opcode, payload[:2], payload[2:]) == (0x8, (1011).to_bytes(2, "big"), b"keepalive ping timeout")
        sock.close()


def test_no_pings_when_the_interval_is_off():
    with uvicorn_server("tests.interop.uvicorn_apps:starlette_app", "--ws-ping-interval", "0") as (port, _):
        sock = _raw_websocket(port)
        sock.settimeout(1.0)
        with pytest.raises(socket.timeout):
            _read_frame(sock)
        # the WebSocket is alive: an echo comes back
        sock.settimeout(5)
        sock.sendall(_client_frame(0x1, b"still here"))
        assert _read_frame(sock) == (0x1, b"still here")
        sock.close()


def test_shutdown_sends_1012_and_the_app_sees_it():
    with uvicorn_server("tests.interop.uvicorn_apps:starlette_app") as (port, process):
        sock = _raw_websocket(port)
        sock.sendall(_client_frame(0x1, b"hi"))
        assert _read_frame(sock) == (0x1, b"hi")
        process.send_signal(signal.SIGINT)
        opcode, payload = _read_frame(sock)
        assert (opcode, payload) == (0x8, (1012).to_bytes(2, "big"))
        sock.close()
        assert process.wait(10) == 0


def test_bad_handshakes_get_clear_answers():
    with uvicorn_server("tests.interop.uvicorn_apps:starlette_app") as (port, _):
        head = b"GET /echo HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\nconnection: upgrade\r\n"
        for request, status, text in [
            (head + b"sec-websocket-version: 13\r\n\r\n", b"400", b"missing Sec-WebSocket-Key header"),
            (head + b"sec-websocket-key: c2hvcnQ=\r\nsec-websocket-version: 13\r\n\r\n", b"400", b"16 bytes"),
            (head + b"sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 8\r\n\r\n", b"426",
             b"13"),
        ]:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(request)
                answer = b""
                while chunk := sock.recv(65536):          # the server closes after its answer
                    answer += chunk
            assert answer.startswith(b"HTTP/1.1 " + status), answer
            assert text in answer


def test_chromium_over_http1_against_fastapi(tmp_path):
    browser = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)),
                   None)
    if browser is None:
        pytest.skip("Chromium is not installed (Debian package chromium)")
    result = tmp_path / "result.json"
    with uvicorn_server("tests.interop.uvicorn_apps:fastapi_app", "--http", "httptools",
                        env={"WS2FAST_RESULT_FILE": str(result)}) as (port, _):
        process = subprocess.Popen(
            [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}", f"http://127.0.0.1:{port}/"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 90
            while not result.exists() and time.monotonic() < deadline and process.poll() is None:
                time.sleep(0.1)
            time.sleep(0.2)                     # (the file is written whole before the 204)
        finally:
            process.kill()
            _, err = process.communicate()
        assert result.exists(), err.decode(errors="replace")[-3000:]
    report = json.loads(result.read_text())
    assert "fatal" not in report, report
    assert report["mismatches"] == []
    assert report["echoes"] == 2 * 8 * 2
    assert report["closes"] == [[1000, True], [1000, True]]
    assert report["extensions"] == ["permessage-deflate", "permessage-deflate"]
