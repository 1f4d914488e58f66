"""The command line: ``python -m ws2fast serve | connect | demo | info``.

- ``serve``: echo on every WebSocket path (HTTP/2 and HTTP/1.1 on one port), and a small HTML
  page for any plain GET (or files from ``--static DIR``).
- ``connect URL``: an interactive client: stdin lines go out, messages are printed.
- ``demo``: a server on a free loopback port, several WebSockets over one HTTP/2 connection,
  what was negotiated, and a throughput summary.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import html
import mimetypes
import signal
import ssl as ssl_module
import sys
import time
from pathlib import Path
from typing import Any

from . import __version__
from .aio import Client, Request, WebSocket, connect, serve
from .errors import SettingCode

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>ws2fast</title></head>
<body><h1>ws2fast {version}</h1>
<p>You asked for <code>{path}</code> over {http_version}. Every WebSocket path here echoes.</p>
<pre id="log"></pre>
<script>
const log = (t) => document.getElementById("log").textContent += t + "\\n";
const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/echo");
ws.onopen = () => {{ log("open"); ws.send("hello from the page"); }};
ws.onmessage = (e) => log("echo: " + e.data);
ws.onclose = (e) => log("closed " + e.code);
</script></body></html>
"""


async def echo(ws: WebSocket) -> None:
    async for message in ws:
        await ws.send(message)


def _page(request: Request) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    if request.method not in ("GET", "HEAD"):
        return 405, [(b"allow", b"GET, HEAD"), (b"content-type", b"text/plain")], b"method not allowed\n"
    body = PAGE.format(version=__version__, path=html.escape(request.path), http_version=request.http_version)
    return 200, [(b"content-type", b"text/html; charset=utf-8")], body.encode()


def _static(root: Path) -> Any:
    root = root.resolve()

    def handler(request: Request) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        if request.method not in ("GET", "HEAD"):
            return 405, [(b"allow", b"GET, HEAD")], b""
        relative = request.path.split("?", 1)[0].lstrip("/") or "index.html"
        target = (root / relative).resolve()
        if root not in target.parents and target != root:
            return 404, [(b"content-type", b"text/plain")], b"not found\n"
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            return 404, [(b"content-type", b"text/plain")], b"not found\n"
        kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        return 200, [(b"content-type", kind.encode())], target.read_bytes()

    return handler


def _server_ssl(args: argparse.Namespace) -> ssl_module.SSLContext | None:
    if not args.certfile:
        return None
    context = ssl_module.SSLContext(ssl_module.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.certfile, args.keyfile)
    return context


async def _serve(args: argparse.Namespace) -> int:
    context = _server_ssl(args)
    http_handler = _static(Path(args.static)) if args.static else _page
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            asyncio.get_running_loop().add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    async with serve(echo, args.host, args.port, ssl=context, http_handler=http_handler) as server:
        scheme = "https" if context else "http"
        print(f"ws2fast {__version__} serving on {scheme}://{args.host}:{server.port}/ "
              f"(WebSockets echo on every path; HTTP/2 and HTTP/1.1)", flush=True)
        await stop
        print("shutting down: GOAWAY and close 1001 to every WebSocket", flush=True)
    return 0


async def _connect(args: argparse.Namespace) -> int:
    kwargs: dict[str, Any] = {}
    if args.cafile:
        kwargs["ssl"] = ssl_module.create_default_context(cafile=args.cafile)
    if args.http2:
        kwargs["http2"] = True
    async with connect(args.url, **kwargs) as ws:
        print(f"connected over {ws.http_version}" + (f", subprotocol {ws.subprotocol}" if ws.subprotocol else ""),
              flush=True)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

        async def printer() -> None:
            with contextlib.suppress(Exception):
                async for message in ws:
                    print(f"< {message!r}" if isinstance(message, bytes) else f"< {message}", flush=True)

        task = asyncio.ensure_future(printer())
        while True:
            line = await reader.readline()
            if not line:
                break
            await ws.send(line.decode("utf-8", "replace").rstrip("\n"))
        await asyncio.sleep(0.2)                      # let the last echoes arrive
        task.cancel()
    print(f"closed with {ws.close_code}", flush=True)
    return 0


