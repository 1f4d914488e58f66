"""connect() and Client: the asyncio WebSocket client.

``connect("wss://host/path")`` offers ALPN h2 and http/1.1; when the server picks h2 and
advertises SETTINGS_ENABLE_CONNECT_PROTOCOL it opens the WebSocket with an extended CONNECT
(RFC 8441), otherwise it falls back to an HTTP/1.1 Upgrade (on a new connection if the h2 one
cannot carry WebSockets).  ``ws.http_version`` says which.  ``ws://`` uses HTTP/1.1 unless
``http2=True`` asks for cleartext HTTP/2 by prior knowledge.

``Client("https://host")`` keeps one HTTP/2 connection and opens many WebSockets on it.

``early=True`` (both) goes beyond RFC 8441, as the HTTP working group's WebSocket2 discussion
wanted: the extended CONNECT leaves with the connection preface, without waiting for the
server's SETTINGS, and ``send()`` works before the server's answer, so the first message
arrives one round trip sooner.  The WebSocket is returned at once; the answer is waited for by
the first ``recv()`` (or ``close()``, ``ping()``), which raises
:class:`~ws2fast.exceptions.HandshakeFailed` (``.undelivered``: the early messages the server
did not take) if it failed.  A server that refuses speculation is handled without the
application noticing: the CONNECT is retried on the same connection when the server's SETTINGS
do allow extended CONNECT, or (``connect`` only) the WebSocket falls back to HTTP/1.1 on a new
connection, and the early messages are sent again there; each reaches the server's application
once.  ``early="auto"`` speculates only for origins :data:`ws2fast.capabilities.capability_cache`
has seen allow it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl as ssl_module
import weakref
from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from .. import events as ev
from ..capabilities import ADVERTISED, EARLY, NONE, STRICT, capability_cache
from ..config import Config
from ..errors import SettingCode
from ..exceptions import ConnectionLost, HandshakeFailed, InvalidURI
from .connection import Connection
from .transport import native_transport_applies, open_native_connection
from .websocket import WebSocket

__all__ = ["connect", "Client"]


# TLS contexts.  Without ``ssl=``, each ALPN list gets a default context of its own, made once
# per process and never changed (making one loads the system's CA store).  A context the
# caller gives gets its ALPN protocols set by ws2fast: h2 and http/1.1, or http/1.1 alone (with
# http2=False, and for the HTTP/1.1 fallback); connects sharing it take turns by ALPN list
# (_AlpnGate), so that one never changes it under another's handshake.  What ws2fast set last
# stays set: give another library its own context (or let it set its own ALPN).
_default_contexts: dict[tuple[str, ...], ssl_module.SSLContext] = {}


def _default_context(alpn: tuple[str, ...]) -> ssl_module.SSLContext:
    context = _default_contexts.get(alpn)
    if context is None:
        context = _default_contexts[alpn] = ssl_module.create_default_context()
        context.set_alpn_protocols(list(alpn))
    return context


class _AlpnGate:
    """The connects in progress on one caller's context: all with the same ALPN list."""

    def __init__(self) -> None:
        self.alpn: tuple[str, ...] | None = None
        self.users = 0
        self.waiters: list[asyncio.Future[None]] = []

    async def enter(self, context: ssl_module.SSLContext, alpn: tuple[str, ...]) -> None:
        while self.users and self.alpn != alpn:
            waiter = asyncio.get_running_loop().create_future()
            self.waiters.append(waiter)
            await waiter
        if self.alpn != alpn:
            context.set_alpn_protocols(list(alpn))
            self.alpn = alpn
        self.users += 1

    def leave(self) -> None:
        self.users -= 1
        if not self.users:
            waiters, self.waiters = self.waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.get_loop().call_soon_threadsafe(_wake, waiter)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


_gates: weakref.WeakKeyDictionary[ssl_module.SSLContext, _AlpnGate] = weakref.WeakKeyDictionary()


