"""WebSocketSession: one WebSocket (RFC 6455 §5-§7), with no idea how it was opened or what
carries it.  :class:`~ws2fast.H1Connection` runs one over its byte stream after an HTTP/1.1
Upgrade; :class:`~ws2fast.H2Connection` runs one per WebSocket stream, over that stream's DATA
(RFC 8441 §5).  The rules are here once: automatic pongs, the close handshake and its
validation, failing the WebSocket with the right close code, control-frame limits, fragments.

Frames are parsed by the compiled :class:`~ws2fast.wsframes.FrameParser`.  Over a byte stream
the session reads and queues its frames itself (``receive_data``, ``send_message`` and
``data_to_send``, compiled in ``SessionCore``).  Over an HTTP/2 stream the connection's core
feeds the stream's parser and hands the session what is not a plain message (:meth:`handle`,
:meth:`fail`), and the session's frames go out through its *carrier*
(:class:`WebSocketCarrier`), which puts them in DATA frames.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from ._core import CloseReceived, FrameParser, Ping, SessionCore, build_ws_frame, is_valid_close_code
from .config import Config
from .deflate import DeflateParameters, PerMessageDeflate
from .errors import CloseCode, Opcode
from .events import WebSocketClosed
from .exceptions import LocalProtocolError, WebSocketProtocolError

__all__ = ["WebSocketSession", "WebSocketCarrier", "close_payload", "failure_payload"]

_OPEN, _CLOSING, _CLOSED = "open", "closing", "closed"
_FIN = 0x80


def close_payload(code: int, reason: str) -> bytes:
    """The payload of a Close we send (RFC 6455 §5.5.1): the code (none for 1005) and the
    reason, checked: a code an endpoint may send (§7.4), at most 125 octets in all (§5.5)."""
    if code == CloseCode.NO_STATUS_RCVD:
        return b""
    if not is_valid_close_code(code):
        raise LocalProtocolError(f"close code {code} may not be sent (RFC 6455 §7.4)")
    payload = code.to_bytes(2, "big") + reason.encode("utf-8")
    if len(payload) > 125:
        raise LocalProtocolError("close reason longer than 123 bytes (RFC 6455 §5.5)")
    return payload


def failure_payload(code: int, message: str) -> bytes:
    """The Close that fails a WebSocket (RFC 6455 §7.1.7): the code, and as much of the message
    as fits in a control frame, cut at a character boundary."""
    reason = message.encode("utf-8")[:120].decode("utf-8", "ignore").encode("utf-8")
    return int(code).to_bytes(2, "big") + reason


def _control_payload(payload: bytes, what: str) -> bytes:
    if len(payload) > 125:
        raise LocalProtocolError(f"a {what} payload is at most 125 bytes (RFC 6455 §5.5)")
    return payload


class WebSocketCarrier(Protocol):
    """What carries a session's frames when it is not a byte stream of its own (an HTTP/2
    stream: :class:`~ws2fast.H2Connection`)."""

    def websocket_frame(self, session: WebSocketSession, first_octet: int, payload: Any,
                        last: bool) -> None:
        """Send one frame (``first_octet``: FIN and opcode).  ``last``: our side ends after it
        (the Close that completes or fails the close handshake).  A frame after our side ended
        is dropped."""

    def websocket_closing(self, session: WebSocketSession) -> None:
        """We sent a Close and wait for the peer's (time to start the close timeout)."""

    def websocket_finished(self, session: WebSocketSession) -> None:
        """The WebSocket is over (close handshake complete, failed, or the peer ended its
        side): end our side if it is not, and read no more of it."""


