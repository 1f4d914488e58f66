"""WebSocket streams of an :class:`~ws2fast.H2Connection` (RFC 8441): the handshake's answers,
the WebSocket control frames and close handshake of each stream (the rules shared with HTTP/1.1
are in :mod:`ws2fast.websocket`), and the WebSocket sends."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ._core import (
    H2Stream,
)
from ._h2state import (
    CLOSE_FRAME,
    Phase,
    StreamInfo,
)
from .deflate import (
    DeflateParameters,
    client_offer,
    server_extensions,
)
from .errors import ErrorCode, SettingCode
from .events import (
    StreamEnded,
)
from .exceptions import LocalProtocolError
from .handshake import (
    encode_headers,
    extended_connect_headers,
)
from ._h2streams import _H2Streams
from .websocket import WebSocketSession


class _H2WebSockets(_H2Streams):
    # Each WebSocket stream runs a WebSocketSession (ws2fast/websocket.py: the rules shared with
    # HTTP/1.1), whose carrier this connection is: its frames go out in the stream's DATA.

    def _on_websocket_item(self, item: Any, events: list[Any]) -> None:
        # What a stream's WebSocket parser made, other than the messages of a batch that held
        # only messages (those go out from the core directly).
        s = self.streams.get(item.stream_id)
        if s is not None and s.info.session is not None:
            s.info.session.handle(item, events)

    def _start_session(self, s: H2Stream, agreed: DeflateParameters | None) -> None:
        session = WebSocketSession(self.client_side, self.config, s.stream_id, agreed, carrier=self)
        s.info.session = session
        s.deflate = session.deflate
        self._bind_parser(s, session.parser)
        s.info.move(Phase.OPEN)
        s.ws_open = True

    def websocket_frame(self, session: WebSocketSession, first_octet: int, payload: Any,
                        last: bool) -> None:
        s = self.streams.get(session.stream_id)
        if s is None:
            return
        if first_octet == CLOSE_FRAME:
            s.ws_open = False               # no message after our Close
        if not s.local_ended and not s.pending_end:
            self._send_ws_frame(s.stream_id, first_octet, payload, last)

    def websocket_closing(self, session: WebSocketSession) -> None:
        s = self.streams.get(session.stream_id)
        if s is not None:
            s.info.deadline = self.config.clock() + self.config.close_timeout
            self._lingering.add(s.stream_id)

    def websocket_finished(self, session: WebSocketSession) -> None:
        # The WebSocket is over: end our side, stop reading, and let the stream linger until
        # both sides ended it or the close timeout resets it.
        s = self.streams.get(session.stream_id)
        if s is None:
            return
        info: StreamInfo = s.info
        if info.phase != Phase.DONE:
            info.move(Phase.DONE)
        s.ws_open = False
        self._end_local(s)
        s.discard = True
        if info.deadline is None:
            info.deadline = self.config.clock() + self.config.close_timeout
        self._lingering.add(s.stream_id)
        if session.close_sent and session.close_received and not self.client_side:
            # The close handshake is complete both ways: once our END_STREAM is out, nothing
            # but the peer's END_STREAM may come, and a major browser never sends it.  So the
            # stream stops counting toward the concurrency limit then (_reap), without waiting
            # for the close timeout.
            info.close_complete = True

    def _end_local(self, s: H2Stream) -> None:
        if not s.local_ended and not s.pending_end:
            self._send_data(s.stream_id, b"", True)

    def _remote_end(self, s: H2Stream, events: list[Any]) -> None:
        s.remote_ended = True
        info: StreamInfo = s.info
        if info.websocket and info.phase == Phase.OPEN:
            # The peer ended its side before the close handshake did: abnormal closure (1006)
            # unless its Close came.
            assert info.session is not None
            events.extend(info.session.connection_lost())
        elif not info.websocket:
            events.append(StreamEnded(s.stream_id))
            if info.phase == Phase.REJECTED:
                self._end_local(s)          # our extended CONNECT is over too
        self._lingering.add(s.stream_id)

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
        early = self.config.early_handshake
        if self.config.require_connect_protocol_setting and not self.remote_settings.get(
                SettingCode.ENABLE_CONNECT_PROTOCOL) and (self._remote_settings_seen or not early):
            raise LocalProtocolError(
                "the server has not sent SETTINGS_ENABLE_CONNECT_PROTOCOL = 1 "
                + ("yet: wait for SettingsReceived (or Config.early_handshake)"
                   if not self._remote_settings_seen else
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
        if early:
            # Early messages: send_message works until the answer, uncompressed, copies kept.
            s.info.speculative = not self._remote_settings_seen
            s.sent_early = []
            s.ws_open = True
        return s.stream_id

    @property
    def websockets_allowed(self) -> bool | None:
        """Client: whether the server's SETTINGS allow extended CONNECT (RFC 8441 §3); None
        before they came."""
        if not self._remote_settings_seen:
            return None
        return bool(self.remote_settings.get(SettingCode.ENABLE_CONNECT_PROTOCOL))

    def sent_early(self, stream_id: int) -> tuple[Any, ...]:
        """Client: the messages sent on ``stream_id`` before the server answered (while it has
        not: the I/O layer reports them if the connection is lost first)."""
        s = self.streams.get(stream_id)
        return tuple(s.sent_early) if s is not None and s.sent_early else ()

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
        self._start_session(s, agreed)
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
        # DATA that reached us before the parser was attached: the session parses it.
        assert s.info.session is not None
        events.extend(s.info.session.receive_data(data))

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
        s.info.early = []                   # held messages are discarded unseen ...
        s.discard = True                    # ... and so is what still comes
        flow, s.info.early_flow = s.info.early_flow, 0
        if flow:
            self._release(0, flow)          # (the connection's window; the stream is done)
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
        self._session(stream_id).ping(payload)

    def send_pong(self, stream_id: int, payload: bytes = b"") -> None:
        """Send a WebSocket pong (when ``auto_pong`` is off, or unsolicited)."""
        self._session(stream_id).send_pong(payload)

    def send_fragment(self, stream_id: int, data: Any, *, first: bool, fin: bool,
                      text: bool = False) -> None:
        """Send one frame of a fragmented message (``first``: the opening frame, whose type
        ``text`` decides; ``fin``: the last)."""
        self._session(stream_id).send_fragment(data, first=first, fin=fin, text=text)

    def close_websocket(self, stream_id: int, code: int = 1000, reason: str = "") -> list[Any]:
        """Start (or, after a :class:`CloseReceived` with ``auto_close`` off, complete) the
        close handshake.  END_STREAM follows once both Close frames are exchanged.  Returns []:
        the events this makes come with the next batch."""
        s = self.streams.get(stream_id)
        if s is None or not s.info.websocket or s.info.session is None:
            raise LocalProtocolError(f"stream {stream_id} carries no open WebSocket")
        if s.info.session.close_sent:
            raise LocalProtocolError(f"the WebSocket on stream {stream_id} is already closing")
        self._deferred.extend(s.info.session.close(code, reason))
        self._reap()
        return []

    def abort_websocket(self, stream_id: int) -> None:
        """Abort a WebSocket at once: RST_STREAM(CANCEL) (RFC 8441 §5)."""
        self.reset_stream(stream_id, ErrorCode.CANCEL)

    def _session(self, stream_id: int) -> WebSocketSession:
        s = self.streams.get(stream_id)
        if s is None or not s.ws_open or s.info.session is None:
            raise LocalProtocolError(f"stream {stream_id} carries no open WebSocket")
        return s.info.session
