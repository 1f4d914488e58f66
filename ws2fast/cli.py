"""The command line: ``python -m ws2fast serve | asgi | connect | demo | info``.

- ``serve``: echo on every WebSocket path (HTTP/2 and HTTP/1.1 on one port), and a small HTML
  page for any plain GET (or files from ``--static DIR``).
- ``asgi module:app``: serve an ASGI application (see :mod:`ws2fast.asgi`).
- ``connect URL``: an interactive client: stdin lines go out, messages are printed.
- ``demo``: a server on a free loopback port, several WebSockets over one HTTP/2 connection,
  what was negotiated, and a throughput summary.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import html
import logging
import mimetypes
import signal
import socket
import ssl as ssl_module
import sys
import threading
import time
from pathlib import Path
from typing import Any

from . import __version__
from .aio import Client, Request, WebSocket, connect, serve
from .config import Config
from .errors import SettingCode
from .exceptions import ConnectionClosed, HandshakeFailed, InvalidURI

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


logger = logging.getLogger("ws2fast.cli")


async def echo(ws: WebSocket) -> None:
    async for message in ws:
        await ws.send(message)


async def _logged_echo(ws: WebSocket) -> None:
    """serve's handler: echo, with a line per WebSocket at INFO (--log-level info)."""
    peer = ws.remote_address
    logger.info("%s %s opened over %s (subprotocol %s, extensions %s)", peer, ws.path, ws.http_version,
                ws.subprotocol, list(ws.extensions) or "none")
    try:
        await echo(ws)
    finally:
        logger.info("%s %s closed with %s %s", peer, ws.path, ws.close_code, ws.close_reason)


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
        if args.keyfile:
            raise UsageError("--keyfile needs --certfile")
        return None
    context = ssl_module.SSLContext(ssl_module.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(args.certfile, args.keyfile)
    except FileNotFoundError as exc:
        raise UsageError(f"cannot read {exc.filename or args.certfile}: no such file") from None
    except (ssl_module.SSLError, OSError) as exc:
        raise UsageError(f"cannot load the certificate {args.certfile}"
                         + (f" with the key {args.keyfile}" if args.keyfile else "") + f": {exc}") from None
    return context


async def _serve(args: argparse.Namespace) -> int:
    context = _server_ssl(args)
    http_handler = _static(Path(args.static)) if args.static else _page
    config = Config(max_message_size=args.max_message_size or None, permessage_deflate=args.permessage_deflate)
    stop = asyncio.get_running_loop().create_future()

    def on_signal() -> None:
        if not stop.done():
            stop.set_result(None)

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            asyncio.get_running_loop().add_signal_handler(sig, on_signal)
    try:
        server = await serve(_logged_echo, args.host, args.port, ssl=context, http_handler=http_handler,
                             origins=args.origin, subprotocols=args.subprotocol or (), config=config)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise UsageError(f"cannot listen on {args.host}:{args.port}: the address is in use") from None
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    async with server:
        scheme = "https" if context else "http"
        print(f"ws2fast {__version__} serving on {scheme}://{args.host}:{server.port}/ "
              f"(WebSockets echo on every path; HTTP/2 and HTTP/1.1)", flush=True)
        await stop
        print("shutting down: GOAWAY and close 1001 to every WebSocket", flush=True)
    return 0


async def _connect(args: argparse.Namespace) -> int:
    kwargs: dict[str, Any] = {"subprotocols": args.subprotocol or ()}
    if args.cafile:
        try:
            kwargs["ssl"] = ssl_module.create_default_context(cafile=args.cafile)
        except FileNotFoundError:
            raise UsageError(f"cannot read {args.cafile}: no such file") from None
        except ssl_module.SSLError as exc:
            raise UsageError(f"cannot load {args.cafile} as a CA certificate: {exc}") from None
    if args.http2:
        kwargs["http2"] = True
    async with connect(args.url, **kwargs) as ws:
        print(f"connected over {ws.http_version}" + (f", subprotocol {ws.subprotocol}" if ws.subprotocol else ""),
              flush=True)
        lines = _stdin_lines()

        async def printer() -> None:
            with contextlib.suppress(Exception):
                async for message in ws:
                    print(f"< {message!r}" if isinstance(message, bytes) else f"< {message}", flush=True)

        task = asyncio.ensure_future(printer())
        while not ws.closed:
            line = await lines.get()
            if line is None:
                break
            await ws.send(line.rstrip("\n"))
        await asyncio.sleep(0.2)                      # let the last echoes arrive
        task.cancel()
    print(f"closed with {ws.close_code}" + (f" ({ws.close_reason})" if ws.close_reason else ""), flush=True)
    return 0


def _stdin_lines() -> asyncio.Queue[str | None]:
    """stdin's lines, read by a daemon thread (works for a terminal, a pipe, a file and
    /dev/null alike, which the loop's pipe transport does not); None at the end."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    def read() -> None:
        try:
            for line in sys.stdin:
                loop.call_soon_threadsafe(queue.put_nowait, line)
        except (OSError, ValueError, RuntimeError):
            pass                                # stdin closed, or the loop is gone
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(queue.put_nowait, None)

    threading.Thread(target=read, name="ws2fast-stdin", daemon=True).start()
    return queue


class _Progress:
    """A progress line that redraws itself on a terminal and prints once at the end otherwise."""

    def __init__(self, label: str, total: int, stream: Any = None) -> None:
        self.label, self.total = label, total
        self.stream = stream if stream is not None else sys.stdout
        self.live = self.stream.isatty()

    def update(self, done: int) -> None:
        if self.live:
            print(f"\r{self.label} {_bar(done, self.total)}", end="", file=self.stream, flush=True)

    def finish(self, done: int, summary: str) -> None:
        print(("\r" if self.live else "") + f"{self.label} {_bar(done, self.total)}  {summary}",
              file=self.stream, flush=True)


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
            conn = client.connection
            assert conn is not None
            # the server's SETTINGS as it sent them (RFC defaults for the rest are not shown)
            sent = conn.settings_received.result()
            settings = {SettingCode(k).name if k in SettingCode._value2member_map_ else k: v
                        for k, v in sent.items()}
            print(f"connection: {conn.http_version} by prior knowledge (no ALPN in cleartext), "
                  f"{len(client.connections)} TCP connection for {len(sockets)} WebSockets")
            print(f"server SETTINGS: {settings}")
            print("each WebSocket: extended CONNECT with :protocol websocket (RFC 8441), "
                  f"subprotocol {sockets[0].subprotocol!r}, extensions {list(sockets[0].extensions) or 'none'}")
            print("streams: " + ", ".join(str(ws.stream_id) for ws in sockets))
            for size in (64, 4096):
                total = args.messages
                payload = b"x" * size
                done = 0
                progress = _Progress(f"  {size:>5} B echo", total)
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
                    if done % (window * 20) == 0:
                        progress.update(done)
                elapsed = time.perf_counter() - start
                progress.finish(done, f"{done / elapsed:,.0f} msgs/s, "
                                      f"{2 * done * size / elapsed / 1e6:,.1f} MB/s both ways")
            for ws in sockets:
                await ws.close(1000)
            print(f"closed: {[ws.close_code for ws in sockets]} (close handshake, then END_STREAM both ways)")
    return 0


class UsageError(Exception):
    """An ordinary mistake or condition (a file missing, a port taken): one line, exit 1."""


def _in_range(low: int, high: int | None) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(
                f"must be from {low} to {high}, not {value}" if high is not None
                else f"must be at least {low}, not {value}")
        return value
    return parse


class _Help(argparse.HelpFormatter):
    """Every option's help ends with its default ("off" for a flag, unless the help says it)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default is argparse.SUPPRESS or not action.option_strings:
            return text
        if isinstance(action, argparse._StoreTrueAction):
            return text + " (default: off)"
        return text + " (default: %(default)s)"


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text}")
    return value