async def _open_connection(host: str, port: int, *, secure: bool, ssl: Any, http2: bool | None,
                           config: Config | None, max_queue: int, owner: Any = None,
                           alpn: list[str] | None = None, server_hostname: str | None = None) -> Connection:
    loop = asyncio.get_running_loop()

    def factory() -> Connection:
        return Connection(client_side=True, config=config, owner=owner, max_queue=max_queue,
                          http2=None if secure else bool(http2))

    if not secure:
        if native_transport_applies(loop, config, None):
            return await open_native_connection(factory, host, port)
        _, conn = await loop.create_connection(factory, host, port)
        return conn
    protocols = tuple(alpn or ("h2", "http/1.1"))
    hostname = server_hostname or host
    if not isinstance(ssl, ssl_module.SSLContext):
        _, conn = await loop.create_connection(factory, host, port, ssl=_default_context(protocols),
                                               server_hostname=hostname)
        return conn
    gate = _gates.get(ssl)
    if gate is None:
        gate = _gates[ssl] = _AlpnGate()
    await gate.enter(ssl, protocols)
    try:                                    # (the handshake is over when this returns)
        _, conn = await loop.create_connection(factory, host, port, ssl=ssl, server_hostname=hostname)
    finally:
        gate.leave()
    return conn


def _split(uri: str, schemes: tuple[str, str]) -> tuple[bool, str, int, str, str]:
    if not isinstance(uri, str):
        raise TypeError(f"the URI must be a str, not {type(uri).__name__}")
    parts = urlsplit(uri)
    if parts.scheme not in schemes:
        raise InvalidURI(f"{uri!r}: the scheme must be {schemes[0]} or {schemes[1]}")
    secure = parts.scheme == schemes[1]
    host = parts.hostname or ""
    if not host:
        raise InvalidURI(f"{uri!r} has no host")
    try:
        port = parts.port or (443 if secure else 80)
    except ValueError as exc:
        raise InvalidURI(f"{uri!r}: {exc}") from None
    default = port == (443 if secure else 80)
    authority = (f"[{host}]" if ":" in host else host) + ("" if default else f":{port}")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return secure, host, port, authority, path


