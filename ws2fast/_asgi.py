"""ASGI WebSocket events over a ws2fast connection: one object per WebSocket request.

The "HTTP & WebSocket ASGI Message Format" (spec version 2.4) on top of the asyncio layer's
:class:`~ws2fast.aio.connection.Connection` and :class:`~ws2fast.aio.WebSocket`: the messages
the application receives are taken straight from the WebSocket's compiled queue, and those it
sends are framed by the compiled core, so that an ASGI message costs the ASGI call and a dict,
nothing more.  A *host* (the uvicorn protocol class, or ws2fast's own ASGI server) runs the
application and owns the transport; this object keeps the rules of the events:

- before the handshake's answer: ``websocket.accept`` (subprotocol, headers),
  ``websocket.close`` (a 403), or the denial response extension
  (``websocket.http.response.start`` / ``.body``);
- once open: ``websocket.send`` (exactly one of ``bytes``/``text``) and ``websocket.close``;
- ``websocket.disconnect`` once the WebSocket is over, after every message that came before.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote, unquote

from .aio.connection import Connection
from .aio.websocket import WebSocket
from .events import WebSocketRequested
from .exceptions import ConnectionClosed, LocalProtocolError
from .handshake import encode_headers
from .websocket import close_payload

__all__ = ["ASGIWebSocket", "ClientDisconnected", "websocket_scope"]

_CONNECTING, _RESPONDING, _OPEN, _CLOSING, _CLOSED = range(5)

_500 = b"Internal Server Error"
_FRAMING = frozenset([b"content-length", b"transfer-encoding", b"connection", b"keep-alive", b"upgrade"])


class ClientDisconnected(OSError):
    """``send()`` on a WebSocket whose client is gone (ASGI 2.4: an ``OSError`` subclass)."""


class _Host(Protocol):
    """What runs the application around an :class:`ASGIWebSocket`."""

    def app_closing(self) -> None:
        """The application sent ``websocket.close``: wait for the peer's Close, not forever."""

    def answered(self) -> None:
        """The handshake was refused (403, 500, or the application's denial response): the
        transport ends once that answer is out."""


class _Queue(Protocol):
    """What this driver uses of :class:`~ws2fast.aio.WebSocket` beyond its public API: the
    compiled message queue and send path (tests/test_engine.py holds every private name used
    here to these declarations)."""

    _messages: deque[Any]
    _listener: Any

    def _take(self) -> Any: ...
    async def _wait(self) -> None: ...
    def _wake(self) -> None: ...
    def _send_soon(self, message: Any) -> bool: ...
    async def _drain(self) -> None: ...


class _Transport(Protocol):
    """... and of its :class:`~ws2fast.aio.connection.Connection`: whether the transport
    asked us to stop writing, and whether it is gone."""

    _paused_writing: bool
    _lost: bool
    _unflushed: int


class _Drop:
    # The listener of a WebSocket the application closed: what still comes is dropped (its
    # window given back), so that the peer's Close is read whatever it sent before it.
    __slots__ = ()

    def on_open(self, ws: Any) -> None:
        pass

    def on_message(self, ws: Any, message: Any) -> None:
        pass

    def on_close(self, ws: Any, code: int, reason: str) -> None:
        pass


_DROP = _Drop()


def websocket_scope(event: WebSocketRequested, *, http_version: str, scheme: str, server: Any, client: Any,
                    root_path: str, state: dict[str, Any], asgi_version: str = "3.0") -> dict[str, Any]:
    """The ASGI ``websocket`` scope of a WebSocket request (RFC 6455 Upgrade or RFC 8441)."""
    raw_path, _, query = event.path.partition("?")
    headers = [(bytes(n), bytes(v)) for n, v in event.headers if not n.startswith(b":")]
    if http_version == "2" and event.authority and not any(n == b"host" for n, _ in headers):
        headers.insert(0, (b"host", event.authority.encode("latin-1")))
    return {
        "type": "websocket",
        "asgi": {"version": asgi_version, "spec_version": "2.4"},
        "http_version": http_version,
        "scheme": scheme,
        "server": server,
        "client": client,
        "root_path": root_path,
        "path": root_path + unquote(raw_path),
        "raw_path": root_path.encode("latin-1") + raw_path.encode("latin-1"),
        "query_string": query.encode("latin-1"),
        "headers": headers,
        "subprotocols": list(event.subprotocols),
        "state": state,
        "extensions": {"websocket.http.response": {}},
    }