async def _interruptible(coro: Any) -> int:
    # Ctrl-C cancels this task (asyncio.run's SIGINT handler).  Before Python 3.12,
    # asyncio.wait_for swallows a cancellation that lands as what it waits for completes (a
    # close handshake finishing as Ctrl-C comes): the request still counts, so end as cancelled
    # and asyncio.run turns it into KeyboardInterrupt, exit 130, whatever swallowed it.
    result: int = await coro
    cancelling = getattr(asyncio.current_task(), "cancelling", None)    # (Python >= 3.11)
    if cancelling is not None and cancelling():
        raise asyncio.CancelledError
    return result


def run(command: Any, args: argparse.Namespace) -> int:
    """Run a command's coroutine; ordinary failures become one line on stderr and exit 1,
    Ctrl-C exits 130, both without a traceback."""
    logging.basicConfig(level=getattr(args, "log_level", "WARNING"), format="%(levelname)s %(name)s: %(message)s")
    try:
        return asyncio.run(_interruptible(command(args)))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        message = _describe(exc, args)
        if message is None:
            raise
        print(f"ws2fast {args.command}: {message}", file=sys.stderr)
        return 1


def _describe(exc: BaseException, args: argparse.Namespace) -> str | None:
    """One line for an ordinary failure, or None for a bug (which keeps its traceback)."""
    target = getattr(args, "url", None) or f"{getattr(args, 'host', '')}:{getattr(args, 'port', '')}"
    if isinstance(exc, UsageError):
        return str(exc)
    if isinstance(exc, HandshakeFailed):
        if exc.status:
            detail = "" if str(exc) == f"the server answered {exc.status}" else f" ({exc})"
            return f"{target} is not a WebSocket endpoint: the server answered {exc.status}{detail}"
        return f"{target}: the WebSocket handshake failed: {exc}"
    if isinstance(exc, InvalidURI):
        return str(exc)
    if isinstance(exc, ssl_module.SSLCertVerificationError):
        return f"{target}: the server's certificate is not trusted: {exc.verify_message} (--cafile trusts a CA)"
    if isinstance(exc, ssl_module.SSLError):
        return f"{target}: TLS failed: {exc.reason or exc}"
    if isinstance(exc, ConnectionRefusedError):
        return f"cannot connect to {target}: connection refused"
    if isinstance(exc, socket.gaierror):
        return f"cannot connect to {target}: {exc.strerror}"
    if isinstance(exc, asyncio.TimeoutError):
        return f"{target}: timed out" + (f" ({exc})" if str(exc) else "")
    if isinstance(exc, ConnectionClosed):
        return f"{target}: the connection closed ({exc})"
    if isinstance(exc, (ConnectionError, OSError)):
        return f"{target}: {exc.strerror or exc}" if isinstance(exc, OSError) else f"{target}: {exc}"
    return None


