"""H1Connection: WebSockets over HTTP/1.1 (RFC 6455 Upgrade) and plain requests, sans-IO.

HTTP/1.1 is parsed by the ``h11`` library (once per request, so Python is fine here); after a
101 the connection carries one :class:`~ws2fast.websocket.WebSocketSession`, whose frames the
compiled parser reads.  The surface mirrors :class:`~ws2fast.H2Connection`, so an I/O layer can
drive either: every method takes a ``stream_id``, which over HTTP/1.1 is always 0, and the
events are the same classes.

Server side: a request is either a WebSocket Upgrade (:class:`WebSocketRequested`; answer with
:meth:`accept_websocket` or :meth:`reject_websocket`) or a plain request
(:class:`RequestReceived` / :class:`DataReceived` / :class:`StreamEnded`; answer with
:meth:`send_response`), with keep-alive between plain requests.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import h11

from ._core import H1Core
from .config import Config
from .events import (
    ConnectionTerminated,
    DataReceived,
    RequestReceived,
    ResponseReceived,
    StreamEnded,
    WebSocketAccepted,
    WebSocketRejected,
    WebSocketRequested,
)
from .errors import ErrorCode
from .exceptions import LocalProtocolError
from .deflate import ExtensionError, client_accept, client_offer, server_extensions
from .handshake import accept_key, encode_headers, websocket_offers
from .websocket import WebSocketSession

__all__ = ["H1Connection"]


def _tokens(headers: list[tuple[bytes, bytes]], name: bytes) -> list[bytes]:
    return [t.strip().lower() for n, v in headers if n == name for t in v.split(b",") if t.strip()]


def _one(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    values = [v for n, v in headers if n == name]
    return values[0] if len(values) == 1 else None


class H1Connection(H1Core):
    """One HTTP/1.1 connection, client or server side; at most one WebSocket on it."""

    # (session, _out and _failed are the compiled half's; no __dict__: one per connection)
    __slots__ = ("client_side", "config", "_h11", "_awaiting_answer", "_client_offer", "_answered",
                 "_request_method", "_key", "_deflate")

    def __init__(self, client_side: bool, config: Config | None = None) -> None:
        self.client_side = bool(client_side)
        self.config = config if config is not None else Config()
        self._h11 = h11.Connection(h11.CLIENT if client_side else h11.SERVER,
                                   max_incomplete_event_size=self.config.max_header_list_size)
        # session, _out and _failed are declared (and initialized) by the compiled half (H1Core)
        self.session: WebSocketSession | None
        self._awaiting_answer: tuple[tuple[str, ...], tuple[str, ...]] | None = None
        self._client_offer: tuple[bytes, tuple[str, ...], tuple[str, ...]] | None = None
        self._answered = False      # we answered the current request ourselves (400, 426)
        self._request_method = b""  # server: the method of the request being answered
        self._key = b""             # server: the Sec-WebSocket-Key being answered
        self._deflate: Any = None   # agreed permessage-deflate parameters

    # -- state ------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """The transport should be closed now: the WebSocket is over, or HTTP/1.1 says so."""
        if self._failed:
            return True
        if self.session is not None:
            return self.session.closed
        return self._http_closed()

    def _http_closed(self) -> bool:
        # Over once our side is done for good; the peer's side being done (a request with
        # "connection: close", or its EOF) ends the connection only once our answer is out.
        ours, theirs = self._h11.our_state, self._h11.their_state
        if ours in (h11.MUST_CLOSE, h11.CLOSED, h11.ERROR):
            return True
        return theirs in (h11.MUST_CLOSE, h11.CLOSED, h11.ERROR) and ours not in (h11.SEND_RESPONSE, h11.SEND_BODY)

    @property
    def http_version(self) -> str:
        return "HTTP/1.1"

    # (multiplexed, false here, is declared by the compiled engine interface)

    @property
    def open_streams(self) -> int:
        """1 while a WebSocket is open on the connection, else 0."""
        return 1 if self.session is not None and not self.closed else 0

    @property
    def can_open_stream(self) -> bool:
        """Client: whether a WebSocket or request may start now (nothing else is running)."""
        return self.client_side and self.session is None and self._client_offer is None \
            and not self.closed and self._h11.our_state is h11.IDLE

    @property
    def going_away(self) -> bool:
        return self.closed

    @property
    def websockets_allowed(self) -> bool | None:
        return True

    def sent_early(self, stream_id: int) -> tuple[Any, ...]:
        return ()                           # (messages never precede the 101 over HTTP/1.1)

    def has_stream(self, stream_id: int) -> bool:
        return stream_id == 0 and not self.closed

    def next_timeout(self) -> float | None:
        """None: HTTP/1.1 keeps no deadline of its own (the I/O layer's idle and close timeouts
        apply)."""
        return None

    def handle_timeouts(self) -> list[Any]:
        return []

    def send_connection_ping(self, payload: bytes) -> bool:
        """HTTP/1.1 has no ping of its own: False."""
        return False

    def goaway(self) -> None:
        """Nothing to send over HTTP/1.1: the exchange in progress finishes, then the I/O layer
        closes the connection."""

    # -- receiving --------------------------------------------------------------------------

    # receive_data(data), data_to_send() and send_message() are compiled (H1Core): bytes go
    # here until the handshake switched the connection to its WebSocket session.

    def _receive_http(self, data: Any) -> list[Any]:
        if not data:
            return []
        self._h11.receive_data(bytes(data))
        return self._drain()

    def receive_eof(self) -> list[Any]:
        """The peer closed its side of the transport."""
        if self.session is not None:
            return self.session.connection_lost()
        if self._failed:
            return []
        self._h11.receive_data(b"")
        return self._drain()

    def _drain(self) -> list[Any]:
        events: list[Any] = []
        while self.session is None and not self._failed:
            try:
                event = self._h11.next_event()
            except h11.RemoteProtocolError as exc:
                self._protocol_error(exc, events)
                break
            if event is h11.NEED_DATA or event is h11.PAUSED:
                break
            if isinstance(event, h11.ConnectionClosed):
                break
            if self.client_side:
                self._client_event(event, events)
            else:
                self._server_event(event, events)
        return events

    def _protocol_error(self, exc: h11.RemoteProtocolError, events: list[Any]) -> None:
        self._failed = True
        if not self.client_side and self._h11.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            status = exc.error_status_hint
            body = f"{status} {exc}\n".encode()
            self._out.append(
                b"HTTP/1.1 %d %s\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n"
                b"connection: close\r\n\r\n" % (status, _reason(status), len(body)) + body)
        events.append(ConnectionTerminated(ErrorCode.PROTOCOL_ERROR, 0, b"", False, str(exc)))

    # server --------------------------------------------------------------------------------

    def _server_event(self, event: Any, events: list[Any]) -> None:
        if isinstance(event, h11.Request):
            self._answered = False
            self._request_method = bytes(event.method)
            headers = [(bytes(n).lower(), bytes(v)) for n, v in event.headers]
            target = event.target.decode("ascii", "replace")
            host = (_one(headers, b"host") or b"").decode("ascii", "replace")
            if b"websocket" in _tokens(headers, b"upgrade"):
                self._websocket_request(event, headers, target, host, events)
            else:
                events.append(RequestReceived(0, event.method.decode("ascii"), target, host, "http",
                                              tuple(headers), False))
        elif isinstance(event, h11.Data):
            if not self._answered:
                events.append(DataReceived(0, bytes(event.data), len(event.data)))
        elif isinstance(event, h11.EndOfMessage):
            if self._awaiting_answer is None and not self._answered:
                events.append(StreamEnded(0))
            if self._h11.our_state is h11.DONE and self._h11.their_state is h11.DONE:
                self._h11.start_next_cycle()

    def _websocket_request(self, event: h11.Request, headers: list[tuple[bytes, bytes]], target: str,
                           host: str, events: list[Any]) -> None:
        # RFC 6455 §4.2.1: what a server must check before answering 101.
        problem = ""
        key = _one(headers, b"sec-websocket-key")
        if event.method != b"GET":
            problem = "a WebSocket handshake uses GET"
        elif event.http_version != b"1.1":
            problem = "a WebSocket handshake needs HTTP/1.1"
        elif b"upgrade" not in _tokens(headers, b"connection"):
            problem = "Connection: Upgrade is missing"
        elif key is None and not any(n == b"sec-websocket-key" for n, _ in headers):
            problem = "missing Sec-WebSocket-Key header"
        elif key is None or len(_b64(key)) != 16:
            problem = "Sec-WebSocket-Key must be one base64 value of 16 bytes"
        version = _one(headers, b"sec-websocket-version")
        if not problem and version != b"13":
            self._simple_response(426, [(b"sec-websocket-version", b"13")],
                                  b"WebSocket version 13 only\n")
            return
        if problem:
            self._simple_response(400, [], problem.encode() + b"\n")
            return
        subprotocols, extensions, origin = websocket_offers(headers)
        self._awaiting_answer = (subprotocols, extensions)
        assert key is not None                  # (checked above)
        self._key = key
        events.append(WebSocketRequested(0, target, host, "http", subprotocols, extensions, origin,
                                         tuple(headers)))

    def _simple_response(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self._answered = True
        self._send(h11.Response(status_code=status, reason=_reason(status), headers=headers + [
            (b"content-length", str(len(body)).encode()), (b"content-type", b"text/plain")]))
        if self._request_method != b"HEAD":
            self._send(h11.Data(data=body))
        self._send(h11.EndOfMessage())

    def accept_websocket(self, stream_id: int = 0, subprotocol: str | None = None,
                         extensions: Iterable[str] | None = None,
                         headers: Iterable[tuple[bytes | str, bytes | str]] = ()) -> list[Any]:
        """Server: answer the Upgrade with 101 (RFC 6455 §4.2.2).  Returns the events of frames
        the client sent right behind its request."""
        offers = self._answer_pending(stream_id)
        if subprotocol is not None and subprotocol not in offers[0]:
            raise LocalProtocolError(f"subprotocol {subprotocol!r} was not offered ({offers[0]!r})")
        fields = [(b"upgrade", b"websocket"), (b"connection", b"Upgrade"),
                  (b"sec-websocket-accept", accept_key(self._key).encode())]
        if subprotocol is not None:
            fields.append((b"sec-websocket-protocol", subprotocol.encode("ascii")))
        response, self._deflate = server_extensions(extensions, offers[1], self.config)
        if response:
            fields.append((b"sec-websocket-extensions", response.encode("ascii")))
        fields.extend(_h1_headers(headers))
        self._send(h11.InformationalResponse(status_code=101, reason=b"Switching Protocols", headers=fields))
        return self._switch()

    def reject_websocket(self, stream_id: int = 0, status: int = 403,
                         headers: Iterable[tuple[bytes | str, bytes | str]] = (),
                         body: bytes = b"") -> list[Any]:
        """Server: refuse the Upgrade with a plain response; the connection stays usable for
        plain requests.  Returns events of pipelined requests already read."""
        self._answer_pending(stream_id)
        if not 400 <= status <= 599:
            raise LocalProtocolError(f"a WebSocket is refused with a 4xx or 5xx status, not {status}")
        body = bytes(body)
        self._send(h11.Response(status_code=status, reason=_reason(status), headers=_h1_headers(headers) + [
            (b"content-length", str(len(body)).encode())]))
        if body:
            self._send(h11.Data(data=body))
        self._send(h11.EndOfMessage())
        return self._next_cycle()

    def _answer_pending(self, stream_id: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
        if stream_id != 0 or self._awaiting_answer is None:
            raise LocalProtocolError("no WebSocket request awaits an answer")
        offers = self._awaiting_answer
        self._awaiting_answer = None
        return offers

    def response_pending(self, stream_id: int = 0) -> bool:
        """Server: whether a plain request on ``stream_id`` awaits its response head."""
        return stream_id == 0 and not self.client_side and not self._failed \
            and self._h11.our_state is h11.SEND_RESPONSE and self._awaiting_answer is None

    def send_continue(self, stream_id: int = 0) -> bool:
        """Server: answer ``Expect: 100-continue`` with ``100 Continue`` if the client is
        waiting for it (RFC 9110 §10.1.1); True if it was sent.  Call it when the application
        asks for the body."""
        if stream_id != 0 or self.client_side or self._failed or not self._h11.they_are_waiting_for_100_continue \
                or self._h11.our_state is not h11.SEND_RESPONSE:
            return False
        self._send(h11.InformationalResponse(status_code=100, reason=b"Continue", headers=[]))
        return True

    def send_response(self, stream_id: int, status: int,
                      headers: Iterable[tuple[bytes | str, bytes | str]] = (), body: bytes | None = b"",
                      *, end_stream: bool = True) -> list[Any]:
        """Server: answer a plain request.  With ``end_stream=False`` the body continues with
        :meth:`send_body`.  Returns events of pipelined requests already read.

        The arguments are checked before anything is written, so a refused response leaves the
        request still awaiting one.  The answer to a HEAD request carries no body: ``body`` only
        sets its content-length (RFC 9110 §9.3.2)."""
        if not self.response_pending(stream_id):
            raise LocalProtocolError("no plain request awaits a response")
        status = _final_status(status)
        fields = _h1_headers(headers)
        body = bytes(body) if body else b""
        if end_stream and not any(n == b"content-length" for n, _ in fields):
            fields.append((b"content-length", str(len(body)).encode()))
        self._send(h11.Response(status_code=status, reason=_reason(status), headers=fields))
        if body and self._request_method != b"HEAD":
            self._send(h11.Data(data=body))
        if end_stream:
            self._send(h11.EndOfMessage())
            return self._next_cycle()
        return []

    def send_body(self, stream_id: int, data: bytes, *, end_stream: bool = False) -> list[Any]:
        """Send (more of) a response body (or, client, a request body); dropped for HEAD."""
        if stream_id != 0 or self._h11.our_state != h11.SEND_BODY:
            raise LocalProtocolError("no body is being sent")
        data = bytes(data)
        if data and (self.client_side or self._request_method != b"HEAD"):
            self._send(h11.Data(data=data))
        if end_stream:
            self._send(h11.EndOfMessage())
            return self._next_cycle()
        return []

    def _next_cycle(self) -> list[Any]:
        if self._h11.our_state is h11.DONE and self._h11.their_state is h11.DONE:
            self._h11.start_next_cycle()
            return self._drain()
        return []

    # client --------------------------------------------------------------------------------

    def open_websocket(self, path: str, authority: str, *, scheme: str = "http",
                       subprotocols: Iterable[str] = (), extensions: Iterable[str] | None = None,
                       origin: str | None = None,
                       headers: Iterable[tuple[bytes | str, bytes | str]] = ()) -> int:
        """Client: send the Upgrade request (RFC 6455 §4.1); returns 0, the stream id."""
        if not self.client_side:
            raise LocalProtocolError("only a client opens WebSockets")
        if self._client_offer is not None or self.session is not None:
            raise LocalProtocolError("HTTP/1.1 carries one WebSocket per connection")
        key = base64.b64encode(os.urandom(16))
        subprotocols = tuple(subprotocols)
        extensions = tuple(extensions) if extensions is not None else \
            ((client_offer(),) if self.config.permessage_deflate else ())
        fields = [(b"host", authority.encode("ascii")), (b"upgrade", b"websocket"),
                  (b"connection", b"Upgrade"), (b"sec-websocket-key", key),
                  (b"sec-websocket-version", b"13")]
        if subprotocols:
            fields.append((b"sec-websocket-protocol", ", ".join(subprotocols).encode("ascii")))
        if extensions:
            fields.append((b"sec-websocket-extensions", ", ".join(extensions).encode("ascii")))
        if origin is not None:
            fields.append((b"origin", origin.encode("ascii")))
        fields.extend(_h1_headers(headers))
        self._send(h11.Request(method=b"GET", target=path.encode("ascii"), headers=fields))
        self._send(h11.EndOfMessage())
        self._client_offer = (key, subprotocols, extensions)
        return 0

    def send_request(self, method: str, path: str, authority: str, *, scheme: str = "http",
                     headers: Iterable[tuple[bytes | str, bytes | str]] = (),
                     body: bytes | None = b"", end_stream: bool = True) -> int:
        """Client: send a plain request; returns 0."""
        if not self.client_side:
            raise LocalProtocolError("only a client sends requests")
        fields = [(b"host", authority.encode("ascii"))] + _h1_headers(headers)
        if end_stream and not any(n in (b"content-length", b"transfer-encoding") for n, _ in fields):
            fields.append((b"content-length", str(len(body or b"")).encode()))
        self._send(h11.Request(method=method.encode("ascii"), target=path.encode("ascii"), headers=fields))
        if body:
            self._send(h11.Data(data=bytes(body)))
        if end_stream:
            self._send(h11.EndOfMessage())
        return 0

    def _client_event(self, event: Any, events: list[Any]) -> None:
        headers = [(bytes(n).lower(), bytes(v)) for n, v in getattr(event, "headers", ())]
        if isinstance(event, h11.InformationalResponse):
            if event.status_code == 101 and self._client_offer is not None:
                self._upgrade_response(headers, events)
        elif isinstance(event, h11.Response):
            if self._client_offer is not None:
                self._client_offer = None
                events.append(WebSocketRejected(0, event.status_code, tuple(headers)))
            else:
                events.append(ResponseReceived(0, event.status_code, tuple(headers), False))
        elif isinstance(event, h11.Data):
            events.append(DataReceived(0, bytes(event.data), len(event.data)))
        elif isinstance(event, h11.EndOfMessage):
            events.append(StreamEnded(0))
            if self._h11.our_state is h11.DONE and self._h11.their_state is h11.DONE:
                self._h11.start_next_cycle()

    def _upgrade_response(self, headers: list[tuple[bytes, bytes]], events: list[Any]) -> None:
        # RFC 6455 §4.1: what a client must check in the server's 101.
        assert self._client_offer is not None
        key, offered_protocols, offered_extensions = self._client_offer
        self._client_offer = None
        subprotocols, extensions, _ = websocket_offers(headers)
        problem = ""
        if b"websocket" not in _tokens(headers, b"upgrade"):
            problem = "101 without Upgrade: websocket"
        elif b"upgrade" not in _tokens(headers, b"connection"):
            problem = "101 without Connection: Upgrade"
        elif _one(headers, b"sec-websocket-accept") != accept_key(key).encode():
            problem = "Sec-WebSocket-Accept does not match our key"
        elif len(subprotocols) > 1 or (subprotocols and subprotocols[0] not in offered_protocols):
            problem = f"server chose subprotocol {subprotocols!r}, not one we offered"
        elif extensions and not offered_extensions:
            problem = f"server chose extensions {extensions!r} although we offered none"
        elif extensions:
            try:
                self._deflate = client_accept(extensions, ", ".join(offered_extensions))
            except ExtensionError as exc:
                problem = str(exc)
        if problem:
            self._failed = True
            events.append(WebSocketRejected(0, 101, tuple(headers), problem))
            return
        events.append(WebSocketAccepted(0, 101, subprotocols[0] if subprotocols else None,
                                        extensions, tuple(headers)))
        events.extend(self._switch())

    def _switch(self) -> list[Any]:
        trailing, _ = self._h11.trailing_data
        self.session = WebSocketSession(self.client_side, self.config, deflate=self._deflate)
        return self.session.receive_data(trailing) if trailing else []

    def _send(self, event: Any) -> None:
        data = self._h11.send(event)
        if data:
            self._out.append(data)

    # -- the WebSocket ----------------------------------------------------------------------

    def _ws(self, stream_id: int) -> WebSocketSession:
        if stream_id != 0 or self.session is None:
            raise LocalProtocolError("no WebSocket is open on this connection")
        return self.session

    def send_fragment(self, stream_id: int, data: Any, *, first: bool, fin: bool, text: bool = False) -> None:
        self._ws(stream_id).send_fragment(data, first=first, fin=fin, text=text)

    def ping(self, stream_id: int, payload: bytes = b"") -> None:
        self._ws(stream_id).ping(payload)

    def send_pong(self, stream_id: int, payload: bytes = b"") -> None:
        self._ws(stream_id).send_pong(payload)

    def close_websocket(self, stream_id: int, code: int = 1000, reason: str = "") -> list[Any]:
        return self._ws(stream_id).close(code, reason)

    def abort_websocket(self, stream_id: int = 0) -> None:
        """Give up at once: the I/O layer closes the transport (:attr:`closed` is true)."""
        self._ws(stream_id)
        self._failed = True

    def reset_stream(self, stream_id: int = 0, error_code: int = 0) -> None:
        """Abandon the exchange in progress: HTTP/1.1 can only drop the connection, so
        :attr:`closed` turns true."""
        self._failed = True

    def acknowledge(self, stream_id: int, nbytes: int) -> None:
        """No flow control in HTTP/1.1: TCP's is the backpressure."""

    def outgoing_buffered(self, stream_id: int) -> int:
        """0: frames go straight to the output (no flow-control window to wait for)."""
        return 0

    def receive_into(self, stream_id: int, buffer: Any) -> None:
        """Unmask the next binary message straight into ``buffer`` if it fits."""
        self._ws(stream_id).parser.receive_into(buffer)

    def cancel_receive_into(self, stream_id: int) -> None:
        if self.session is not None:
            self.session.parser.cancel_receive_into()