class WebSocketSession(SessionCore):
    """One WebSocket.

    Over a byte stream (``carrier`` None): ``receive_data(data)`` returns message and control
    events plus one :class:`~ws2fast.events.WebSocketClosed` at the end; ``data_to_send()``
    returns the bytes to write.  Once :attr:`closed` is true the transport should be closed (by
    the server first, RFC 6455 §7.1.1).

    ``close_code``/``close_reason``: the peer's Close (or the code we failed the WebSocket
    with), None/"" until then.
    """

    # (the compiled half holds parser, client_side, deflate, state, the close flags and the
    # output; no __dict__: an HTTP/2 server may hold many thousands of sessions)
    __slots__ = ("config", "stream_id", "carrier", "close_code", "close_reason")

    def __init__(self, client_side: bool, config: Config | None = None, stream_id: int = 0,
                 deflate: DeflateParameters | None = None,
                 carrier: WebSocketCarrier | None = None) -> None:
        self.client_side = client_side
        self.config = config if config is not None else Config()
        self.stream_id = stream_id
        self.carrier = carrier
        self.deflate = None if deflate is None else PerMessageDeflate.from_config(deflate, self.config)
        self.parser = FrameParser(client_side, self.config.max_message_size) if self.deflate is None \
            else self.deflate.frame_parser(client_side)
        self.state = _OPEN
        self.close_code: int | None = None
        self.close_reason = ""
        self._close_sent = False
        self._close_received = False
        self._out: list[bytes] = []

    @property
    def closed(self) -> bool:
        """The close handshake is over (or the WebSocket failed): close the transport."""
        return self.state == _CLOSED

    @property
    def close_sent(self) -> bool:
        return self._close_sent

    @property
    def close_received(self) -> bool:
        return self._close_received

    @property
    def final_code(self) -> int:
        """The close code to report: the peer's, ours when we failed it, else 1006."""
        return self.close_code if self.close_code is not None else int(CloseCode.ABNORMAL_CLOSURE)

    # -- receiving --------------------------------------------------------------------------

    # receive_data(data) is compiled (SessionCore): a batch of data messages only is returned
    # as the parser made it; any other batch comes to _take, a parser error to _receive_failed.

    def _receive_failed(self, exc: WebSocketProtocolError) -> list[Any]:
        events = self._take(exc.events)
        if not self._close_received:
            self.fail(exc.close_code or CloseCode.PROTOCOL_ERROR, str(exc), events)
        return events

    def _take(self, items: list[Any]) -> list[Any]:
        events: list[Any] = []
        for item in items:
            self.handle(item, events)
        return events

    def handle(self, item: Any, events: list[Any]) -> None:
        """One parsed item (message, Ping, Pong or CloseReceived): apply the rules, append the
        events it makes."""
        if self._close_received or self.state == _CLOSED:
            return                          # nothing after a Close counts (RFC 6455 §5.5.1)
        kind = type(item)
        if kind is Ping:
            if self.config.auto_pong and not self._close_sent:
                self._frame(_FIN | Opcode.PONG, item.payload, False)
            events.append(item)
        elif kind is CloseReceived:
            self._on_close(item, events)
        else:
            events.append(item)

    def _on_close(self, close: CloseReceived, events: list[Any]) -> None:
        self._close_received = True
        if self.close_code is None:
            self.close_code, self.close_reason = close.code, close.reason
        events.append(close)
        if self._close_sent:
            self._finish(events)
        elif self.config.auto_close:
            # Echo the code (RFC 6455 §5.5.1): this Close completes the handshake.
            self._send_close(b"" if close.code == CloseCode.NO_STATUS_RCVD else close.code.to_bytes(2, "big"),
                             last=True)
            self._finish(events)
        else:
            self.state = _CLOSING

    def fail(self, code: int, message: str, events: list[Any]) -> None:
        """Fail the WebSocket (RFC 6455 §7.1.7): send a Close with ``code`` if we have not sent
        one, stop reading, report it closed with ``code`` and ``message``."""
        if self.state == _CLOSED:
            return
        if not self._close_sent:
            self._send_close(failure_payload(code, message), last=True)
        self.close_code, self.close_reason = int(code), message
        self._finish(events)

    def _finish(self, events: list[Any]) -> None:
        if self.state != _CLOSED:
            self.state = _CLOSED
            events.append(WebSocketClosed(self.stream_id, self.final_code, self.close_reason))
            if self.carrier is not None:
                self.carrier.websocket_finished(self)

    def connection_lost(self) -> list[Any]:
        """The transport (or the peer's side of the stream) ended: returns the final
        WebSocketClosed (1006 unless a Close came)."""
        events: list[Any] = []
        self._finish(events)
        return events

    def terminated(self, events: list[Any], code: int, reason: str, reset_code: int | None) -> None:
        """What carried the WebSocket is gone (a reset stream, a timeout, the connection
        ended): report it closed with these, once, and send nothing more."""
        self._close_sent = True
        if self.state != _CLOSED:
            self.state = _CLOSED
            events.append(WebSocketClosed(self.stream_id, code, reason, reset_code))

    # -- sending ----------------------------------------------------------------------------

    def _frame(self, first_octet: int, payload: Any, last: bool) -> None:
        if self.carrier is not None:
            self.carrier.websocket_frame(self, first_octet, payload, last)
        else:
            self._out.append(build_ws_frame(first_octet & 0x0F, payload, fin=bool(first_octet & _FIN),
                                            mask=self.client_side))

    def _send_close(self, payload: bytes, last: bool) -> None:
        self._close_sent = True
        self._frame(_FIN | Opcode.CLOSE, payload, last)

    def _check_open(self) -> None:
        if self._close_sent or self.state == _CLOSED:
            raise LocalProtocolError("the WebSocket is closing or closed")

    # send_message(data) is compiled (SessionCore; over HTTP/2 the connection's core frames
    # messages itself); a compressed one comes here.

    def _send_deflated(self, data: Any) -> None:
        assert self.deflate is not None
        opcode = 0x1 if isinstance(data, str) else 0x2
        raw = data.encode("utf-8") if opcode == 0x1 else bytes(data)
        if len(raw) >= self.deflate.threshold:
            self._out.append(build_ws_frame(opcode, self.deflate.compress(raw), rsv1=True,
                                            mask=self.client_side))
        else:
            self._out.append(build_ws_frame(opcode, data, mask=self.client_side))

    def send_fragment(self, data: Any, *, first: bool, fin: bool, text: bool = False) -> None:
        """Send one frame of a fragmented message (``first``: the opening frame, whose type
        ``text`` decides; ``fin``: the last)."""
        self._check_open()
        opcode = (Opcode.TEXT if text else Opcode.BINARY) if first else Opcode.CONTINUATION
        if isinstance(data, str):
            data = data.encode("utf-8")
        self._frame((_FIN if fin else 0) | opcode, data, False)

    def ping(self, payload: bytes = b"") -> None:
        self._check_open()
        self._frame(_FIN | Opcode.PING, _control_payload(payload, "ping"), False)

    def send_pong(self, payload: bytes = b"") -> None:
        self._check_open()
        self._frame(_FIN | Opcode.PONG, _control_payload(payload, "pong"), False)

    def close(self, code: int = 1000, reason: str = "") -> list[Any]:
        """Start (or, after a Close with ``auto_close`` off, complete) the close handshake;
        returns the WebSocketClosed event if this completed it."""
        if self._close_sent:
            raise LocalProtocolError("the WebSocket is already closing")
        payload = close_payload(code, reason)
        if self.state == _CLOSED:               # over already (failed, or its carrier ended)
            self._close_sent = True
            return []
        self._send_close(payload, last=self._close_received)
        events: list[Any] = []
        if self._close_received:
            self._finish(events)
        else:
            self.state = _CLOSING
            if self.carrier is not None:
                self.carrier.websocket_closing(self)
        return events

    # data_to_send() is compiled (SessionCore).


if TYPE_CHECKING:
    from ._upcalls import SessionCoreUpcalls

    def _implements(c: WebSocketSession) -> SessionCoreUpcalls:      # mypy checks the calls the core makes
        return c