class connect:
    """Open a WebSocket: ``async with connect(uri) as ws:`` or ``ws = await connect(uri)``.

    ``ssl``: an ``SSLContext`` (certificates are verified by default); ``http2``: None (ALPN
    decides, wss only), True (``ws://``: HTTP/2 by prior knowledge) or False (HTTP/1.1 only).
    ``listener``: a :class:`WebSocketListener` subclass to get callbacks instead of ``recv``.
    ``early``: False (strict RFC 8441), True or "auto" (see the module's docstring).

    A given ``SSLContext`` gets its ALPN protocols set: h2 and http/1.1, or http/1.1 alone with
    ``http2=False`` and for the HTTP/1.1 fallback.  Connects sharing it wait for each other
    rather than change it under one another's handshake; what was set last stays set, so give
    another library a context of its own.  Without ``ssl``, ws2fast uses default contexts of
    its own (certificates verified), made once per process.
    """

    def __init__(self, uri: str, *, ssl: Any = None, subprotocols: Iterable[str] = (),
                 extensions: Iterable[str] | None = None, origin: str | None = None,
                 additional_headers: Iterable[tuple[Any, Any]] = (), http2: bool | None = None,
                 config: Config | None = None, open_timeout: float = 10.0, max_queue: int = 16,
                 server_hostname: str | None = None, listener: Any = None,
                 early: bool | str = False) -> None:
        if early not in (False, True, "auto"):
            raise ValueError(f"early must be False, True or 'auto', not {early!r}")
        self.uri = uri
        self._early = early
        self._listener = listener
        self._options: dict[str, Any] = {"subprotocols": tuple(subprotocols),
                         "extensions": None if extensions is None else tuple(extensions),
                         "origin": origin, "headers": tuple(additional_headers)}
        self._ssl, self._http2, self._config = ssl, http2, config
        self._open_timeout, self._max_queue = open_timeout, max_queue
        self._server_hostname = server_hostname
        self.ws: WebSocket | None = None

    async def _open(self) -> WebSocket:
        return await asyncio.wait_for(self._open_now(), self._open_timeout)

    async def _open_now(self) -> WebSocket:
        secure, host, port, authority, path = _split(self.uri, ("ws", "wss"))
        origin = capability_cache.origin("wss" if secure else "ws", host, port)
        early = self._early is True or (self._early == "auto" and capability_cache.should_speculate(origin))
        alpn = ["http/1.1"] if self._http2 is False else ["h2", "http/1.1"]
        config = self._config
        if early and self._http2 is not False:
            config = replace(config or Config(), early_handshake=True)
        conn = await _open_connection(host, port, secure=secure, ssl=self._ssl, http2=self._http2,
                                      config=config, max_queue=self._max_queue, alpn=alpn,
                                      server_hostname=self._server_hostname)
        if conn.http_version == "HTTP/2" and early:
            return self._open_early(conn, path, authority, secure, host, port, origin)
        if conn.http_version == "HTTP/2":
            settings = await conn.settings_received
            capability_cache.learn(origin, ADVERTISED if settings.get(SettingCode.ENABLE_CONNECT_PROTOCOL)
                                   else NONE)
            if not settings.get(SettingCode.ENABLE_CONNECT_PROTOCOL):
                # h2 without RFC 8441: WebSockets need an HTTP/1.1 connection.
                conn.close_transport()
                if not secure:
                    raise HandshakeFailed("the server speaks HTTP/2 but does not allow extended CONNECT")
                conn = await _open_connection(host, port, secure=True, ssl=self._ssl, http2=False,
                                              config=self._config, max_queue=self._max_queue,
                                              alpn=["http/1.1"], server_hostname=self._server_hostname)
        try:
            ws = await conn.open_websocket(path, authority, scheme="https" if secure else "http",
                                           listener=self._listener, owns_connection=True, **self._options)
        except BaseException:
            conn.close_transport()
            raise
        self.ws = ws
        return ws

    def _open_early(self, conn: Connection, path: str, authority: str, secure: bool, host: str,
                    port: int, origin: Any) -> WebSocket:
        # The extended CONNECT goes now (with the preface, unless the SETTINGS came already);
        # the WebSocket is returned at once, and _settle sees the handshake through.
        ws = WebSocket(conn, 0, path=path, headers=(), subprotocol=None, owns_connection=True)
        ws._start_opening()
        scheme = "https" if secure else "http"
        try:
            future = conn.start_websocket(path, authority, scheme=scheme, listener=self._listener,
                                          owns_connection=True, ws=ws, **self._options)
        except BaseException:
            conn.close_transport()
            raise
        settle = _Settle(ws, origin, self._open_timeout, owns_connection=True)
        settle.reopen_h1 = lambda: _open_connection(
            host, port, secure=secure, ssl=self._ssl, http2=False, config=self._config,
            max_queue=self._max_queue, alpn=["http/1.1"], server_hostname=self._server_hostname)
        settle.reopen_h2 = lambda: _open_connection(
            host, port, secure=secure, ssl=self._ssl, http2=True if not secure else None,
            config=replace(self._config or Config(), early_handshake=True), max_queue=self._max_queue,
            alpn=["h2"], server_hostname=self._server_hostname)
        settle.handshake = {"path": path, "authority": authority, "scheme": scheme,
                            "listener": self._listener, **self._options}
        settle.start(conn, future)
        self.ws = ws
        return ws

    def __await__(self) -> Any:
        return self._open().__await__()

    async def __aenter__(self) -> WebSocket:
        return await self._open()

    async def __aexit__(self, *exc_info: object) -> None:
        if self.ws is not None:
            await self.ws.close()           # (its connection ends with it: owns_connection)


