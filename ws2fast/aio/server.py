"""serve(): an asyncio WebSocket server over HTTP/2 (RFC 8441) and HTTP/1.1 on one port.

With TLS, ALPN picks h2 or http/1.1; in cleartext, a connection that starts with the HTTP/2
preface speaks HTTP/2 (prior knowledge) and any other speaks HTTP/1.1 (Upgrade).  Plain HTTP
requests on the same connections go to ``http_handler``.

Hooks a deployment needs: ``origins`` (allow-list against cross-site WebSocket hijacking),
``subprotocols`` / ``select_subprotocol``, and ``process_request`` which can refuse a WebSocket
(:class:`Reject`) or accept it with extra response headers (:class:`Accept`), the same over
both HTTP versions.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import ssl as ssl_module
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..config import Config
from ..events import RequestReceived, WebSocketRequested
from ..exceptions import ConnectionClosed
from .connection import Connection
from .transport import NativeServer, native_transport_applies
from .websocket import WebSocket, WebSocketListener

__all__ = ["serve", "Server", "Request", "Accept", "Reject"]

logger = logging.getLogger("ws2fast")

Headers = Sequence[tuple[bytes | str, bytes | str]]


@dataclass(frozen=True, slots=True)
class Request:
    """What a client asked for: a WebSocket (``websocket`` true) or a plain request."""

    method: str
    path: str
    authority: str
    headers: tuple[tuple[bytes, bytes], ...]
    http_version: str
    websocket: bool
    origin: str | None = None
    subprotocols: tuple[str, ...] = ()
    extensions: tuple[str, ...] = ()
    body: bytes = b""
    #: the connection the request came on (several requests and WebSockets share one over HTTP/2)
    connection: Any = field(default=None, compare=False, repr=False)
    #: HTTP/2 WebSocket: the extended CONNECT came before the client acknowledged our SETTINGS
    #: (an early handshake: it did not wait for them)
    speculative: bool = False
    #: HTTP/2 WebSocket: the client sent SETTINGS_ENABLE_CONNECT_PROTOCOL = 1 itself
    capability_announced: bool = False

    def header(self, name: str) -> str | None:
        """The first value of a header (case-insensitive), decoded as Latin-1, or None."""
        key = name.lower().encode("ascii")
        for n, v in self.headers:
            if n == key:
                return v.decode("latin-1")
        return None


@dataclass(frozen=True, slots=True)
class Accept:
    """``process_request`` result: accept, with these response headers (and subprotocol)."""

    headers: Headers = ()
    subprotocol: str | None = None


@dataclass(frozen=True, slots=True)
class Reject:
    """``process_request`` result: refuse the WebSocket with this response."""

    status: int = 403
    headers: Headers = ()
    body: bytes = b""


@dataclass
class _Options:
    handler: Callable[[WebSocket], Awaitable[Any]]
    http_handler: Callable[[Request], Any] | None
    origins: Sequence[str | None] | None
    subprotocols: Sequence[str]
    select_subprotocol: Callable[[Sequence[str]], str | None] | None
    process_request: Callable[[Request], Any] | None
    config: Config
    max_queue: int
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)


class Server:
    """A running server: ``close()`` shuts it down gracefully; ``sockets`` are its sockets."""

    def __init__(self, options: _Options) -> None:
        self._options = options
        self._server: asyncio.base_events.Server | NativeServer | None = None
        self.connections: set[Connection] = set()
        self._closing = False

    @property
    def sockets(self) -> tuple[Any, ...]:
        return tuple(self._server.sockets) if self._server is not None else ()

    @property
    def port(self) -> int:
        return self.sockets[0].getsockname()[1]

    def _make_connection(self) -> Connection:
        conn = Connection(client_side=False, config=self._options.config, owner=self,
                          max_queue=self._options.max_queue)
        self.connections.add(conn)
        return conn

    def _connection_lost(self, conn: Connection) -> None:
        self.connections.discard(conn)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._options.tasks.add(task)
        task.add_done_callback(self._options.tasks.discard)

    # -- WebSockets ------------------------------------------------------------------------

    def _websocket_requested(self, conn: Connection, event: WebSocketRequested) -> None:
        method = "CONNECT" if conn.http_version == "HTTP/2" else "GET"
        request = Request(method, event.path, event.authority, event.headers, conn.http_version, True,
                          event.origin, event.subprotocols, event.extensions, connection=conn,
                          speculative=event.speculative, capability_announced=event.capability_announced)
        if self._closing:
            conn.reject_websocket(event.stream_id, 503, [(b"retry-after", b"1")], b"shutting down\n")
            return
        conn.begin_handling()
        self._spawn(self._run_websocket(conn, event, request))

    async def _run_websocket(self, conn: Connection, event: WebSocketRequested, request: Request) -> None:
        try:
            ws = await self._open_websocket(conn, event, request)
        finally:
            conn.end_handling()
        if ws is None:
            return
        try:
            await self._options.handler(ws)
        except ConnectionClosed:
            pass
        except Exception:
            logger.exception("ws2fast: WebSocket handler failed")
            if not ws.closed:
                await ws.close(1011, "internal error")
        finally:
            if not ws.closed:
                await ws.close(1001 if self._closing else 1000)

    async def _open_websocket(self, conn: Connection, event: WebSocketRequested,
                              request: Request) -> WebSocket | None:
        """Decide (origins, process_request, subprotocol) and answer; the WebSocket to run its
        handler on, or None (refused, gone, or run by a listener)."""
        options = self._options
        sid = event.stream_id
        decision: Any = None
        try:
            if options.origins is not None and request.origin not in options.origins:
                decision = Reject(403, [(b"content-type", b"text/plain")], b"origin not allowed\n")
            elif options.process_request is not None:
                decision = options.process_request(request)
                if inspect.isawaitable(decision):
                    decision = await decision
        except Exception:
            logger.exception("ws2fast: process_request failed")
            decision = Reject(500, [(b"content-type", b"text/plain")], b"internal error\n")
        if conn.transport is None or conn.transport.is_closing():
            return None
        if isinstance(decision, Reject):
            conn.reject_websocket(sid, decision.status, decision.headers, decision.body)
            return None
        extra: Headers = decision.headers if isinstance(decision, Accept) else ()
        if isinstance(decision, Accept) and decision.subprotocol is not None:
            subprotocol: str | None = decision.subprotocol
        elif options.select_subprotocol is not None:
            subprotocol = options.select_subprotocol(request.subprotocols)
        else:
            subprotocol = next((p for p in options.subprotocols if p in request.subprotocols), None)
        listener: WebSocketListener | None = None
        if _is_listener(options.handler):
            listener = options.handler()     # type: ignore[call-arg,assignment,misc]
        ws = WebSocket(conn, sid, path=event.path, headers=event.headers, subprotocol=subprotocol,
                       request_headers=event.headers, listener=listener)
        early = conn.accept_websocket(ws, subprotocol, extra)
        if early is None:
            return None                                 # the stream went away meanwhile
        if listener is not None:
            listener.on_open(ws)                        # callbacks: no task per WebSocket
        conn.deliver(early)
        return None if listener is not None else ws

    # -- plain requests --------------------------------------------------------------------

    def _request_complete(self, conn: Connection, stream_id: int, event: RequestReceived, body: bytes) -> None:
        request = Request(event.method, event.path, event.authority, event.headers, conn.http_version,
                          False, body=body, connection=conn)
        conn.begin_handling()
        self._spawn(self._run_http(conn, stream_id, request))

    async def _run_http(self, conn: Connection, stream_id: int, request: Request) -> None:
        try:
            status, headers, body = await self._http_response(request)
            try:
                conn.respond(stream_id, status, headers, body)
            except Exception:
                # A response the connection refuses (a status out of range, a header that cannot
                # be sent): nothing of it was written, so the client gets a 500 instead.
                logger.exception("ws2fast: the response to %s %s could not be sent", request.method,
                                 request.path)
                conn.respond_failed(stream_id)
        finally:
            conn.end_handling()

    async def _http_response(self, request: Request) -> tuple[int, Headers, bytes]:
        handler = self._options.http_handler
        try:
            if handler is None:
                return 404, [(b"content-type", b"text/plain")], b"not found\n"
            response = handler(request)
            if inspect.isawaitable(response):
                response = await response
            return _checked_response(response)
        except Exception:
            logger.exception("ws2fast: http_handler failed")
            return 500, [(b"content-type", b"text/plain")], b"internal error\n"

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self, host: str | None, port: int, ssl: ssl_module.SSLContext | None, **kwargs: Any) -> None:
        loop = asyncio.get_running_loop()
        if native_transport_applies(loop, self._options.config, ssl) and set(kwargs) <= NativeServer.OPTIONS:
            self._server = await NativeServer.start(self._make_connection, host, port, **kwargs)
        else:
            self._server = await loop.create_server(self._make_connection, host, port, ssl=ssl, **kwargs)

    def _stop_accepting(self) -> bool:
        """The first step of a shutdown: no new connections.  False if it was taken already."""
        if self._closing:
            return False
        self._closing = True
        if self._server is not None:
            self._server.close()
        return True

    def close(self, code: int = 1001) -> None:
        """Stop accepting; close every WebSocket with 1001 and send GOAWAY on HTTP/2
        connections (messages already accepted by ``send`` still go out first)."""
        if not self._stop_accepting():
            return
        for conn in list(self.connections):
            for ws in list(conn.websockets.values()):
                ws.close_nowait(code, "server shutting down")
            conn.goaway()
            if not conn.websockets:
                conn.flush()
                # (HTTP/1.1 lets a plain exchange in progress finish; it closes after it)
                if conn.engine is None or conn.engine.multiplexed:
                    conn.close_transport()

    async def wait_closed(self, timeout: float | None = None) -> None:
        """Wait for handlers and connections to finish (forcing them after ``timeout``)."""
        timeout = self._options.config.close_timeout + 1 if timeout is None else timeout
        tasks = set(self._options.tasks)
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)
        for task in tasks:
            if not task.done():
                task.cancel()
        for conn in list(self.connections):
            # Whoever is still connected had the close timeout to finish: no lingering now.
            conn.close_transport(linger=False)
        closing = [conn.closed for conn in list(self.connections)]
        if closing:
            done, pending = await asyncio.wait(closing, timeout=1.0)
            for conn in list(self.connections):
                conn.abort()
        if self._server is not None:
            await self._server.wait_closed()

    async def serve_forever(self) -> None:
        assert self._server is not None
        with contextlib.suppress(asyncio.CancelledError):
            await self._server.serve_forever()

    async def __aenter__(self) -> Server:  # noqa: PYI034
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()
        await self.wait_closed()


def _checked_response(response: Any) -> tuple[int, Headers, bytes]:
    """What an http_handler returned, if it has the shape of (status, headers, body)."""
    if not isinstance(response, (tuple, list)) or len(response) != 3:
        raise TypeError(f"http_handler must return (status, headers, body), not {response!r:.100}")
    status, headers, body = response
    if isinstance(body, str):
        raise TypeError("http_handler returned a str body: encode it (bytes-like bodies only)")
    try:
        body = bytes(body)
    except TypeError:
        raise TypeError(f"http_handler returned a body of type {type(body).__name__}, "
                        "not a bytes-like object") from None
    return status, headers, body


def _is_listener(handler: Any) -> bool:
    return isinstance(handler, type) and issubclass(handler, WebSocketListener)


class serve:
    """Start a server: ``async with serve(handler, "127.0.0.1", 8443, ssl=ctx) as server:``.

    ``handler(ws)`` is called for every WebSocket (or, if ``handler`` is a
    :class:`WebSocketListener` subclass, an instance gets its callbacks); ``http_handler(request)``
    for plain requests returns ``(status, headers, body)`` (404 when None).  ``ssl``: a server
    SSLContext (ALPN h2 and http/1.1 are set on it).
    """

    def __init__(self, handler: Callable[[WebSocket], Awaitable[Any]], host: str | None = None, port: int = 0,
                 *, ssl: ssl_module.SSLContext | None = None,
                 http_handler: Callable[[Request], Any] | None = None,
                 origins: Sequence[str | None] | None = None, subprotocols: Sequence[str] = (),
                 select_subprotocol: Callable[[Sequence[str]], str | None] | None = None,
                 process_request: Callable[[Request], Any] | None = None,
                 config: Config | None = None, max_queue: int = 16, **kwargs: Any) -> None:
        if ssl is not None:
            ssl.set_alpn_protocols(["h2", "http/1.1"])
        self._args = (host, port, ssl, kwargs)
        self.server = Server(_Options(handler, http_handler, origins, tuple(subprotocols), select_subprotocol,
                                      process_request, config if config is not None else Config(), max_queue))

    async def _start(self) -> Server:
        host, port, ssl, kwargs = self._args
        await self.server.start(host, port, ssl, **kwargs)
        return self.server

    def __await__(self) -> Any:
        return self._start().__await__()

    async def __aenter__(self) -> Server:
        return await self._start()

    async def __aexit__(self, *exc_info: object) -> None:
        self.server.close()
        await self.server.wait_closed()
