"""WebSocketSession: one WebSocket over a byte stream (RFC 6455 §5-§7), with no idea how it
was opened.  :class:`~ws2fast.H1Connection` runs one after an HTTP/1.1 Upgrade; an HTTP/2
stream's session lives in the compiled connection core instead (same parser, same rules).

Frames are parsed by the compiled :class:`~ws2fast.wsframes.FrameParser`; this class adds the
session: automatic pongs, the close handshake, failing the connection with the right close
code, and what to do with the transport afterwards (:attr:`closed`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._core import CloseReceived, FrameParser, Ping, SessionCore, build_ws_frame, is_valid_close_code
from .config import Config
from .deflate import DeflateParameters, PerMessageDeflate
from .errors import CloseCode
from .events import WebSocketClosed
from .exceptions import LocalProtocolError, WebSocketProtocolError

__all__ = ["WebSocketSession"]

_OPEN, _CLOSING, _CLOSED = "open", "closing", "closed"


class WebSocketSession(SessionCore):
    """The WebSocket protocol over an ordered byte stream.

    ``receive_data(data)`` returns message and control events plus one
    :class:`~ws2fast.events.WebSocketClosed` at the end; ``data_to_send()`` returns the bytes to
    write.  Once :attr:`closed` is true the transport should be closed (by the server first,
    RFC 6455 §7.1.1).
    """

    def __init__(self, client_side: bool, config: Config | None = None, stream_id: int = 0,
                 deflate: DeflateParameters | None = None) -> None:
        self.client_side = client_side
        self.config = config if config is not None else Config()
        self.stream_id = stream_id
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
        """The close handshake is over (or the connection failed): close the transport."""
        return self.state == _CLOSED

    # receive_data(data) is compiled (SessionCore): a batch of data messages only is returned
    # as the parser made it; any other batch comes to _take, a parser error to _receive_failed.

    def _receive_failed(self, exc: WebSocketProtocolError) -> list[Any]:
        events = self._take(exc.events)
        if not self._close_received:
            self._fail(exc.close_code or CloseCode.PROTOCOL_ERROR, str(exc), events)
        return events

    def _take(self, items: list[Any]) -> list[Any]:
        events: list[Any] = []
        for item in items:
            if self._close_received:
                break                       # nothing after a Close counts (RFC 6455 §5.5.1)
            kind = type(item)
            if kind is Ping:
                if self.config.auto_pong and not self._close_sent:
                    self._out.append(build_ws_frame(0xA, item.payload, mask=self.client_side))
                events.append(item)
            elif kind is CloseReceived:
                self._on_close(item, events)
            else:
                events.append(item)
        return events

    def _on_close(self, close: CloseReceived, events: list[Any]) -> None:
        self._close_received = True
        if self.close_code is None:
            self.close_code, self.close_reason = close.code, close.reason
        events.append(close)
        if self._close_sent:
            self._finish(events)
        elif self.config.auto_close:
            payload = b"" if close.code == CloseCode.NO_STATUS_RCVD else close.code.to_bytes(2, "big")
            self._send_close_payload(payload)
            self._finish(events)
        else:
            self.state = _CLOSING

    def _finish(self, events: list[Any]) -> None:
        if self.state != _CLOSED:
            self.state = _CLOSED
            code = self.close_code if self.close_code is not None else int(CloseCode.ABNORMAL_CLOSURE)
            events.append(WebSocketClosed(self.stream_id, code, self.close_reason))

    def _fail(self, code: int, message: str, events: list[Any]) -> None:
        # RFC 6455 §7.1.7: send a Close with the code (if we have not), then close.
        if not self._close_sent:
            reason = message.encode("utf-8")[:120].decode("utf-8", "ignore").encode("utf-8")
            self._send_close_payload(int(code).to_bytes(2, "big") + reason)
        self.close_code, self.close_reason = int(code), message
        self._finish(events)

    def _send_close_payload(self, payload: bytes) -> None:
        self._close_sent = True
        self._out.append(build_ws_frame(0x8, payload, mask=self.client_side))

    def connection_lost(self) -> list[Any]:
        """The transport ended: returns the final WebSocketClosed (1006 unless the close
        handshake had finished)."""
        events: list[Any] = []
        if self.state != _CLOSED:
            self.close_code = self.close_code if self._close_received else int(CloseCode.ABNORMAL_CLOSURE)
            self._finish(events)
        return events

    # -- sending ----------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._close_sent or self.state == _CLOSED:
            raise LocalProtocolError("the WebSocket is closing or closed")

    # send_message(data) is compiled (SessionCore); a compressed one comes here.

    def _send_deflated(self, data: Any) -> None:
        opcode = 0x1 if isinstance(data, str) else 0x2
        raw = data.encode("utf-8") if opcode == 0x1 else bytes(data)
        if len(raw) >= self.deflate.threshold:
            self._out.append(build_ws_frame(opcode, self.deflate.compress(raw), rsv1=True,
                                            mask=self.client_side))
        else:
            self._out.append(build_ws_frame(opcode, data, mask=self.client_side))

    def send_fragment(self, data: Any, *, first: bool, fin: bool, text: bool = False) -> None:
        self._check_open()
        opcode = (0x1 if text else 0x2) if first else 0x0
        if isinstance(data, str):
            data = data.encode("utf-8")
        self._out.append(build_ws_frame(opcode, data, fin=fin, mask=self.client_side))

    def ping(self, payload: bytes = b"") -> None:
        self._check_open()
        if len(payload) > 125:
            raise LocalProtocolError("a ping payload is at most 125 bytes (RFC 6455 §5.5)")
        self._out.append(build_ws_frame(0x9, payload, mask=self.client_side))

    def send_pong(self, payload: bytes = b"") -> None:
        self._check_open()
        if len(payload) > 125:
            raise LocalProtocolError("a pong payload is at most 125 bytes (RFC 6455 §5.5)")
        self._out.append(build_ws_frame(0xA, payload, mask=self.client_side))

    def close(self, code: int = 1000, reason: str = "") -> list[Any]:
        """Start (or complete) the close handshake; returns the WebSocketClosed event if this
        completed it."""
        if self._close_sent:
            raise LocalProtocolError("the WebSocket is already closing")
        if code == CloseCode.NO_STATUS_RCVD:
            payload = b""
        else:
            if not is_valid_close_code(code):
                raise LocalProtocolError(f"close code {code} may not be sent (RFC 6455 §7.4)")
            payload = code.to_bytes(2, "big") + reason.encode("utf-8")
            if len(payload) > 125:
                raise LocalProtocolError("close reason longer than 123 bytes (RFC 6455 §5.5)")
        self._send_close_payload(payload)
        events: list[Any] = []
        if self._close_received:
            self._finish(events)
        else:
            self.state = _CLOSING
        return events

    # data_to_send() is compiled (SessionCore).


if TYPE_CHECKING:
    from ._upcalls import SessionCoreUpcalls

    def _implements(c: WebSocketSession) -> SessionCoreUpcalls:      # mypy checks the calls the core makes
        return c
