"""WebSocket streams of an :class:`~ws2fast.H2Connection` (RFC 8441): the handshake's answers,
the WebSocket control frames and close handshake of each stream (the rules shared with HTTP/1.1
are in :mod:`ws2fast.websocket`), and the WebSocket sends."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from . import _core
from ._core import (
    CloseReceived,
    FrameParser,
    H2Stream,
    Ping,
)
from ._h2state import (
    CLOSE_FRAME,
    FIN,
    PING_FRAME,
    PONG_FRAME,
    Phase,
    StreamInfo,
)
from .deflate import (
    DeflateParameters,
    PerMessageDeflate,
    client_offer,
    server_extensions,
)
from .errors import CloseCode, ErrorCode, Opcode, SettingCode
from .events import (
    StreamEnded,
    WebSocketClosed,
)
from .exceptions import LocalProtocolError
from .handshake import (
    encode_headers,
    extended_connect_headers,
)
from ._h2streams import _H2Streams


class _H2WebSockets(_H2Streams):
    def _on_websocket_item(self, item: Any, events: list[Any]) -> None:
        # What a stream's WebSocket parser made, other than the messages of a batch that held
        # only messages (those go out from the core directly).
        kind = type(item)
        if kind is Ping:
            self._on_ws_ping(item, events)
        elif kind is CloseReceived:
            self._on_ws_close(item, events)
        else:                               # a message or a Pong
            s = self.streams.get(item.stream_id)
            if s is not None and not s.info.close_received:
                events.append(item)

    def _on_ws_ping(self, ping: Ping, events: list[Any]) -> None:
        s = self.streams.get(ping.stream_id)
        if s is None or s.info.close_received:
            return
        if self.config.auto_pong and not s.info.close_sent and not s.local_ended:
            self._send_ws_frame(s.stream_id, PONG_FRAME, ping.payload)
        events.append(ping)

    def _on_ws_close(self, close: CloseReceived, events: list[Any]) -> None:
        s = self.streams.get(close.stream_id)
        if s is None or s.info.close_received:
            return
        info: StreamInfo = s.info
        info.close_received = True
        info.close_code = close.code if close.code != CloseCode.NO_STATUS_RCVD else 1005
        info.close_reason = close.reason
        events.append(close)
        if info.close_sent:
            self._end_local(s)
            self._websocket_done(s, events)
        elif self.config.auto_close:
            payload = b"" if close.code == CloseCode.NO_STATUS_RCVD else close.code.to_bytes(2, "big")
            self._send_close_frame(s, payload, end_stream=True)
            self._websocket_done(s, events)

    def _send_close_frame(self, s: H2Stream, payload: bytes, end_stream: bool) -> None:
        s.info.close_sent = True
        s.ws_open = False
        if not s.local_ended and not s.pending_end:
            self._send_ws_frame(s.stream_id, CLOSE_FRAME, payload, end_stream)

    def _end_local(self, s: H2Stream) -> None:
        if not s.local_ended and not s.pending_end:
            self._send_data(s.stream_id, b"", True)

    def _websocket_done(self, s: H2Stream, events: list[Any]) -> None:
        # The close handshake is complete (or the WebSocket failed): report once, then let the
        # stream linger until both sides ended it or the close timeout resets it.
        info: StreamInfo = s.info
        if info.phase != Phase.DONE:
            info.move(Phase.DONE)
            s.ws_open = False
            events.append(WebSocketClosed(s.stream_id, info.close_code, info.close_reason))
        s.discard = True
        if info.deadline is None:
            info.deadline = self.config.clock() + self.config.close_timeout
        self._lingering.add(s.stream_id)
        if info.close_sent and info.close_received and not self.client_side:
            # The close handshake is complete both ways: once our END_STREAM is out, nothing
            # but the peer's END_STREAM may come, and a major browser never sends it.  So the
            # stream stops counting toward the concurrency limit then (_reap), without waiting
            # for the close timeout.
            info.close_complete = True

    def _fail_websocket(self, s: H2Stream, close_code: int, message: str, events: list[Any]) -> None:
        # RFC 6455 §7.1.7: send a Close with the code, end our side, stop reading.
        info: StreamInfo = s.info
        if not info.close_sent:
            reason = message.encode("utf-8")[:120]
            while True:
                try:
                    reason.decode("utf-8")
                    break
                except UnicodeDecodeError:
                    reason = reason[:-1]
            self._send_close_frame(s, close_code.to_bytes(2, "big") + reason, end_stream=True)
        else:
            self._end_local(s)
        info.close_code, info.close_reason = close_code, message
        self._websocket_done(s, events)

    def _remote_end(self, s: H2Stream, events: list[Any]) -> None:
        s.remote_ended = True
        info: StreamInfo = s.info
        if info.websocket and info.phase == Phase.OPEN:
            # The peer ended its side without a close handshake: abnormal closure (1006).
            self._end_local(s)
            self._websocket_done(s, events)
        elif not info.websocket:
            events.append(StreamEnded(s.stream_id))
            if info.phase == Phase.REJECTED:
                self._end_local(s)          # our extended CONNECT is over too
        self._lingering.add(s.stream_id)

    def _attach_parser(self, s: H2Stream, client_side: bool) -> None:
        self._bind_parser(s, FrameParser(client_side, self.config.max_message_size) if s.deflate is None
                          else s.deflate.frame_parser(client_side))

    def _codec(self, agreed: DeflateParameters) -> PerMessageDeflate:
        return PerMessageDeflate.from_config(agreed, self.config)

    def open_websocket(
        self,
        path: str,
        authority: str,
        *,
        scheme: str = "https",
        subprotocols: Iterable[str] = (),
        extensions: Iterable[str] | None = None,
        origin: str | None = None,
        headers: Iterable[tuple[bytes | str, bytes | str]] = (),
    ) -> int:
        """Client: send an extended CONNECT (RFC 8441 §4) and return its stream id.

        Watch for :class:`WebSocketAccepted` or :class:`WebSocketRejected` on that stream.
        """
        if not self.client_side:
            raise LocalProtocolError("only a client opens WebSockets")
        if self.config.require_connect_protocol_setting and not self.remote_settings.get(
                SettingCode.ENABLE_CONNECT_PROTOCOL):
            raise LocalProtocolError(
                "the server has not sent SETTINGS_ENABLE_CONNECT_PROTOCOL = 1 "
                + ("yet: wait for SettingsReceived" if not self._remote_settings_seen else
                   "(it does not support WebSockets over HTTP/2)") + " (RFC 8441 §3)")
        subprotocols = tuple(subprotocols)
        extensions = tuple(extensions) if extensions is not None else \
            ((client_offer(),) if self.config.permessage_deflate else ())
        block = extended_connect_headers(path, authority, scheme, subprotocols, extensions,
                                         origin, headers)
        s = self._open_local_stream(block, end_stream=False, websocket=True)
        s.info.move(Phase.CONNECTING)
        s.info.offered_subprotocols = subprotocols
        s.info.offered_extensions = extensions
        return s.stream_id

    def accept_websocket(
        self,
        stream_id: int,
        subprotocol: str | None = None,
        extensions: Iterable[str] | None = None,
        headers: Iterable[tuple[bytes | str, bytes | str]] = (),
    ) -> list[Any]:
        """Server: accept a requested WebSocket with a 200 (RFC 8441 §5).

        Returns the events of messages the client sent before this answer (usually none).
        If the stream was reset or closed since it was requested (its terminal event is in the
        same batch as the request), this does nothing and returns [].
        """
        s = self._requested(stream_id)
        if s is None:
            return []
        info: StreamInfo = s.info
        if subprotocol is not None and subprotocol not in info.offered_subprotocols:
            raise LocalProtocolError(f"subprotocol {subprotocol!r} was not offered "
                                     f"({info.offered_subprotocols!r})")
        fields: list[tuple[bytes, bytes]] = [(b":status", b"200")]
        if subprotocol is not None:
            fields.append((b"sec-websocket-protocol", subprotocol.encode("ascii")))
        response, agreed = server_extensions(extensions, info.offered_extensions, self.config)
        if response:
            fields.append((b"sec-websocket-extensions", response.encode("ascii")))
        fields.extend(encode_headers(headers))
        self._write_headers(stream_id, fields, end_stream=False)
        s.deflate = None if agreed is None else self._codec(agreed)
        self._attach_parser(s, client_side=False)
        info.move(Phase.OPEN)
        s.ws_open = True
        events: list[Any] = []
        early, info.early = info.early, []
        flow, info.early_flow = info.early_flow, 0
        if early:
            self._feed_early(s, b"".join(early), events)
        if flow:
            self._release(stream_id, flow)
        if s.remote_ended:
            self._remote_end(s, events)
        return events

    def _feed_early(self, s: H2Stream, data: bytes, events: list[Any]) -> None:
        assert s.parser is not None             # (attached when the WebSocket opened)
        try:
            parsed = s.parser.feed(data)
        except Exception as exc:  # WebSocketProtocolError
            parsed = list(getattr(exc, "events", []))
            code = getattr(exc, "close_code", None) or int(CloseCode.PROTOCOL_ERROR)
            for item in parsed:
                self._on_websocket_item(item, events)
            self._fail_websocket(s, code, str(exc), events)
            return
        for item in parsed:
            self._on_websocket_item(item, events)

    def reject_websocket(self, stream_id: int, status: int = 403,
                         headers: Iterable[tuple[bytes | str, bytes | str]] = (),
                         body: bytes = b"") -> None:
        """Server: refuse a requested WebSocket with a 4xx/5xx response (and optional body).
        Does nothing if the stream was reset or closed since it was requested."""
        s = self._requested(stream_id)
        if s is None:
            return
        if not 400 <= status <= 599:
            raise LocalProtocolError(f"a WebSocket is refused with a 4xx or 5xx status, not {status}")
        fields = [(b":status", str(status).encode())] + encode_headers(headers)
        s.info.move(Phase.DONE)
        s.info.websocket = False
        self._write_headers(stream_id, fields, end_stream=not body)
        if body:
            self._send_data(stream_id, bytes(body), True)
        # A complete response, then RST_STREAM(NO_ERROR): the client need not end its side.
        s.info.reset_after_flush = True
        self._lingering.add(stream_id)
        self._after_flush()

    def _requested(self, stream_id: int) -> H2Stream | None:
        s = self.streams.get(stream_id)
        if s is None and stream_id in self._closed and self._peer_initiated(stream_id):
            return None                     # gone already; its terminal event says so
        if s is None or not s.info.websocket or s.info.phase != Phase.REQUESTED:
            raise LocalProtocolError(f"stream {stream_id} holds no WebSocket request awaiting an answer")
        return s

    def receive_into(self, stream_id: int, buffer: Any) -> None:
        """Register a writable buffer for the next binary message on ``stream_id``: if it fits,
        it is unmasked straight into the buffer (see ``FrameParser.receive_into``)."""
        s = self.streams.get(stream_id)
        if s is None or s.parser is None:
            raise LocalProtocolError(f"stream {stream_id} carries no open WebSocket")
        s.parser.receive_into(buffer)

    def cancel_receive_into(self, stream_id: int) -> None:
        s = self.streams.get(stream_id)
        if s is not None and s.parser is not None:
            s.parser.cancel_receive_into()

    def ping(self, stream_id: int, payload: bytes = b"") -> None:
        """Send a WebSocket ping on ``stream_id``."""
        s = self._open_websocket(stream_id)
        if len(payload) > 125:
            raise LocalProtocolError("a ping payload is at most 125 bytes (RFC 6455 §5.5)")
        self._send_ws_frame(s.stream_id, PING_FRAME, payload)

    def send_pong(self, stream_id: int, payload: bytes = b"") -> None:
        """Send a WebSocket pong (when ``auto_pong`` is off, or unsolicited)."""
        s = self._open_websocket(stream_id)
        if len(payload) > 125:
            raise LocalProtocolError("a pong payload is at most 125 bytes (RFC 6455 §5.5)")
        self._send_ws_frame(s.stream_id, PONG_FRAME, payload)

    def send_fragment(self, stream_id: int, data: Any, *, first: bool, fin: bool,
                      text: bool = False) -> None:
        """Send one frame of a fragmented message (``first``: the opening frame, whose type
        ``text`` decides; ``fin``: the last)."""
        self._open_websocket(stream_id)
        opcode = (Opcode.TEXT if text else Opcode.BINARY) if first else Opcode.CONTINUATION
        if isinstance(data, str):
            data = data.encode("utf-8")
        self._send_ws_frame(stream_id, (FIN if fin else 0) | opcode, data)

    def close_websocket(self, stream_id: int, code: int = 1000, reason: str = "") -> None:
        """Start (or, after a :class:`CloseReceived` with ``auto_close`` off, complete) the
        close handshake.  END_STREAM follows once both Close frames are exchanged."""
        s = self.streams.get(stream_id)
        if s is None or not s.info.websocket or s.info.phase not in (Phase.OPEN, Phase.DONE):
            raise LocalProtocolError(f"stream {stream_id} carries no open WebSocket")
        if s.info.close_sent:
            raise LocalProtocolError(f"the WebSocket on stream {stream_id} is already closing")
        if code == CloseCode.NO_STATUS_RCVD:
            payload = b""
        else:
            if not _core.is_valid_close_code(code):
                raise LocalProtocolError(f"close code {code} may not be sent (RFC 6455 §7.4)")
            payload = code.to_bytes(2, "big") + reason.encode("utf-8")
            if len(payload) > 125:
                raise LocalProtocolError("close reason longer than 123 bytes (RFC 6455 §5.5)")
        info: StreamInfo = s.info
        self._send_close_frame(s, payload, end_stream=info.close_received)
        if info.close_received:
            self._websocket_done(s, self._deferred)
            self._reap()
        else:
            info.deadline = self.config.clock() + self.config.close_timeout
            self._lingering.add(stream_id)

    def abort_websocket(self, stream_id: int) -> None:
        """Abort a WebSocket at once: RST_STREAM(CANCEL) (RFC 8441 §5)."""
        self.reset_stream(stream_id, ErrorCode.CANCEL)

    def _open_websocket(self, stream_id: int) -> H2Stream:
        s = self.streams.get(stream_id)
        if s is None or not s.ws_open:
            raise LocalProtocolError(f"stream {stream_id} carries no open WebSocket")
        return s