class Client:
    """Many WebSockets (and plain requests) over HTTP/2 connections to one origin.

    ``async with Client("https://host:8443") as client: a = await client.websocket("/a")``.
    ``http://`` origins use cleartext HTTP/2 by prior knowledge.

    Every WebSocket goes on the newest connection while the server's
    SETTINGS_MAX_CONCURRENT_STREAMS leaves it room.  When no connection has a free stream,
    :meth:`websocket` opens another one, up to ``max_connections`` (None, the default: no
    bound); past that it waits for a stream to close, within ``open_timeout``.  Opening more is
    the default because WebSockets are long-lived: a slot frees only when one of them closes,
    so waiting would usually just run into the timeout.
    """

    def __init__(self, origin: str, *, ssl: Any = None, config: Config | None = None,
                 open_timeout: float = 10.0, max_queue: int = 16, server_hostname: str | None = None,
                 max_connections: int | None = None, early: bool | str = False) -> None:
        if early not in (False, True, "auto"):
            raise ValueError(f"early must be False, True or 'auto', not {early!r}")
        if max_connections is not None and (isinstance(max_connections, bool) or not isinstance(max_connections, int)
                                            or max_connections < 1):
            raise ValueError(f"max_connections must be a positive int or None, not {max_connections!r}")
        self.origin = origin
        self._secure, self._host, self._port, self._authority, _ = _split(origin, ("http", "https"))
        self._ssl, self._config = ssl, config
        self._open_timeout, self._max_queue = open_timeout, max_queue
        self._server_hostname = server_hostname
        self._max_connections = max_connections
        self._early = early
        self._origin_key = capability_cache.origin("https" if self._secure else "http", self._host, self._port)
        #: the connections in use, oldest first (those lost or going away are dropped)
        self.connections: list[Connection] = []
        #: the newest connection (None before the first WebSocket or request)
        self.connection: Connection | None = None
        self._connecting: asyncio.Future[Connection] | None = None

    def _speculating(self) -> bool:
        return self._early is True or (self._early == "auto" and capability_cache.should_speculate(self._origin_key))

    async def _connect(self) -> Connection:
        early = self._speculating()
        config = replace(self._config or Config(), early_handshake=True) if early else self._config
        conn = await _open_connection(self._host, self._port, secure=self._secure, ssl=self._ssl, http2=True,
                                      config=config, max_queue=self._max_queue, alpn=["h2"],
                                      server_hostname=self._server_hostname)
        if conn.http_version != "HTTP/2":
            conn.close_transport()
            raise HandshakeFailed(f"{self.origin} did not agree to HTTP/2 (ALPN chose HTTP/1.1)")
        if early:
            return conn                     # (the first WebSockets go before the SETTINGS)
        # (a server that does not speak HTTP/2 fails this with HandshakeFailed saying so)
        settings = await conn.settings_received
        capability_cache.learn(self._origin_key, ADVERTISED if settings.get(SettingCode.ENABLE_CONNECT_PROTOCOL)
                               else NONE)
        if not settings.get(SettingCode.ENABLE_CONNECT_PROTOCOL):
            conn.close_transport()
            raise HandshakeFailed("the server does not allow WebSockets over HTTP/2 "
                                  "(no SETTINGS_ENABLE_CONNECT_PROTOCOL)")
        return conn

    @staticmethod
    def _usable(conn: Connection) -> bool:
        # A connection that is lost, or that either side has sent GOAWAY on (the server's idle
        # timeout, a shutdown), takes no new streams: the next one opens a fresh connection.
        return not conn.closed.done() and conn.engine is not None and not conn.engine.going_away

    async def _connection_with_room(self) -> Connection:
        """A connection that can take one more stream now: the newest with room, a new one,
        or, at max_connections, the first to free a slot."""
        while True:
            self.connections = [c for c in self.connections if self._usable(c)]
            for conn in reversed(self.connections):
                if conn.engine.can_open_stream:
                    return conn
            if self._max_connections is None or len(self.connections) < self._max_connections:
                if self._connecting is None:
                    self._connecting = asyncio.ensure_future(self._connect())
                    self._connecting.add_done_callback(self._connected)
                conn = await asyncio.shield(self._connecting)
                if not conn.engine.can_open_stream and not conn.engine.open_streams:
                    raise HandshakeFailed(f"{self.origin} allows no streams at all "
                                          "(SETTINGS_MAX_CONCURRENT_STREAMS = 0)")
                continue
            loop = asyncio.get_running_loop()
            slot = loop.create_future()
            for conn in self.connections:
                conn.add_slot_waiter(slot)
            await slot

    def _connected(self, future: asyncio.Future[Connection]) -> None:
        self._connecting = None
        if not future.cancelled() and future.exception() is None:
            self.connection = future.result()
            self.connections.append(self.connection)

    async def _opened(self, what: str, coro: Any) -> Any:
        try:
            return await asyncio.wait_for(coro, self._open_timeout)
        except asyncio.TimeoutError:
            full = self.connections and not any(c.engine.can_open_stream for c in self.connections)
            raise asyncio.TimeoutError(
                f"{what} did not open within {self._open_timeout:g} s (open_timeout)"
                + (f": all {len(self.connections)} connections are at the server's "
                   "SETTINGS_MAX_CONCURRENT_STREAMS (max_connections)" if full else "")) from None

    async def websocket(self, path: str = "/", *, subprotocols: Iterable[str] = (),
                        extensions: Iterable[str] | None = None, origin: str | None = None,
                        additional_headers: Iterable[tuple[Any, Any]] = ()) -> WebSocket:
        """Open one more WebSocket (on a connection with room, opening one if needed).

        With ``early``, it is returned as soon as its handshake is sent (see the module's
        docstring): ``send()`` at once, and the first ``recv()`` raises
        :class:`~ws2fast.exceptions.HandshakeFailed` if the server refused it."""
        handshake: dict[str, Any] = {
            "path": path, "authority": self._authority, "scheme": "https" if self._secure else "http",
            "subprotocols": tuple(subprotocols), "origin": origin,
            "extensions": None if extensions is None else tuple(extensions),
            "headers": tuple(additional_headers)}

        async def open_one() -> WebSocket:
            conn = await self._connection_with_room()
            if conn.config.early_handshake:
                return self._open_early(conn, handshake)
            return await conn.open_websocket(**handshake)
        return await self._opened(f"the WebSocket {path!r}", open_one())

    def _open_early(self, conn: Connection, handshake: dict[str, Any]) -> WebSocket:
        ws = WebSocket(conn, 0, path=handshake["path"], headers=(), subprotocol=None)
        ws._start_opening()
        future = conn.start_websocket(ws=ws, **handshake)
        settle = _Settle(ws, self._origin_key, self._open_timeout, owns_connection=False)
        settle.reopen_h2 = self._connection_with_room
        settle.handshake = handshake
        settle.start(conn, future)
        return ws

    async def request(self, method: str, path: str, headers: Iterable[tuple[Any, Any]] = (),
                      body: bytes = b"") -> tuple[int, tuple, bytes]:
        """A plain HTTP request: (status, headers, body)."""
        conn = await self._opened(f"a stream for {method} {path!r}", self._connection_with_room())
        return await conn.request(method, path, self._authority, "https" if self._secure else "http",
                                  headers, body)

    async def close(self) -> None:
        """Close every WebSocket (close handshake), then every connection (GOAWAY)."""
        if self._connecting is not None:
            self._connecting.cancel()
        connections, self.connections = self.connections, []
        await asyncio.gather(*(self._close_one(conn) for conn in connections))

    @staticmethod
    async def _close_one(conn: Connection) -> None:
        await asyncio.gather(*(ws.close() for ws in list(conn.websockets.values())), return_exceptions=True)
        conn.goaway()
        conn.close_transport()
        try:
            await asyncio.wait_for(asyncio.shield(conn.closed), 1.0)
        except asyncio.TimeoutError:
            conn.abort()

    async def __aenter__(self) -> Client:  # noqa: PYI034
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


