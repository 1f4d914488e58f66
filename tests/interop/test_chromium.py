"""Chromium (Debian's package, headless) against our server: a page loaded over TLS + HTTP/2
opens wss:// WebSockets, which must ride that HTTP/2 connection (RFC 8441); messages of 0 B to
1 MiB, text (non-ASCII) and binary, every echo checked in the page, clean close with 1000.

Chromium uses HTTP/2 for a WebSocket only over TLS, and only when an HTTP/2 connection to the
origin that advertised SETTINGS_ENABLE_CONNECT_PROTOCOL exists: the page load makes it.  It
offers permessage-deflate, which the server accepts (RFC 7692), so every message of the exchange
is compressed both ways and inflated by the other side.  The page POSTs its report
to /result (``--dump-dom`` would return at the load event and kill the WebSockets).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path

import pytest

import ws2fast
from tests.aio_helpers import run, server_context

PAGE = Path(__file__).with_name("chromium_page.html").read_bytes()


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("Chromium is not installed (Debian package chromium)")


def test_chromium_websockets_ride_the_pages_http2_connection(certificate, tmp_path):
    browser = _chromium()

    async def main():
        report = asyncio.get_running_loop().create_future()
        page_connections = []
        websockets = []

        def http(request):
            if request.method == "POST" and request.path == "/result":
                if not report.done():
                    report.set_result(json.loads(request.body))
                return 204, [], b""
            if request.path == "/":
                page_connections.append((request.connection, request.http_version))
                return 200, [(b"content-type", b"text/html; charset=utf-8")], PAGE
            return 404, [], b""

        async def echo(ws):
            websockets.append((ws._connection, ws.http_version, ws.request_headers))
            async for message in ws:
                await ws.send(message)

        async def process_request(request):
            flags.append((request.speculative, request.capability_announced))
        flags = []

        # (with the early-handshake options on: nothing changes for a browser, which never speculates)
        config = ws2fast.Config(permessage_deflate=True, compression_threshold=0, early_handshake=True,
                                announce_websocket_capability=True)
        async with ws2fast.serve(echo, "127.0.0.1", 0, ssl=server_context(*certificate), http_handler=http,
                                 config=config, process_request=process_request) as server:
            process = await asyncio.create_subprocess_exec(
                browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--ignore-certificate-errors", f"--user-data-dir={tmp_path / 'profile'}",
                f"https://127.0.0.1:{server.port}/",
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            exited = asyncio.ensure_future(process.wait())
            try:
                await asyncio.wait([report, exited], timeout=90, return_when=asyncio.FIRST_COMPLETED)
                if not report.done():
                    err = await process.stderr.read(20000) if exited.done() else b""
                    raise AssertionError(f"no report from the page (Chromium exit {process.returncode}): "
                                         + err.decode(errors="replace")[-3000:])
                result = report.result()
            finally:
                if process.returncode is None:
                    process.kill()
                await process.communicate()
                await exited
        assert "fatal" not in result, result
        assert result["mismatches"] == []
        assert result["echoes"] == 2 * 8 * 2
        assert result["closes"] == [[1000, True], [1000, True]]
        assert result["extensions"] == ["permessage-deflate", "permessage-deflate"]
        assert page_connections and page_connections[0][1] == "HTTP/2"
        page_connection = page_connections[0][0]
        assert len(websockets) == 2
        assert flags == [(False, False), (False, False)]    # Chromium neither speculates nor announces
        for connection, version, headers in websockets:
            assert version == "HTTP/2" and connection is page_connection
            assert any(n == b"sec-websocket-extensions" and b"permessage-deflate" in v for n, v in headers)
            assert all(s.deflate is not None for s in connection.engine.streams.values()) if connection.engine.streams \
                else True

    run("asyncio", main(), timeout=150)