def _reason(status: int) -> bytes:
    """The standard reason phrase (RFC 9110 §15), or none for a status without one."""
    try:
        return HTTPStatus(status).phrase.encode("ascii")
    except ValueError:
        return b""


def _final_status(status: Any) -> int:
    if isinstance(status, bool) or not isinstance(status, int) or not 200 <= status <= 599:
        raise LocalProtocolError(f"a response status is an int from 200 to 599, not {status!r}")
    return status


def _b64(value: bytes) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:
        return b""


def _h1_headers(headers: Iterable[tuple[bytes | str, bytes | str]]) -> list[tuple[bytes, bytes]]:
    # The caller's fields, checked; ``connection: close`` is the one connection-specific field
    # a caller may give over HTTP/1.1: the connection ends after this message (RFC 9112 §9.6).
    if not headers:
        return []
    headers = list(headers)
    close = [(n, v) for n, v in headers if _lower(n) == b"connection" and _lower(v).strip() == b"close"]
    if not close:
        return encode_headers(headers)
    out = encode_headers([field for field in headers if field not in close])
    out.append((b"connection", b"close"))
    return out


def _lower(text: bytes | str) -> bytes:
    return (text.encode("latin-1") if isinstance(text, str) else bytes(text)).lower()


if TYPE_CHECKING:
    from ._upcalls import H1CoreUpcalls
    from .engine import Engine

    def _implements(c: H1Connection) -> H1CoreUpcalls:      # mypy checks the calls the core makes
        return c

    def _engine(c: H1Connection) -> Engine:      # mypy checks the engine interface
        return c