_EARLY_REFUSALS = (0, 400, 500, 501)      # (0: a reset or GOAWAY, no status)
_settling: set[asyncio.Task[None]] = set()


def _sent_early(conn: Connection, ws: WebSocket) -> tuple:
    # What the WebSocket's stream sent before the answer (HTTP/2; nothing over HTTP/1.1).
    engine = conn.engine
    return engine.sent_early(ws.stream_id) if engine is not None and engine.multiplexed else ()


class _EarlyHooks(Protocol):
    """What _Settle calls on the early WebSocket it sees through
    (:class:`ws2fast.aio.websocket.WebSocket`)."""

    stream_id: int

    def _start_opening(self) -> None: ...
    def _early_attempt(self, undelivered: tuple) -> None: ...
    def _not_sent(self) -> tuple: ...
    def _opening_failed(self, exc: BaseException) -> None: ...


class _Settle:
    """Sees an early WebSocket's handshake through: waits for the answer; when the server
    refused it for going early, opens it again strictly (same connection, a new HTTP/2
    connection, or HTTP/1.1 on a new connection) and sends the early messages again once that
    is accepted; teaches the capability cache what happened; and fails the WebSocket with
    HandshakeFailed when nothing works."""

    def __init__(self, ws: WebSocket, origin: Any, timeout: float, owns_connection: bool) -> None:
        self.ws = ws
        self.origin = origin
        self.timeout = timeout
        self.owns_connection = owns_connection      # connect(): the connection is the WebSocket's
        self.reopen_h1: Any = None          # () -> awaitable Connection over HTTP/1.1, or None
        self.reopen_h2: Any = None          # () -> awaitable new HTTP/2 Connection, or None
        self.handshake: dict[str, Any] = {}
        self.task: asyncio.Task[None] | None = None
        self.speculative = False
        self.conn: Connection

    def start(self, conn: Connection, future: asyncio.Future[Any]) -> None:
        # (speculative: sent before the server's SETTINGS, which only that teaches the cache)
        self.speculative = conn.engine.websockets_allowed is None
        self.task = asyncio.ensure_future(self._run(conn, future))
        _settling.add(self.task)                # (held until done: the loop keeps only weak ones)
        self.task.add_done_callback(_settling.discard)

    async def _run(self, conn: Connection, future: asyncio.Future[Any]) -> None:
        ws = self.ws
        self.conn = conn                        # the connection of the attempt in progress
        try:
            await asyncio.wait_for(self._attempts(future), self.timeout)
        except HandshakeFailed as exc:
            self._fail(exc)
        except asyncio.TimeoutError:
            unconfirmed = _sent_early(self.conn, ws) + ws._not_sent()
            self._fail(HandshakeFailed(f"no answer to the WebSocket handshake within {self.timeout:g} s "
                                       "(open_timeout)", unconfirmed=unconfirmed))
        except asyncio.CancelledError:
            self._fail(HandshakeFailed("the handshake was cancelled", unconfirmed=ws._not_sent()))
            raise
        except Exception as exc:                         # (a bug, or the transport failed)
            self._fail(HandshakeFailed(f"the handshake failed: {exc!r}", unconfirmed=ws._not_sent()))

    def _fail(self, exc: HandshakeFailed) -> None:
        conn = self.conn
        self.ws._opening_failed(exc)
        if conn.engine is not None and conn.engine.multiplexed:
            conn.abort_websocket(self.ws)       # (a stream still waiting: reset, CANCEL)
        if self.owns_connection:
            conn.close_transport()

    async def _move(self, reopen: Any) -> Connection:
        # The next attempt goes on a new connection; connect()'s old one ends (a Client's stays).
        old, self.conn = self.conn, await reopen()
        if self.owns_connection:
            old.close_transport()
        return self.conn

    async def _attempts(self, future: asyncio.Future[Any]) -> None:
        ws = self.ws
        retried = False
        while True:
            conn = self.conn
            try:
                answer = await future
            except ConnectionLost as exc:
                raise HandshakeFailed(f"the connection was lost before the server answered ({exc})",
                                      unconfirmed=_sent_early(conn, ws) + ws._not_sent()) from None
            if not isinstance(answer, ev.WebSocketRejected):
                if self.speculative and not retried:
                    capability_cache.learn(self.origin, EARLY)
                return
            engine = conn.engine
            # Refused for going early, not by the application: once more, strictly.  Seen: a
            # reset (an HTTP/2 stack holding a CONNECT to SETTINGS not yet acknowledged), 400
            # (hypercorn, to DATA before its application accepted), 500 (HAProxy 2.6, now and
            # then, to DATA that came with the CONNECT; its backend saw nothing).  Another
            # status is the application's answer.
            went_early = answer.speculative or bool(answer.undelivered)
            if not (went_early and answer.status in _EARLY_REFUSALS) or retried:
                raise await conn.refusal(answer, undelivered=tuple(answer.undelivered) + ws._not_sent())
            retried = True
            ws._early_attempt(tuple(answer.undelivered))
            if engine.websockets_allowed is None:
                # (refused before its SETTINGS: wait for them to know what it supports)
                with contextlib.suppress(Exception):
                    await asyncio.shield(conn.settings_received)
            if engine.websockets_allowed:
                capability_cache.learn(self.origin, STRICT)
                if not (engine.can_open_stream and not conn.closed.done()):
                    if self.reopen_h2 is None:
                        raise await conn.refusal(answer, undelivered=ws._not_sent())
                    conn = await self._move(self.reopen_h2)
                    if conn.http_version == "HTTP/2":
                        await conn.settings_received
            else:
                capability_cache.learn(self.origin, NONE)
                if self.reopen_h1 is None:
                    raise HandshakeFailed("the server does not allow WebSockets over HTTP/2 "
                                          "(no SETTINGS_ENABLE_CONNECT_PROTOCOL)", undelivered=ws._not_sent())
                conn = await self._move(self.reopen_h1)         # HTTP/1.1 on a new connection
            # Strictly: the messages wait for the answer this time (_accepted sends them).
            future = conn.start_websocket(ws=ws, owns_connection=self.owns_connection, **self.handshake)


if TYPE_CHECKING:
    def _early(ws: WebSocket) -> _EarlyHooks:              # mypy checks what _Settle calls
        return ws