def _log_level_option(parser: argparse.ArgumentParser, who: str) -> None:
    parser.add_argument("--log-level", default="WARNING", type=str.upper,
                        choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], help=f"what {who} logs")


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not true or false")


def _seconds_or_none(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of seconds, not {text}")
    return value or None


def _asgi_parser(commands: Any) -> None:
    p = commands.add_parser(
        "asgi", formatter_class=_Help,
        help="serve an ASGI application (Starlette, FastAPI...) over HTTP/2 and HTTP/1.1, WebSockets over both",
        description="Serve an ASGI 3 application: HTTP and WebSockets over HTTP/1.1 and HTTP/2 on one port "
                    "(TLS with ALPN; cleartext HTTP/2 by prior knowledge), WebSockets over RFC 6455 and RFC 8441. "
                    "Options have uvicorn's names and meanings.")
    p.add_argument("app", help="the application, as module:attribute (e.g. main:app)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=_in_range(0, 65535), default=8000, help="port to listen on (0: any free)")
    p.add_argument("--certfile", help="TLS certificate (PEM): https/wss with ALPN h2 and http/1.1 "
                                      "(default: none, cleartext)")
    p.add_argument("--keyfile", help="the certificate's private key (PEM) (default: none, in --certfile)")
    p.add_argument("--workers", type=_in_range(1, 512), default=1,
                   help="worker processes sharing the port (SO_REUSEPORT), supervised")
    p.add_argument("--loop", choices=["auto", "asyncio", "uvloop"], default="auto",
                   help="the event loop (auto: uvloop if installed, else asyncio)")
    p.add_argument("--factory", action="store_true", help="APP is a factory: serve what calling it returns")
    p.add_argument("--app-dir", default=".", help="look for the application's module here first")
    p.add_argument("--root-path", default="", help="the ASGI root_path: where the application is mounted")
    p.add_argument("--lifespan", choices=["auto", "on", "off"], default="auto",
                   help="run the lifespan protocol (auto: if the application supports it)")
    p.add_argument("--ws-max-size", type=_in_range(0, None), default=16 * 1024 * 1024,
                   help="the largest WebSocket message, in octets (larger ones close with 1009; 0: no limit)")
    p.add_argument("--ws-max-queue", type=_in_range(0, None), default=32,
                   help="WebSocket messages queued before reading pauses")
    p.add_argument("--ws-ping-interval", type=_seconds_or_none, default=20.0,
                   help="seconds between keepalive pings (0: none)")
    p.add_argument("--ws-ping-timeout", type=_seconds_or_none, default=20.0,
                   help="seconds a ping waits for its pong before the WebSocket closes with 1011 (0: forever)")
    p.add_argument("--ws-per-message-deflate", type=_bool, default=True, metavar="BOOL",
                   help="accept permessage-deflate when a client offers it")
    p.add_argument("--timeout-keep-alive", type=_positive_float, default=5.0,
                   help="close a connection with nothing running after this many seconds")
    p.add_argument("--timeout-graceful-shutdown", type=_positive_float, default=None,
                   help="seconds requests and WebSockets get to finish on shutdown (default: no limit)")
    p.add_argument("--limit-concurrency", type=_in_range(1, None), default=None,
                   help="requests and WebSockets handled at once; beyond, 503 (default: no limit)")
    p.add_argument("--limit-request-body", type=_in_range(0, None), default=64 * 1024 * 1024,
                   help="the largest request body, in octets (larger: 413; 0: no limit)")
    p.add_argument("--proxy-headers", action="store_true",
                   help="trust X-Forwarded-For and X-Forwarded-Proto from --forwarded-allow-ips")
    p.add_argument("--forwarded-allow-ips", default="127.0.0.1",
                   help="comma-separated addresses whose forwarding headers are trusted ('*': any)")
    p.add_argument("--access-log", action=argparse.BooleanOptionalAction, default=False,
                   help="log every response")
    p.add_argument("--log-level", default="INFO", type=str.upper,
                   choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], help="what the server logs")
    p.set_defaults(run=_asgi_main)


def _asgi_main(args: argparse.Namespace) -> int:
    from . import asgi

    logging.basicConfig(level=args.log_level, format="%(levelname)s %(name)s: %(message)s")
    if args.keyfile and not args.certfile:
        print("ws2fast asgi: --keyfile needs --certfile", file=sys.stderr)
        return 1
    try:
        settings = asgi.Settings(
            root_path=args.root_path, lifespan=args.lifespan, ws_max_size=args.ws_max_size,
            ws_max_queue=args.ws_max_queue, ws_ping_interval=args.ws_ping_interval,
            ws_ping_timeout=args.ws_ping_timeout, ws_per_message_deflate=args.ws_per_message_deflate,
            timeout_keep_alive=args.timeout_keep_alive, timeout_graceful_shutdown=args.timeout_graceful_shutdown,
            limit_concurrency=args.limit_concurrency, limit_request_body=args.limit_request_body or None,
            access_log=args.access_log, proxy_headers=args.proxy_headers,
            forwarded_allow_ips=tuple(ip.strip() for ip in args.forwarded_allow_ips.split(",") if ip.strip()))
        context = _server_ssl(args)
    except UsageError as exc:
        print(f"ws2fast asgi: {exc}", file=sys.stderr)
        return 1
    scheme = "https" if context is not None else "http"

    def announce(port: int) -> None:
        print(f"ws2fast {__version__} serving {args.app} on {scheme}://{args.host}:{port}/ "
              f"(HTTP/2 and HTTP/1.1, WebSockets over both; {args.workers} "
              f"worker{'s' if args.workers > 1 else ''})", flush=True)

    if args.workers > 1:
        spec = asgi.WorkerSpec(args.app, args.factory, args.host, args.port, settings, args.certfile,
                               args.keyfile, args.log_level, args.app_dir, args.loop)
        try:
            return asgi.run_workers(spec, args.workers, on_ready=announce)
        except OSError as exc:
            print(f"ws2fast asgi: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
            return 1
    if args.app_dir not in sys.path:
        sys.path.insert(0, args.app_dir)
    try:
        app = asgi.import_app(args.app, factory=args.factory)
    except ValueError as exc:
        print(f"ws2fast asgi: {exc}", file=sys.stderr)
        return 1
    try:
        asgi.run(app, args.host, args.port, settings=settings, ssl=context, loop=args.loop,
                 ready=lambda server: announce(server.port))
    except asgi.LifespanFailure as exc:
        print(f"ws2fast asgi: {exc}", file=sys.stderr)
        return 3
    except ValueError as exc:
        print(f"ws2fast asgi: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"ws2fast asgi: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def main_commands(commands: Any) -> None:
    formatter = _Help

    p = commands.add_parser("serve", formatter_class=formatter,
                            help="an echo WebSocket server (HTTP/2 and HTTP/1.1 on one port) with a small page",
                            description="Echo every WebSocket message, on every path, over HTTP/2 (RFC 8441) "
                                        "and HTTP/1.1 on one port; plain GETs get a small page (or --static files).")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=_in_range(0, 65535), default=8080, help="port to listen on (0: any free)")
    p.add_argument("--certfile", help="TLS certificate (PEM): serve https/wss with ALPN h2 and http/1.1 "
                                      "(default: none, cleartext)")
    p.add_argument("--keyfile", help="the certificate's private key (PEM) (default: none, in --certfile)")
    p.add_argument("--static", metavar="DIR", help="serve the files of this directory for plain GETs "
                                                   "(default: none, a small page for any path)")
    p.add_argument("--max-message-size", type=_in_range(0, None),
                   default=Config().max_message_size,
                   help="the largest WebSocket message accepted, in octets (larger ones close with 1009; 0: no limit)")
    p.add_argument("--permessage-deflate", action="store_true",
                   help="accept permessage-deflate (RFC 7692) when a client offers it")
    p.add_argument("--origin", action="append", metavar="ORIGIN",
                   help="allow WebSockets only from this Origin, repeat for more (default: any origin)")
    p.add_argument("--subprotocol", action="append", metavar="NAME",
                   help="a subprotocol to agree to when a client offers it, repeat for more, in order of "
                        "preference (default: none)")
    _log_level_option(p, "the server")
    p.set_defaults(run=lambda a: run(_serve, a))

    _asgi_parser(commands)

    p = commands.add_parser("connect", formatter_class=formatter,
                            help="an interactive client: stdin lines go out, messages are printed",
                            description="Open a WebSocket (HTTP/2 when the server offers it, else HTTP/1.1), "
                                        "send each line of stdin as a text message and print what comes back.")
    p.add_argument("url", help="ws://host[:port]/path or wss://host[:port]/path")
    p.add_argument("--cafile", help="trust this CA certificate (PEM), e.g. a server's self-signed certificate "
                                    "(default: the system's CAs)")
    p.add_argument("--http2", action="store_true", help="ws:// only: cleartext HTTP/2 by prior knowledge")
    p.add_argument("--subprotocol", action="append", metavar="NAME",
                   help="offer this subprotocol, repeat for more (default: none)")
    _log_level_option(p, "the client")
    p.set_defaults(run=lambda a: run(_connect, a))

    p = commands.add_parser("demo", formatter_class=formatter,
                            help="several WebSockets over one HTTP/2 connection, on loopback",
                            description="Start a server on a free loopback port, open several WebSockets over one "
                                        "HTTP/2 connection, show what was negotiated and measure echo throughput.")
    p.add_argument("--streams", type=_in_range(1, 100), default=4,
                   help="WebSockets to open (the server allows 100 at once on a connection)")
    p.add_argument("--messages", type=_in_range(1, None), default=20000,
                   help="messages to echo at each size")
    p.add_argument("--seconds", type=_positive_float, default=5.0, help="stop each run after this long")
    p.set_defaults(run=lambda a: run(_demo, a))