class ASGIWebSocket:
    """The ``receive`` and ``send`` of one ASGI WebSocket connection scope.

    ``disconnected`` is the ``OSError`` subclass ``send()`` raises once the client is gone (the
    host's own, so that the host recognises it); ``default_headers`` go first in the 101.
    """

    __slots__ = ("conn", "event", "scope", "host", "logger", "default_headers", "disconnected", "ws",
                 "_state", "_events", "_waiter", "_response")

    def __init__(self, conn: Connection, event: WebSocketRequested, scope: dict[str, Any], host: _Host, *,
                 default_headers: list[tuple[bytes, bytes]] | None = None,
                 disconnected: type[OSError] = ClientDisconnected,
                 logger: logging.Logger | None = None) -> None:
        self.conn = conn
        self.event = event
        self.scope = scope
        self.host = host
        self.logger = logger if logger is not None else logging.getLogger("ws2fast")
        self.default_headers = list(default_headers or ())
        self.disconnected = disconnected
        self.ws: WebSocket | None = None
        self._state = _CONNECTING
        self._events: deque[dict[str, Any]] = deque([{"type": "websocket.connect"}])
        self._waiter: Any = None
        self._response: tuple[int, list[tuple[bytes, bytes]], bytearray] | None = None

    # -- receive -----------------------------------------------------------------------------

    async def receive(self) -> dict[str, Any]:
        ws = self.ws
        if ws is not None and ws._messages and self._state == _OPEN:
            data = ws._take()           # compiled: dequeue, give the window back, resume reading
            if type(data) is str:
                return {"type": "websocket.receive", "text": data}
            return {"type": "websocket.receive", "bytes": data}
        return await self._receive_wait()

    async def _receive_wait(self) -> dict[str, Any]:
        while True:
            if self._events:
                event = self._events.popleft()
                if not self._events and event["type"] == "websocket.disconnect":
                    self._events.append(event)      # asked again: the same answer, never a hang
                return event
            ws = self.ws
            if ws is not None and self._state == _OPEN:
                if ws._messages:
                    return await self.receive()
                if ws.closed:
                    self._state = _CLOSED
                    code = ws.close_code if ws.close_code is not None else 1006
                    if code == 1006:        # no Close came: the connection was lost
                        self._events.append({"type": "websocket.disconnect", "code": 1006})
                    else:
                        self._events.append({"type": "websocket.disconnect", "code": code,
                                             "reason": ws.close_reason})
                    continue
                if self.conn._unflushed:
                    self.conn.flush()               # what this turn sent goes out in one write
                await ws._wait()
            else:
                self._waiter = waiter = self.conn.loop.create_future()
                try:
                    await waiter
                finally:
                    self._waiter = None

    def _push(self, event: dict[str, Any]) -> None:
        self._events.append(event)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        if self.ws is not None:
            self.ws._wake()                 # (a receive() waiting for a message)

    # -- send --------------------------------------------------------------------------------

    async def send(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if self._state == _OPEN and kind == "websocket.send":
            ws = self.ws
            assert ws is not None
            conn = self.conn
            if conn._paused_writing and not conn._lost:
                await conn.flush_and_wait(ws)           # the transport is full: nothing is written
            if ws.closed or self._state != _OPEN:
                raise self.disconnected("the client is gone")
            data = message.get("bytes")
            text = message.get("text")
            if data is None:
                if text is None:
                    raise TypeError("websocket.send needs one of 'bytes' and 'text', got neither")
                data = text
            elif text is not None:
                raise TypeError("websocket.send takes exactly one of 'bytes' and 'text', got both")
            if not ws._send_soon(data):                 # compiled: frame; written this loop turn
                try:
                    await ws._drain()
                except ConnectionClosed:
                    raise self.disconnected("the client is gone") from None
            return
        if self.conn._lost and self._state in (_CONNECTING, _OPEN):
            raise self.disconnected("the client is gone")
        if self._state == _CONNECTING:
            self._before_answer(message, kind)
        elif self._state == _RESPONDING:
            if kind != "websocket.http.response.body":
                raise RuntimeError(f"Expected ASGI message 'websocket.http.response.body' but got '{kind}'.")
            assert self._response is not None
            self._response[2].extend(message.get("body", b""))
            if not message.get("more_body", False):
                self._send_response()
        elif self._state == _OPEN:
            if kind != "websocket.close":
                raise RuntimeError(f"Expected ASGI message 'websocket.send' or 'websocket.close', but got '{kind}'.")
            code = message.get("code")
            self.close(1000 if code is None else code, message.get("reason") or "")
        elif self.ws is not None and self.ws.closed and self._state != _CLOSING:
            raise self.disconnected("the client is gone")
        else:
            raise RuntimeError(f"Unexpected ASGI message '{kind}', after sending 'websocket.close'.")

    def _before_answer(self, message: dict[str, Any], kind: str) -> None:
        if kind == "websocket.accept":
            self.accept(message.get("subprotocol"), message.get("headers") or ())
        elif kind == "websocket.close":
            self._log("403")
            self._refuse(403, [(b"content-type", b"text/plain; charset=utf-8")], b"")
        elif kind == "websocket.http.response.start":
            status = message["status"]
            if type(status) is not int or not 100 <= status < 600:
                raise RuntimeError(f"Invalid HTTP status code '{status}' in response.")
            self._log(str(status))
            headers = [(bytes(n), bytes(v)) for n, v in message.get("headers", ())]
            self._response = (status, headers, bytearray())
            self._state = _RESPONDING
        else:
            raise RuntimeError("Expected ASGI message 'websocket.accept', 'websocket.close' or "
                               f"'websocket.http.response.start' but got '{kind}'.")

    def accept(self, subprotocol: str | None, headers: Any) -> None:
        """Answer the handshake: 101 (or 200 over HTTP/2) with ``subprotocol`` and ``headers``."""
        event, conn = self.event, self.conn
        if subprotocol is not None and subprotocol not in event.subprotocols:
            raise RuntimeError(f"websocket.accept: the client did not offer the subprotocol {subprotocol!r} "
                               f"(it offered {list(event.subprotocols)!r})")
        fields = self.default_headers + [(bytes(n), bytes(v)) for n, v in headers]
        encode_headers(fields)              # a field that cannot be sent raises now, before anything
        ws = WebSocket(conn, event.stream_id, path=event.path, headers=event.headers, subprotocol=subprotocol,
                       request_headers=event.headers)
        early = conn.accept_websocket(ws, subprotocol, fields)
        self.ws = ws
        self._state = _OPEN
        self._log("[accepted]")
        conn.deliver(early)

    def close(self, code: int = 1000, reason: str = "") -> None:
        """The application closes: the Close goes out now; ``receive()`` says
        ``websocket.disconnect`` with this code; messages still queued or still coming are
        dropped."""
        close_payload(code, reason)                 # a code one may send, a reason that fits
        ws = self.ws
        assert ws is not None
        self._state = _CLOSING
        self._push({"type": "websocket.disconnect", "code": code, "reason": reason})
        self._drop_messages(ws)
        ws.close_nowait(code, reason)
        if not ws.closed:
            self.host.app_closing()

    def shutdown(self, code: int = 1012) -> None:
        """The server shuts down: an open WebSocket gets Close ``code`` (1012, service restart,
        as uvicorn sends), one not answered yet a 500."""
        if self._state == _OPEN:
            ws = self.ws
            assert ws is not None
            self._state = _CLOSING
            self._push({"type": "websocket.disconnect", "code": code})
            self._drop_messages(ws)
            ws.close_nowait(code)
        elif self._state in (_CONNECTING, _RESPONDING):
            self.fail()

    def fail(self) -> None:
        """The application ended (returned or raised) without answering the handshake: a 500,
        or the denial response it started, with the body it sent so far."""
        if self._state == _CONNECTING:
            self._refuse(500, [(b"content-type", b"text/plain; charset=utf-8")], _500)
        elif self._state == _RESPONDING:
            self._send_response()

    def lost(self) -> None:
        """The connection is gone (the host's connection_lost)."""
        if self._state in (_CONNECTING, _RESPONDING):
            self._state = _CLOSED
            self._push({"type": "websocket.disconnect", "code": 1006})

    @property
    def answered(self) -> bool:
        """Whether the handshake was answered (accepted or refused)."""
        return self._state not in (_CONNECTING, _RESPONDING)

    # -- internals ---------------------------------------------------------------------------

    def _drop_messages(self, ws: WebSocket) -> None:
        ws._listener = _DROP
        while ws._messages:
            ws._take()

    def _send_response(self) -> None:
        assert self._response is not None
        status, headers, body = self._response
        # The body is whole: its length is ours to say, and the framing fields are the engine's.
        fields = [(n, v) for n, v in headers if n.lower() not in _FRAMING]
        try:
            encode_headers(fields)
        except ValueError:
            self.logger.exception("the denial response's headers cannot be sent: a 500 instead")
            status, fields, body = 500, [(b"content-type", b"text/plain; charset=utf-8")], bytearray(_500)
        self._refuse(status, fields, bytes(body))

    def _refuse(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self._state = _CLOSED
        self._push({"type": "websocket.disconnect", "code": 1006})
        conn = self.conn
        if not 400 <= status <= 599:
            # (ws2fast refuses a WebSocket with a 4xx or 5xx; over HTTP/2 a 2xx would accept it)
            self.logger.error("a WebSocket denial response must have a 4xx or 5xx status, not %d: "
                              "a 500 instead", status)
            status, headers, body = 500, [(b"content-type", b"text/plain; charset=utf-8")], _500
        if not conn._lost:
            if conn.engine.http_version == "HTTP/1.1":
                headers = [*headers, (b"connection", b"close")]
            try:
                conn.reject_websocket(self.event.stream_id, status, headers, body)
            except (LocalProtocolError, ValueError):
                # (nothing of it went out: the request cannot be answered; the host ends it)
                self.logger.exception("the handshake's refusal could not be sent")
        self.host.answered()

    def _log(self, what: str) -> None:
        if self.logger.isEnabledFor(logging.INFO):
            client = self.scope.get("client")
            path = quote(self.scope["path"])
            if self.scope["query_string"]:
                path += "?" + self.scope["query_string"].decode("latin-1")
            who = f"{client[0]}:{client[1]}" if client else ""
            self.logger.info('%s - "WebSocket %s" %s', who, path, what)


if TYPE_CHECKING:
    def _queue(ws: WebSocket) -> _Queue:                 # mypy checks the declarations above
        return ws

    def _transport(c: Connection) -> _Transport:
        return c
