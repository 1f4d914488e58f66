"""HAProxy (Debian's package) between our peers, both ways, over real sockets on 127.0.0.1:

- an HTTP/2 client (ours) -> HAProxy (h2c frontend, RFC 8441) -> our server over HTTP/1.1;
- an HTTP/1.1 client (websockets, and ours) -> HAProxy -> our server over HTTP/2
  (``server ... proto h2``): HAProxy is then the RFC 8441 client; it sends sec-websocket-key,
  and ends its side with an empty DATA frame after the close.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time

import pytest
from websockets.asyncio.client import connect as ws_connect

import ws2fast
from tests.aio_helpers import run

SIZES = [0, 1, 125, 126, 65535, 65536, 1 << 20]


def _haproxy() -> str:
    path = shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else None)
    if path is None:
        pytest.skip("HAProxy is not installed (Debian package haproxy)")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: the global and defaults sections of every HAProxy configuration the tests write
HAPROXY_DEFAULTS = """
global
    maxconn 200
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    timeout tunnel 30s"""


class HAProxy:
    """haproxy -db with two frontends: h2c -> HTTP/1.1 backend, HTTP/1.1 -> h2 backend."""

    def __init__(self, binary: str, backend_port: int, tmp_path) -> None:
        self.h2_front, self.h1_front = _free_port(), _free_port()
        config = tmp_path / "haproxy.cfg"
        config.write_text(HAPROXY_DEFAULTS + f"""
frontend h2_in
    bind 127.0.0.1:{self.h2_front} proto h2
    default_backend to_h1
backend to_h1
    # the backend's own host:port, as a reverse proxy would (wstest checks the Host port)
    http-request set-header host 127.0.0.1:{backend_port}
    server ours 127.0.0.1:{backend_port}
frontend h1_in
    bind 127.0.0.1:{self.h1_front}
    default_backend to_h2
backend to_h2
    server ours 127.0.0.1:{backend_port} proto h2
""")
        check = subprocess.run([binary, "-c", "-f", str(config)], capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, check.stdout + check.stderr
        self.process = subprocess.Popen([binary, "-db", "-f", str(config)], stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        for port in (self.h2_front, self.h1_front):
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    assert self.process.poll() is None, self.process.stdout.read().decode()
                    assert time.monotonic() < deadline, "HAProxy did not start listening"
                    time.sleep(0.05)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.communicate()


def _messages():
    for i, size in enumerate(SIZES):
        yield ("ß" * (size // 2) + "y" * (size % 2)) if i % 2 else os.urandom(size)


def test_through_haproxy_both_ways(loop_kind, tmp_path):
    binary = _haproxy()

    async def main():
        seen = []

        async def echo(ws):
            seen.append((ws.http_version, ws.path, dict(ws.request_headers).get(b"sec-websocket-key") is not None))
            async for message in ws:
                await ws.send(message)

        async with ws2fast.serve(echo, "127.0.0.1", 0) as server:
            proxy = await asyncio.to_thread(HAProxy, binary, server.port, tmp_path)
            try:
                # 1. our HTTP/2 client -> HAProxy (RFC 8441) -> our server over HTTP/1.1
                async with ws2fast.connect(f"ws://127.0.0.1:{proxy.h2_front}/via-h2", http2=True) as ws:
                    assert ws.http_version == "HTTP/2"
                    for message in _messages():
                        await ws.send(message)
                        assert await ws.recv() == message
                assert ws.close_code == 1000
                # 2. the websockets client (HTTP/1.1) -> HAProxy -> our server over HTTP/2
                async with ws_connect(f"ws://127.0.0.1:{proxy.h1_front}/via-h1", max_size=2 << 20,
                                      compression=None) as client:
                    for message in _messages():
                        await client.send(message)
                        assert await client.recv() == message
                assert client.close_code == 1000
                # 3. our HTTP/1.1 client -> HAProxy -> our server over HTTP/2
                async with ws2fast.connect(f"ws://127.0.0.1:{proxy.h1_front}/ours-h1") as ws:
                    assert ws.http_version == "HTTP/1.1"
                    await ws.send("through")
                    assert await ws.recv() == "through"
                await asyncio.sleep(0.2)
                # HAProxy ended its side of the HTTP/2 streams: none is left open on our server
                for conn in server.connections:
                    if conn.http_version == "HTTP/2":
                        assert conn.engine.streams == {}, conn.engine.streams
            finally:
                await asyncio.to_thread(proxy.stop)
        assert ("HTTP/1.1", "/via-h2", True) in seen
        assert ("HTTP/2", "/via-h1", True) in seen         # HAProxy sends sec-websocket-key
        assert ("HTTP/2", "/ours-h1", True) in seen
    run(loop_kind, main(), timeout=90)
