"""ws2fast's ASGI server: ``python -m ws2fast asgi module:app``, or :func:`serve` / :func:`run`.

ASGI 3.0 applications (Starlette, FastAPI, any framework) over HTTP/1.1 and HTTP/2 on one port
(TLS with ALPN h2 and http/1.1; in cleartext, HTTP/2 by prior knowledge), with their WebSockets
over both: RFC 6455 Upgrade and RFC 8441 extended CONNECT.  A browser that loads the page over
HTTP/2 opens the page's WebSockets as streams of that same connection.

The "HTTP & WebSocket ASGI Message Format" (spec version 2.4) and lifespan:

- ``http``: the request body streamed (``more_body``) with backpressure: over HTTP/2 a stream's
  window goes back as the application takes its body (a slow reader stops only its own
  stream), over HTTP/1.1 reading pauses while the application has more than
  :data:`BODY_BUFFER` octets of it not taken; responses streamed
  under the transport's and HTTP/2's flow control; ``http.disconnect`` once the response is
  complete or the client went away (connection lost, or RST_STREAM); ``send()`` after the
  client went away raises :class:`ClientDisconnected` (an ``OSError``, as spec 2.4 says).
  HTTP/1.1 ``Expect: 100-continue`` is answered when the application first asks for the body
  (one that answers without reading it spares the client the upload).
- ``websocket``: the events of :mod:`ws2fast._asgi` (accept with subprotocol and headers, close
  with code and reason, the denial response extension), messages straight from the compiled
  queue.
- Failures: an application that raises before its response starts gets a 500 sent for it; after,
  the stream is reset (HTTP/2) or the connection dropped (HTTP/1.1), so that no client waits for
  the rest.  A WebSocket application that raises before accepting: 500; after: Close 1011.  Each
  is logged once, with its traceback, and the server goes on.

Shutdown (:meth:`ASGIServer.close`): no new connections, GOAWAY on HTTP/2, Close 1012 on open
WebSockets (service restart, as uvicorn sends: the client may reconnect at once), requests in
progress finish within ``timeout_graceful_shutdown``, then lifespan shutdown runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import signal
import socket
import ssl as ssl_module
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import unquote

from . import events as ev
from ._asgi import ASGIWebSocket, ClientDisconnected, websocket_scope
from .aio.connection import Connection
from .aio.server import Server, _Options
from .config import Config
from .exceptions import LocalProtocolError
from .h2connection import H2Connection

__all__ = ["ASGIServer", "ClientDisconnected", "LifespanFailure", "Settings", "WorkerSpec", "import_app", "run",
           "run_workers", "serve"]

logger = logging.getLogger("ws2fast.asgi")
access_logger = logging.getLogger("ws2fast.asgi.access")

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]

#: request body octets held for the application (per connection) before reading pauses
BODY_BUFFER = 256 * 1024
#: response body octets queued on a stream (waiting for HTTP/2 window) before ``send`` waits
SEND_BUFFER = 64 * 1024

_ASGI = {"version": "3.0", "spec_version": "2.4"}
# Fields that belong to the HTTP/1.1 connection: never sent over HTTP/2 (RFC 9113 §8.2.2).
_H1_ONLY = frozenset([b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"])
_TEXT = [(b"content-type", b"text/plain; charset=utf-8")]


@dataclass
class Settings:
    """What a deployment sets (uvicorn's names and defaults where uvicorn has them).

    - ``root_path``: the application's mount point (the ASGI ``root_path``).
    - ``lifespan``: ``"auto"`` (run it; an application that does not support it is told apart
      by its failure before startup and served anyway), ``"on"`` (its failure stops the
      server), ``"off"``.
    - ``ws_max_size`` (16 MiB): the largest WebSocket message (larger ones close with 1009).
    - ``ws_max_queue`` (32): messages queued per WebSocket before reading pauses.
    - ``ws_ping_interval`` / ``ws_ping_timeout`` (20 s / 20 s): keepalive pings; a ping not
      answered in time closes with 1011.  None: no pings.
    - ``ws_per_message_deflate`` (True): accept permessage-deflate when a client offers it.
    - ``timeout_keep_alive`` (5 s): close a connection with nothing running after this long.
    - ``timeout_header`` (10 s): a new connection must deliver its first request head (HTTP/2:
      its preface and SETTINGS) within this long (slowloris).
    - ``timeout_graceful_shutdown`` (None: wait for them): how long requests and WebSockets in
      progress get to finish on shutdown.
    - ``limit_request_body`` (64 MiB): a larger request body gets 413 (or, already answering,
      the stream is reset) and the application ``http.disconnect``.
    - ``limit_concurrency``: at most this many requests and WebSockets handled at once; beyond,
      new ones get 503.
    - ``server_header``: send ``server: ws2fast``.
    - ``access_log``: log each response (``ws2fast.asgi.access``, INFO).
    - ``proxy_headers``: when the peer is one of ``forwarded_allow_ips`` (``"*"``: any), take
      the client's address from ``X-Forwarded-For`` (its last entry) and the scheme from
      ``X-Forwarded-Proto``.
    - ``config``: the ws2fast :class:`~ws2fast.Config` the above are laid over (HTTP/2 limits,
      flood limits, the handshake options).
    """

    root_path: str = ""
    lifespan: str = "auto"
    ws_max_size: int = 16 * 1024 * 1024
    ws_max_queue: int = 32
    ws_ping_interval: float | None = 20.0
    ws_ping_timeout: float | None = 20.0
    ws_per_message_deflate: bool = True
    timeout_keep_alive: float = 5.0
    timeout_header: float | None = 10.0
    timeout_graceful_shutdown: float | None = None
    limit_request_body: int | None = 64 * 1024 * 1024
    limit_concurrency: int | None = None
    server_header: bool = True
    access_log: bool = False
    proxy_headers: bool = False
    forwarded_allow_ips: tuple[str, ...] = ("127.0.0.1",)
    config: Config = field(default_factory=Config)

    def __post_init__(self) -> None:
        if self.lifespan not in ("auto", "on", "off"):
            raise ValueError(f"lifespan must be 'auto', 'on' or 'off', not {self.lifespan!r}")
        if self.root_path.endswith("/"):
            self.root_path = self.root_path.rstrip("/")
        if self.ws_max_queue < 0:
            raise ValueError("ws_max_queue must not be negative")

    def ws2fast_config(self) -> Config:
        interval = self.ws_ping_interval if self.ws_ping_interval and self.ws_ping_interval > 0 else None
        return replace(
            self.config,
            max_message_size=self.ws_max_size or None,
            permessage_deflate=self.ws_per_message_deflate,
            ping_interval=interval,
            ping_timeout=self.ws_ping_timeout if interval is not None else None,
            idle_timeout=self.timeout_keep_alive,
            handshake_timeout=self.timeout_header,
        )


def _address(info: Any) -> list[Any] | None:
    if isinstance(info, tuple) and len(info) >= 2:
        return [str(info[0]), int(info[1])]
    return None


def _forwarded(scope: Scope, settings: Settings) -> None:
    # --proxy-headers: the proxy in front says who the client is (its own entry is the last).
    client = scope["client"]
    allowed = settings.forwarded_allow_ips
    if client is None or ("*" not in allowed and client[0] not in allowed):
        return
    for name, value in scope["headers"]:
        if name == b"x-forwarded-for":
            host = value.decode("latin-1").split(",")[-1].strip()
            if host:
                scope["client"] = [host, 0]
        elif name == b"x-forwarded-proto":
            proto = value.decode("latin-1").split(",")[-1].strip().lower()
            if proto in ("http", "https", "ws", "wss"):
                secure = proto in ("https", "wss")
                if scope["type"] == "websocket":
                    scope["scheme"] = "wss" if secure else "ws"
                else:
                    scope["scheme"] = "https" if secure else "http"


class HTTPCycle:
    """One request and its response: the ``receive`` and ``send`` of an ASGI ``http`` scope."""

    __slots__ = ("conn", "stream_id", "scope", "settings", "_body", "_buffered", "_flow", "_received",
                 "_more_body", "_body_done", "_waiter", "disconnected", "_start", "_head_sent", "complete", "status")

    def __init__(self, conn: ASGIConnection, stream_id: int, scope: Scope, settings: Settings) -> None:
        self.conn = conn
        self.stream_id = stream_id
        self.scope = scope
        self.settings = settings
        self._body: deque[bytes] = deque()
        self._buffered = 0
        self._flow = 0                      # HTTP/2: window held for what _body holds
        self._received = 0
        self._more_body = True
        self._body_done = False             # the last http.request went to the application
        self._waiter: asyncio.Future[None] | None = None
        self.disconnected = False
        self._start: dict[str, Any] | None = None
        self._head_sent = False
        self.complete = False
        self.status = 0

    # -- what the connection feeds -------------------------------------------------------------

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def data(self, data: bytes, flow: int) -> None:
        if self.disconnected or self.complete or not data:
            self.conn._give_back(self.stream_id, flow)
            return
        self._received += len(data)
        limit = self.settings.limit_request_body
        if limit is not None and self._received > limit:
            self.conn._give_back(self.stream_id, flow)
            self.too_large()
            return
        self._body.append(data)
        self._buffered += len(data)
        conn = self.conn
        if conn._multiplexed:
            # HTTP/2: the stream's window is what holds the client back (given back as the
            # application takes the body), so a slow reader stops its own stream only.
            self._flow += flow
        else:
            # HTTP/1.1 has no window: reading pauses while too much waits.
            conn._body_buffered += len(data)
            if conn._body_buffered > BODY_BUFFER:
                conn._pause_reading()
        self._wake()

    def end(self) -> None:
        self._more_body = False
        self._wake()

    def too_large(self) -> None:
        logger.info("ws2fast: a request body passed limit_request_body (%d octets): 413",
                    self.settings.limit_request_body)
        conn = self.conn
        if conn.engine.response_pending(self.stream_id):
            # (HTTP/1.1: the rest of the body is not read, so the connection ends after it)
            conn.respond(self.stream_id, 413, _TEXT if conn._multiplexed else [*_TEXT, (b"connection", b"close")],
                         b"request body too large\n")
        else:
            conn.respond_failed(self.stream_id)
        self.lost()

    def lost(self) -> None:
        """The client went away (the connection is lost, or the stream reset)."""
        self._release()
        self.disconnected = True
        self._wake()

    def _release(self) -> None:
        self._taken()
        self._body.clear()

    def _taken(self) -> None:
        # What _body held is the application's (or dropped): the client may send more.
        conn = self.conn
        if self._flow:
            flow, self._flow = self._flow, 0
            conn._give_back(self.stream_id, flow)
        if self._buffered:
            if not conn._multiplexed:
                conn._body_taken(self._buffered)
            self._buffered = 0

    # -- receive ---------------------------------------------------------------------------------

    async def receive(self) -> dict[str, Any]:
        # (over HTTP/1.1, a client that sent "Expect: 100-continue" gets "100 Continue" once the
        # application asks for the body, not before: one that answers at once spares the upload)
        while True:
            if self._body and not self.disconnected:
                data = self._body.popleft() if len(self._body) == 1 else b"".join(self._body)
                self._body.clear()
                self._taken()
                if self.conn._multiplexed:
                    self.conn.flush()               # (the WINDOW_UPDATE)
                more = self._more_body
                self._body_done = not more
                return {"type": "http.request", "body": data, "more_body": more}
            if not self._more_body and not self._body_done and not self.disconnected:
                self._body_done = True
                return {"type": "http.request", "body": b"", "more_body": False}
            if self.disconnected or self.complete:
                return {"type": "http.disconnect"}
            conn = self.conn
            if self._more_body and not self._head_sent and conn.engine.send_continue(self.stream_id):
                conn.flush()                # Expect: 100-continue: the application wants the body
            elif conn._unflushed:
                conn.flush()
            self._waiter = conn.loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    # -- send ------------------------------------------------------------------------------------

    async def send(self, message: Any) -> None:
        kind = message["type"]
        if kind == "http.response.body":
            if self._start is None or self.complete:
                raise RuntimeError("http.response.body before http.response.start" if self._start is None
                                   else "Unexpected ASGI message 'http.response.body' sent, after response "
                                        "already completed.")
            if self.disconnected or self.conn._lost:
                raise ClientDisconnected("the client is gone")
            body = message.get("body", b"")
            more = bool(message.get("more_body", False))
            conn, engine, sid = self.conn, self.conn.engine, self.stream_id
            if not self._head_sent:
                self._head_sent = True
                status, headers = self._head()
                try:
                    events = engine.send_response(sid, status, headers, body, end_stream=not more)
                except (LocalProtocolError, ValueError) as exc:
                    raise RuntimeError(f"the response cannot be sent: {exc}") from None
            else:
                try:
                    events = engine.send_body(sid, body, end_stream=not more)
                except LocalProtocolError:
                    # (the stream went away in this very loop turn: its reset is still unread)
                    self.lost()
                    raise ClientDisconnected("the client is gone") from None
            if not more:
                self._finish()
            conn.deliver(events)
            if more and (conn._paused_writing or engine.outgoing_buffered(sid) > SEND_BUFFER):
                await self._drain()
        elif kind == "http.response.start":
            if self._start is not None:
                raise RuntimeError("Unexpected ASGI message 'http.response.start' sent, after response "
                                   "already started.")
            status = message["status"]
            if type(status) is not int or not 200 <= status <= 599:
                raise RuntimeError(f"Invalid HTTP status code '{status!r}' in response.")
            if self.disconnected:
                raise ClientDisconnected("the client is gone")
            self._start = message
            self.status = status
        else:
            raise RuntimeError(f"Unexpected ASGI message '{kind}' sent, in an http scope.")

    def _head(self) -> tuple[int, list[tuple[bytes, bytes]]]:
        assert self._start is not None
        headers: list[tuple[bytes, bytes]] = []
        h2 = self.conn._multiplexed
        for name, value in self._start.get("headers", ()):
            name = bytes(name).lower()
            if h2 and name in _H1_ONLY:
                continue                    # (HTTP/2 frames the body itself)
            headers.append((name, bytes(value)))
        if self.settings.server_header:
            headers.insert(0, (b"server", b"ws2fast"))
        return self.status, headers

    def _finish(self) -> None:
        self.complete = True
        self._release()
        self._wake()
        if self.settings.access_log and access_logger.isEnabledFor(logging.INFO):
            client = self.scope.get("client")
            access_logger.info('%s - "%s %s HTTP/%s" %d', f"{client[0]}:{client[1]}" if client else "-",
                               self.scope["method"], self.scope["raw_path"].decode("latin-1"),
                               self.scope["http_version"], self.status)

    async def _drain(self) -> None:
        conn = self.conn
        while not conn._lost and not self.disconnected:
            if not conn._paused_writing and conn.engine.outgoing_buffered(self.stream_id) <= SEND_BUFFER:
                return
            waiter = conn.loop.create_future()
            conn._send_waiters.append(waiter)
            await waiter
        if self.disconnected or conn._lost:
            raise ClientDisconnected("the client is gone")

    def failed(self) -> None:
        """The application raised, or returned without completing its response."""
        if self.complete or self.disconnected:
            return
        self.complete = True
        self._release()
        self.conn.respond_failed(self.stream_id)


class _WebSocketHost:
    # The ASGIWebSocket's host calls, for one WebSocket of a connection.
    __slots__ = ("conn", "stream_id", "timer")

    def __init__(self, conn: ASGIConnection, stream_id: int) -> None:
        self.conn = conn
        self.stream_id = stream_id
        self.timer: asyncio.TimerHandle | None = None

    def app_closing(self) -> None:
        if self.timer is None and not self.conn._lost:
            self.timer = self.conn.loop.call_later(self.conn.config.close_timeout, self._timed_out)

    def _timed_out(self) -> None:
        # The client did not answer the application's Close in time.
        self.timer = None
        conn = self.conn
        ws = conn.websockets.get(self.stream_id)
        if ws is not None and not conn._lost:
            conn.abort_websocket(ws)
            conn.flush()

    def answered(self) -> None:
        # A refused handshake: over HTTP/1.1 the refusal said "connection: close".
        conn = self.conn
        if not conn._multiplexed and not conn._lost:
            conn.flush()
            conn.close_transport()

    def cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


class ASGIConnection(Connection):
    """A server connection whose requests and WebSockets go to an ASGI application."""

    def __init__(self, server: ASGIServer) -> None:
        super().__init__(client_side=False, config=server.ws2fast_config, owner=server,
                         max_queue=server.settings.ws_max_queue)
        self.asgi_server = server
        self.cycles: dict[int, HTTPCycle] = {}
        self.asgi_websockets: dict[int, tuple[ASGIWebSocket, _WebSocketHost]] = {}
        self._body_buffered = 0
        self._h2: H2Connection | None = None
        self.goaway_deferred = False

    def answering(self) -> bool:
        """Whether a plain request here still awaits the end of its response."""
        return any(not cycle.complete and not cycle.disconnected for cycle in self.cycles.values())

    def _start(self, http2: bool) -> None:
        super()._start(http2)
        if isinstance(self.engine, H2Connection):
            self._h2 = self.engine
            self._h2.hold_request_bodies = True

    def _give_back(self, stream_id: int, flow: int) -> None:
        # HTTP/2: request body octets the application took (or that were dropped).
        if flow and self._h2 is not None and not self._lost:
            self._h2.release_body(stream_id, flow)

    def _body_taken(self, n: int) -> None:
        self._body_buffered -= n
        if self._reading_paused and self._body_buffered <= BODY_BUFFER // 4 \
                and self._queued <= self._max_queued // 2:
            self._resume_reading()

    def _other_event(self, event: Any) -> None:
        kind = type(event)
        if kind is ev.DataReceived:
            cycle = self.cycles.get(event.stream_id)
            if cycle is not None:
                cycle.data(event.data, event.flow_controlled_length)
            else:
                self._give_back(event.stream_id, event.flow_controlled_length)      # (nobody reads it)
            return
        elif kind is ev.StreamEnded:
            cycle = self.cycles.get(event.stream_id)
            if cycle is not None:
                cycle.end()
                return
        elif kind is ev.StreamReset:
            cycle = self.cycles.get(event.stream_id)
            if cycle is not None:
                cycle.lost()
                return
        elif kind is ev.RequestReceived:
            self.asgi_server._http_request(self, event)
            return
        super()._other_event(event)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        for cycle in self.cycles.values():
            cycle.lost()
        for asgi, host in self.asgi_websockets.values():
            host.cancel()
            asgi.lost()


class ASGIServer(Server):
    """A running ASGI server (see the module's docstring): ``close()`` and ``wait_closed()``
    shut it down gracefully; ``sockets`` are its sockets, ``port`` its port."""

    def __init__(self, app: ASGIApp, settings: Settings, ssl: ssl_module.SSLContext | None = None) -> None:
        self.settings = settings
        self.ws2fast_config = settings.ws2fast_config()
        super().__init__(_Options(_no_handler, None, None, (), None, None, self.ws2fast_config,
                                  settings.ws_max_queue))
        self.app = app
        self.ssl = ssl
        self.state: dict[str, Any] = {}
        self._lifespan: _Lifespan | None = None

    # -- connections -----------------------------------------------------------------------------

    def _make_connection(self) -> Connection:
        conn = ASGIConnection(self)
        self.connections.add(conn)
        return conn

    def _names(self, conn: Connection) -> tuple[Any, Any, bool]:
        transport = conn.transport
        assert transport is not None
        return (_address(transport.get_extra_info("sockname")), _address(transport.get_extra_info("peername")),
                transport.get_extra_info("ssl_object") is not None)

    def _over_limit(self) -> bool:
        limit = self.settings.limit_concurrency
        return limit is not None and len(self._options.tasks) >= limit

    # -- plain requests ----------------------------------------------------------------------------

    def _http_request(self, conn: ASGIConnection, event: ev.RequestReceived) -> None:
        sid = event.stream_id
        if self._closing or self._over_limit():
            conn.respond(sid, 503, [*_TEXT, (b"retry-after", b"1")],
                         b"shutting down\n" if self._closing else b"too many requests at once\n")
            return
        limit = self.settings.limit_request_body
        if limit is not None:
            for name, value in event.headers:
                if name == b"content-length" and value.isdigit() and int(value) > limit:
                    conn.respond(sid, 413, [*_TEXT, (b"connection", b"close")] if not conn._multiplexed else _TEXT,
                                 b"request body too large\n")
                    return
        server, client, tls = self._names(conn)
        http_version = "2" if conn._multiplexed else "1.1"
        raw_path, _, query = event.path.partition("?")
        headers = [(n, v) for n, v in event.headers if not n.startswith(b":")]
        if http_version == "2" and event.authority and not any(n == b"host" for n, _ in headers):
            headers.insert(0, (b"host", event.authority.encode("latin-1")))
        root = self.settings.root_path
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": _ASGI,
            "http_version": http_version,
            "server": server,
            "client": client,
            "scheme": "https" if tls else "http",
            "method": event.method,
            "root_path": root,
            "path": root + unquote(raw_path),
            "raw_path": (root + raw_path).encode("latin-1") if root else raw_path.encode("latin-1"),
            "query_string": query.encode("latin-1"),
            "headers": headers,
            "state": self.state.copy(),
        }
        if self.settings.proxy_headers:
            _forwarded(scope, self.settings)
        cycle = HTTPCycle(conn, sid, scope, self.settings)
        old = conn.cycles.get(sid)
        if old is not None:
            old.lost()              # (HTTP/1.1: the previous exchange on this connection is over)
        conn.cycles[sid] = cycle
        if event.end_stream:
            cycle.end()
        conn.begin_handling()
        self._spawn(self._run_http_app(conn, cycle))

    async def _run_http_app(self, conn: ASGIConnection, cycle: HTTPCycle) -> None:
        try:
            await self.app(cycle.scope, cycle.receive, cycle.send)
        except ClientDisconnected:
            pass
        except BaseException as exc:
            if not cycle.disconnected:
                logger.exception("Exception in ASGI application")
            cycle.failed()
            if not isinstance(exc, Exception):
                raise
        else:
            if not cycle.complete and not cycle.disconnected:
                logger.error("ASGI callable returned without %s response.",
                             "completing" if cycle._start is not None else "starting")
                cycle.failed()
        finally:
            if conn.cycles.get(cycle.stream_id) is cycle:
                del conn.cycles[cycle.stream_id]
            conn.end_handling()
            if conn.goaway_deferred and not conn.answering():
                conn.goaway_deferred = False
                self._goaway(conn)

    # -- WebSockets --------------------------------------------------------------------------------

    def _websocket_requested(self, conn: Connection, event: ev.WebSocketRequested) -> None:
        assert isinstance(conn, ASGIConnection)
        if self._closing or self._over_limit():
            conn.reject_websocket(event.stream_id, 503, [*_TEXT, (b"retry-after", b"1")],
                                  b"shutting down\n" if self._closing else b"too many requests at once\n")
            return
        server, client, tls = self._names(conn)
        http_version = "2" if conn._multiplexed else "1.1"
        scope = websocket_scope(event, http_version=http_version, scheme="wss" if tls else "ws", server=server,
                                client=client, root_path=self.settings.root_path, state=self.state.copy())
        if self.settings.proxy_headers:
            _forwarded(scope, self.settings)
        host = _WebSocketHost(conn, event.stream_id)
        headers = [(b"server", b"ws2fast")] if self.settings.server_header else []
        asgi = ASGIWebSocket(conn, event, scope, host, default_headers=headers, logger=logger)
        conn.asgi_websockets[event.stream_id] = (asgi, host)
        conn.begin_handling()
        self._spawn(self._run_websocket_app(conn, asgi, host))

    async def _run_websocket_app(self, conn: ASGIConnection, asgi: ASGIWebSocket, host: _WebSocketHost) -> None:
        try:
            await self.app(asgi.scope, asgi.receive, asgi.send)
        except ClientDisconnected:
            pass
        except BaseException as exc:
            logger.exception("Exception in ASGI application")
            self._app_ended(asgi, 1011)
            if not isinstance(exc, Exception):
                raise
        else:
            if not asgi.answered:
                logger.error("ASGI callable returned without completing handshake.")
            self._app_ended(asgi, 1000)
        finally:
            conn.asgi_websockets.pop(asgi.event.stream_id, None)
            conn.end_handling()
            conn.flush()

    def _app_ended(self, asgi: ASGIWebSocket, code: int) -> None:
        if not asgi.answered:
            asgi.fail()                     # 500 (or the denial response the application began)
            return
        ws = asgi.ws
        if ws is not None and not ws.closed and ws.close_code is None and not asgi.conn._lost:
            # The application ended with its WebSocket open: it is closed for it, 1011 when the
            # application failed (RFC 6455 §7.4.1: "unexpected condition"), else 1000.
            with contextlib.suppress(Exception):
                asgi.close(code, "internal error" if code == 1011 else "")

    # -- lifecycle ---------------------------------------------------------------------------------

    async def startup(self) -> None:
        """Run the lifespan's startup (raises :class:`LifespanFailure` if it failed)."""
        if self.settings.lifespan == "off":
            return
        self._lifespan = _Lifespan(self.app, self.state, self.settings.lifespan == "on")
        await self._lifespan.startup()

    async def shutdown(self) -> None:
        if self._lifespan is not None:
            await self._lifespan.shutdown()

    def close(self, code: int = 1012) -> None:
        """Stop accepting; GOAWAY on HTTP/2; every open WebSocket gets Close ``code`` (1012) and
        its application ``websocket.disconnect``; requests in progress go on."""
        if not self._stop_accepting():
            return
        for conn in list(self.connections):
            assert isinstance(conn, ASGIConnection)
            for asgi, _host in list(conn.asgi_websockets.values()):
                asgi.shutdown(code)
            if conn._multiplexed and conn.answering():
                # GOAWAY once the responses in progress are complete: the h2 library (and so
                # httpx) fails every stream in flight on a GOAWAY, even a graceful one whose
                # last_stream_id covers them (RFC 9113 §6.8 lets them complete).  Meanwhile
                # new requests get 503.
                conn.goaway_deferred = True
                continue
            self._goaway(conn)

    def _goaway(self, conn: ASGIConnection) -> None:
        conn.goaway()
        if not conn.websockets and not conn.answering():
            conn.flush()
            if conn.engine is None or conn.engine.multiplexed or not conn._handling:
                conn.close_transport()

    async def wait_closed(self, timeout: float | None = None) -> None:
        """Wait for the applications' tasks (at most ``timeout``, by default
        ``timeout_graceful_shutdown``; then they are cancelled) and the connections."""
        timeout = self.settings.timeout_graceful_shutdown if timeout is None else timeout
        tasks = set(self._options.tasks)
        if tasks:
            done, pending = await asyncio.wait(tasks, timeout=timeout)
            if pending:
                logger.warning("ws2fast: %d tasks still running after the graceful shutdown timeout: "
                               "cancelled", len(pending))
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)
        await super().wait_closed(timeout=0.0)


async def _no_handler(ws: Any) -> None:  # pragma: no cover - the ASGI server routes WebSockets itself
    raise AssertionError


class LifespanFailure(RuntimeError):
    """The application's lifespan startup failed (``lifespan.startup.failed``, or it raised)."""


class _Lifespan:
    def __init__(self, app: ASGIApp, state: dict[str, Any], required: bool) -> None:
        self.app = app
        self.state = state
        self.required = required
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.startup_done: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self.shutdown_done: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self.task: asyncio.Task[None] | None = None
        self.supported = True

    async def _receive(self) -> dict[str, Any]:
        return await self.events.get()

    async def _send(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind in ("lifespan.startup.complete", "lifespan.startup.failed"):
            if not self.startup_done.done():
                self.startup_done.set_result(message.get("message", "") if kind.endswith("failed") else None)
        elif kind in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
            if not self.shutdown_done.done():
                self.shutdown_done.set_result(message.get("message", "") if kind.endswith("failed") else None)
        else:
            raise RuntimeError(f"Unexpected ASGI message '{kind}' in a lifespan scope.")

    async def _main(self) -> None:
        scope = {"type": "lifespan", "asgi": _ASGI, "state": self.state}
        try:
            await self.app(scope, self._receive, self._send)
        except BaseException as exc:
            if not self.startup_done.done():
                if self.required:
                    logger.exception("Exception in 'lifespan' protocol")
                    self.startup_done.set_result(f"the application raised {exc!r}")
                else:
                    logger.info("ASGI 'lifespan' protocol appears unsupported.")
                    self.supported = False
                    self.startup_done.set_result(None)
            else:
                logger.exception("Exception in 'lifespan' protocol")
            if not self.shutdown_done.done():
                self.shutdown_done.set_result(None)
        else:
            for future in (self.startup_done, self.shutdown_done):
                if not future.done():
                    future.set_result(None)

    async def startup(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._main())
        self.events.put_nowait({"type": "lifespan.startup"})
        failure = await self.startup_done
        if failure is not None:
            raise LifespanFailure(f"the application's startup failed: {failure}" if failure else
                                  "the application's startup failed")

    async def shutdown(self) -> None:
        if self.task is None or not self.supported or self.task.done():
            return
        self.events.put_nowait({"type": "lifespan.shutdown"})
        failure = await self.shutdown_done
        if failure is not None:
            logger.error("the application's lifespan shutdown failed: %s", failure)
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(self.task, 5.0)


# -- starting and running ------------------------------------------------------------------------


def import_app(spec: str, *, factory: bool = False) -> ASGIApp:
    """The application named by ``module:attribute`` (``attribute`` may be dotted); with
    ``factory``, the result of calling it."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ValueError(f"the application must be given as 'module:attribute', not {spec!r}")
    try:
        target: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name and not module_name.startswith(f"{exc.name}."):
            raise                   # (the module itself failed to import something)
        raise ValueError(f"cannot import the module {module_name!r}") from None
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ValueError(f"the module {module_name!r} has no attribute {attr!r}") from None
    if factory:
        target = target()
    if not callable(target):
        raise ValueError(f"{spec} is not callable: not an ASGI application")
    return target


@contextlib.asynccontextmanager
async def serve(app: ASGIApp, host: str | None = "127.0.0.1", port: int = 8000, *,
                settings: Settings | None = None, ssl: ssl_module.SSLContext | None = None,
                sock: socket.socket | None = None, **kwargs: Any) -> AsyncIterator[ASGIServer]:
    """Serve ``app`` while the block runs: lifespan startup, listen (or take ``sock``), yield
    the :class:`ASGIServer`; on leaving, the graceful shutdown and lifespan shutdown.
    ``ssl``: a server SSLContext (ALPN h2 and http/1.1 are set on it)."""
    settings = settings if settings is not None else Settings()
    if ssl is not None:
        ssl.set_alpn_protocols(["h2", "http/1.1"])
    server = ASGIServer(app, settings, ssl)
    await server.startup()
    try:
        if sock is not None:
            await server.start(None, None, ssl, sock=sock, **kwargs)  # type: ignore[arg-type]
        else:
            await server.start(host, port, ssl, **kwargs)
        try:
            yield server
        finally:
            server.close()
            await server.wait_closed()
    finally:
        await server.shutdown()


def new_event_loop(kind: str = "auto") -> asyncio.AbstractEventLoop:
    """An event loop of ``kind``: ``"asyncio"`` (cleartext connections on ws2fast's compiled
    socket transport), ``"uvloop"``, or ``"auto"``: uvloop when it is installed, as uvicorn
    chooses (it switches faster between the tasks an ASGI application runs as)."""
    if kind not in ("auto", "asyncio", "uvloop"):
        raise ValueError(f"loop must be 'auto', 'asyncio' or 'uvloop', not {kind!r}")
    if kind != "asyncio":
        try:
            import uvloop
        except ImportError:
            if kind == "uvloop":
                raise ValueError("--loop uvloop: uvloop is not installed (pip install uvloop)") from None
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run(app: ASGIApp, host: str = "127.0.0.1", port: int = 8000, *, settings: Settings | None = None,
        ssl: ssl_module.SSLContext | None = None, sock: socket.socket | None = None,
        ready: Callable[[ASGIServer], None] | None = None, loop: str = "auto", **kwargs: Any) -> None:
    """Serve ``app`` until SIGINT or SIGTERM, then shut down gracefully (blocks).  ``ready`` is
    called with the server once it listens; ``loop`` is as :func:`new_event_loop` takes it;
    ``kwargs`` go to the listener (``reuse_port``, ``backlog``)."""

    async def main() -> None:
        stop = asyncio.get_running_loop().create_future()

        def on_signal() -> None:
            if not stop.done():
                stop.set_result(None)

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, on_signal)
        async with serve(app, host, port, settings=settings, ssl=ssl, sock=sock, **kwargs) as server:
            if ready is not None:
                ready(server)
            await stop

    event_loop = new_event_loop(loop)
    try:
        asyncio.set_event_loop(event_loop)
        event_loop.run_until_complete(main())
    finally:
        try:
            pending = [task for task in asyncio.all_tasks(event_loop) if not task.done()]
            for task in pending:
                task.cancel()
            if pending:
                event_loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            event_loop.run_until_complete(event_loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            event_loop.close()


# -- workers ---------------------------------------------------------------------------------------


@dataclass
class WorkerSpec:
    """What a worker process needs to serve (it imports the application itself)."""

    app: str
    factory: bool
    host: str
    port: int
    settings: Settings
    certfile: str | None = None
    keyfile: str | None = None
    log_level: str = "INFO"
    app_dir: str = "."
    loop: str = "auto"


def server_ssl(certfile: str | None, keyfile: str | None) -> ssl_module.SSLContext | None:
    """A server SSLContext for the certificate (None without one)."""
    if not certfile:
        return None
    context = ssl_module.SSLContext(ssl_module.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certfile, keyfile)
    return context


def _worker_main(spec: WorkerSpec, ready: Any) -> None:
    # A worker process: its own listening socket on the shared port (SO_REUSEPORT).
    logging.basicConfig(level=spec.log_level, format=f"%(levelname)s [{os.getpid()}] %(name)s: %(message)s")
    if spec.app_dir not in sys.path:
        sys.path.insert(0, spec.app_dir)
    app = import_app(spec.app, factory=spec.factory)
    try:
        run(app, spec.host, spec.port, settings=spec.settings, ssl=server_ssl(spec.certfile, spec.keyfile),
            ready=lambda server: ready.put(os.getpid()), loop=spec.loop, reuse_port=True)
    except LifespanFailure as exc:
        logger.error("%s", exc)
        sys.exit(3)


def run_workers(spec: WorkerSpec, workers: int, *, on_ready: Callable[[int], None] | None = None,
                stop_timeout: float | None = None) -> int:
    """Run ``workers`` processes serving ``spec`` on one port (SO_REUSEPORT), supervised: a
    worker that dies is replaced (logged); SIGTERM or SIGINT shuts every worker down gracefully
    (each runs its graceful shutdown and lifespan shutdown), killing those still running after
    ``stop_timeout`` (default: the graceful-shutdown timeout plus 10 s, or 60 s).  Returns the
    exit status: 0, or 3 when a worker failed to start (its lifespan startup failed, its
    application could not be imported)."""
    import multiprocessing

    # The port is held by a bound socket of ours (never listening: the kernel hands connections
    # to the workers' listening sockets only), so that port 0 resolves once for all workers and
    # a replaced worker binds the same port again.
    family = socket.AF_INET6 if ":" in spec.host else socket.AF_INET
    holder = socket.socket(family, socket.SOCK_STREAM)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    holder.bind((spec.host, spec.port))
    spec = replace(spec, port=holder.getsockname()[1])
    context = multiprocessing.get_context("spawn")
    ready: Any = context.Queue()
    stopping = False

    def on_signal(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}

    def start() -> Any:
        process = context.Process(target=_worker_main, args=(spec, ready), daemon=False)
        process.start()
        return process

    processes = [start() for _ in range(workers)]
    started: set[int] = set()
    status = 0
    announced = False
    try:
        while not stopping:
            with contextlib.suppress(Exception):
                while True:
                    started.add(ready.get(timeout=0.2))
            if not announced and all(p.pid in started for p in processes):
                announced = True
                logger.info("ws2fast asgi: %d workers serving on port %d", workers, spec.port)
                if on_ready is not None:
                    on_ready(spec.port)
            for i, process in enumerate(processes):
                if process.is_alive() or stopping:
                    continue
                if process.pid not in started:
                    logger.error("ws2fast asgi: worker %d failed to start (exit status %s): stopping",
                                 process.pid, process.exitcode)
                    status = 3
                    stopping = True
                    break
                logger.warning("ws2fast asgi: worker %d died (exit status %s): starting another",
                               process.pid, process.exitcode)
                processes[i] = start()
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()             # SIGTERM: the worker's graceful shutdown
        timeout = stop_timeout
        if timeout is None:
            grace = spec.settings.timeout_graceful_shutdown
            timeout = grace + 10.0 if grace is not None else 60.0
        deadline = time.monotonic() + timeout
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                logger.warning("ws2fast asgi: worker %d did not stop in %g s: killed", process.pid, timeout)
                process.kill()
                process.join()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        holder.close()
    return status