def _bar(done: int, total: int, width: int = 30) -> str:
    filled = width * done // max(total, 1)
    return "[" + "#" * filled + "." * (width - filled) + f"] {done}/{total}"


async def _demo(args: argparse.Namespace) -> int:
    async def handler(ws: WebSocket) -> None:
        await echo(ws)

    async with serve(handler, "127.0.0.1", 0, subprotocols=["demo.v1"]) as server:
        origin = f"http://127.0.0.1:{server.port}"
        print(f"server: {origin} (cleartext; HTTP/2 by prior knowledge and HTTP/1.1 on one port)")
        async with Client(origin) as client:
            sockets = [await client.websocket(f"/demo/{i}", subprotocols=["demo.v1"]) for i in range(args.streams)]
            conn = sockets[0]._connection
            settings = {SettingCode(k).name if k in SettingCode._value2member_map_ else k: v
                        for k, v in conn.conn.remote_settings.items()}
            print(f"connection: {conn.http_version} by prior knowledge (no ALPN in cleartext), "
                  f"{len({id(ws._connection) for ws in sockets})} TCP connection for {len(sockets)} WebSockets")
            print(f"server SETTINGS: {settings}")
            print("each WebSocket: extended CONNECT with :protocol websocket (RFC 8441), "
                  f"subprotocol {sockets[0].subprotocol!r}, extensions {list(sockets[0].extensions) or 'none'}")
            print("streams: " + ", ".join(str(ws.stream_id) for ws in sockets))
            for size in (64, 4096):
                total = args.messages
                payload = b"x" * size
                done = 0
                start = time.perf_counter()
                deadline = start + args.seconds
                window = 100
                while done < total and time.perf_counter() < deadline:
                    batch = min(window, total - done)
                    for i in range(batch):
                        await sockets[i % len(sockets)].send(payload)
                    for i in range(batch):
                        await sockets[i % len(sockets)].recv()
                    done += batch
                    if done % (window * 20) == 0 or done == total:
                        print(f"\r  {size:>5} B echo {_bar(done, total)}", end="", flush=True)
                elapsed = time.perf_counter() - start
                print(f"\r  {size:>5} B echo {_bar(done, total)}  {done / elapsed:,.0f} msgs/s, "
                      f"{2 * done * size / elapsed / 1e6:,.1f} MB/s both ways", flush=True)
            for ws in sockets:
                await ws.close(1000)
            print(f"closed: {[ws.close_code for ws in sockets]} (close handshake, then END_STREAM both ways)")
    return 0


def main_commands(commands: Any) -> None:
    p = commands.add_parser("serve", help="echo WebSocket server (HTTP/2 and HTTP/1.1) with a small page")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--certfile")
    p.add_argument("--keyfile")
    p.add_argument("--static", help="serve this directory for plain GETs")
    p.set_defaults(run=lambda a: asyncio.run(_serve(a)))

    p = commands.add_parser("connect", help="interactive client: stdin lines out, messages printed")
    p.add_argument("url")
    p.add_argument("--cafile", help="trust this CA (e.g. a self-signed certificate)")
    p.add_argument("--http2", action="store_true", help="ws://: HTTP/2 by prior knowledge")
    p.set_defaults(run=lambda a: asyncio.run(_connect(a)))

    p = commands.add_parser("demo", help="several WebSockets over one HTTP/2 connection, on loopback")
    p.add_argument("--streams", type=int, default=4)
    p.add_argument("--messages", type=int, default=20000)
    p.add_argument("--seconds", type=float, default=5.0, help="stop each run after this long")
    p.set_defaults(run=lambda a: asyncio.run(_demo(a)))
