"""H2Connection: a sans-IO HTTP/2 connection (RFC 9113) that carries WebSockets (RFC 8441)
and plain HTTP requests side by side.

``receive_data(bytes) -> list[Event]``, ``data_to_send() -> bytes`` and imperative ``send_*``
calls, as in h2.  The per-byte work is compiled (:class:`ws2fast._core.H2Core`, which this
class extends): DATA frames of accepted WebSockets go from the frame reader to the stream's
WebSocket parser in C, windows are charged and released there, and ``send_message`` writes
frames straight into the output buffer.  What is here runs once per HEADERS, SETTINGS, PING,
GOAWAY, RST_STREAM, WINDOW_UPDATE or WebSocket control frame.

A peer's protocol error never raises out of :meth:`receive_data`: the GOAWAY or RST_STREAM (or
WebSocket Close) is queued, an event says so (:class:`ConnectionTerminated` with
``remote=False``, :class:`StreamReset` with ``remote=False``, :class:`WebSocketClosed`), and the
other events of the batch are returned.  A stream error never disturbs other streams.  Misuse by
the caller raises :class:`~ws2fast.exceptions.LocalProtocolError`.

Timeouts are the I/O layer's to drive: call :meth:`handle_timeouts` when :meth:`next_timeout`
says (the clock is ``Config.clock``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import _core
from ._core import (
    BinaryMessage,
    DataPiece,
    Frame,
    Signal,
    TextMessage,
)
from ._h2state import (
    MAX_STREAM_ID,
    RESET_BY_PEER,
    ConnectionFailure,
    Phase,
    StreamInfo,
)
from .errors import ErrorCode, FrameType, SettingCode
from .events import (
    ConnectionTerminated,
    DataReceived,
    PingAcknowledged,
    PingReceived,
    SettingsAcknowledged,
    SettingsReceived,
)
from .exceptions import FrameError, LocalProtocolError
from ._h2requests import _H2Requests


__all__ = ["H2Connection"]

_MESSAGES = (TextMessage, BinaryMessage)
_SETTING_KEYS = {int(code): code for code in SettingCode}


class H2Connection(_H2Requests):
    """One HTTP/2 connection, client or server side (``client_side`` is our role).

    Call :meth:`initiate` first (it queues the preface/SETTINGS), feed every byte received to
    :meth:`receive_data`, and write out :meth:`data_to_send` after each call.

    The class is built in layers, one module each: :mod:`ws2fast._h2streams` (state, stream
    table and lifecycle, errors, budgets, timeouts), :mod:`ws2fast._h2websockets` (WebSocket
    streams), :mod:`ws2fast._h2headers` (header blocks received), :mod:`ws2fast._h2requests`
    (plain HTTP sends), and this one (setup, frame dispatch, connection-level frames).
    """

    # receive_data(data) -> list of events is compiled (H2Core): a batch of WebSocket messages
    # only is returned as the reader made it; any other batch comes to _receive_slow.

    def initiate(self) -> None:
        """Queue the connection preface (client) and our SETTINGS (RFC 9113 §3.4)."""
        if self._initiated:
            raise LocalProtocolError("initiate() was already called")
        self._initiated = True
        c = self.config
        settings: dict[int, int] = {
            SettingCode.HEADER_TABLE_SIZE: c.header_table_size,
            SettingCode.MAX_CONCURRENT_STREAMS: c.max_concurrent_streams,
            SettingCode.INITIAL_WINDOW_SIZE: c.initial_window_size,
            SettingCode.MAX_FRAME_SIZE: c.max_frame_size,
            SettingCode.MAX_HEADER_LIST_SIZE: c.max_header_list_size,
        }
        if self.client_side:
            settings[SettingCode.ENABLE_PUSH] = 0
            if c.announces_websocket_capability:
                settings[SettingCode.ENABLE_CONNECT_PROTOCOL] = 1
            self._write(_core.PREFACE)
        elif c.enable_connect_protocol:
            settings[SettingCode.ENABLE_CONNECT_PROTOCOL] = 1
        self._write(_core.build_settings(settings))
        self._settings_pending.append((settings, c.clock()))
        self.local_settings.update(settings)
        self._conn_recv_window = c.connection_window_size
        if c.connection_window_size > 65535:
            self._write(_core.build_window_update(0, c.connection_window_size - 65535))

    @property
    def open_streams(self) -> int:
        """Streams in the table (open, half-closed, or lingering after a close handshake)."""
        return len(self.streams)

    @property
    def closing_streams(self) -> int:
        """Server: WebSocket streams in the table whose close handshake is complete and whose
        END_STREAM we sent, waiting for the peer's: they hold no concurrency slot."""
        return len(self._closing)

    @property
    def can_open_stream(self) -> bool:
        """Client: whether a new stream is allowed now (the connection is not going away and
        the server's SETTINGS_MAX_CONCURRENT_STREAMS leaves room)."""
        return self._initiated and not self._terminated and self._goaway_received is None \
            and self._local_open < self.remote_settings[SettingCode.MAX_CONCURRENT_STREAMS] \
            and self._next_local_id <= MAX_STREAM_ID

    @property
    def settings_ack_pending(self) -> bool:
        """Whether SETTINGS we sent still await their ACK."""
        return bool(self._settings_pending)

    def _receive_slow(self, items: list[Any], error: FrameError | None) -> list[Any]:
        """The events of a batch that holds more than messages (frames, signals, deferred
        events from send_* calls, or a connection error that ended the batch)."""
        events: list[Any] = self._deferred
        self._deferred = []
        try:
            if self._empty_data != self._empty_seen:
                self._charge("empty_frame_limit", "empty frames", self._empty_data - self._empty_seen)
                self._empty_seen = self._empty_data
            for item in items:
                self._dispatch(item, events)
            if error is not None:
                message = str(error)
                if self.client_side and not self._remote_settings_seen:
                    message = ("the server's first bytes are not an HTTP/2 SETTINGS frame: it does not "
                               f"speak HTTP/2 here (RFC 9113 §3.4; {message})")
                raise ConnectionFailure(error.error_code or ErrorCode.PROTOCOL_ERROR, message)
        except ConnectionFailure as exc:
            self._connection_error(exc.code, str(exc), events)
        if self._lingering:
            self._reap()
        return events

    def _dispatch(self, item: Any, events: list[Any]) -> None:
        kind = type(item)
        if kind is Frame:
            handler = _FRAME_HANDLERS.get(item.type)
            if handler is not None:
                handler(self, item, events)
        elif kind is DataPiece:
            self._on_data(item, events)
        elif kind is Signal:
            self._on_signal(item, events)
        else:
            self._on_websocket_item(item, events)

    def _on_settings(self, frame: Frame, events: list[Any]) -> None:
        if frame.ack:
            if not self._settings_pending:
                return                      # an ACK for nothing: ignore
            settings, _ = self._settings_pending.pop(0)
            self._settings_acked = True
            if SettingCode.HEADER_TABLE_SIZE in settings:
                self._decoder.header_table_size = settings[SettingCode.HEADER_TABLE_SIZE]
            if SettingCode.INITIAL_WINDOW_SIZE in settings:
                # Until now the peer could assume 65,535 (RFC 9113 §6.9.2); from now, ours.
                value = settings[SettingCode.INITIAL_WINDOW_SIZE]
                delta = value - self._local_initial_window
                self._local_initial_window = value
                for stream in self.streams.values():
                    stream.recv_window += delta
            events.append(SettingsAcknowledged({_SETTING_KEYS.get(k, k): v for k, v in settings.items()}))
            return
        self._charge("settings_limit", "SETTINGS frames")
        received: dict[int, int] = {}
        for ident, value in frame.settings or ():
            received[_SETTING_KEYS.get(ident, ident)] = value       # SettingCode when known
            old = self.remote_settings.get(ident)
            if ident == SettingCode.ENABLE_PUSH and self.client_side and value == 1:
                raise ConnectionFailure(
                    ErrorCode.PROTOCOL_ERROR, "server sent SETTINGS_ENABLE_PUSH = 1 (RFC 9113 §6.5.2)"
                )
            if ident == SettingCode.ENABLE_CONNECT_PROTOCOL and old == 1 and value == 0:
                raise ConnectionFailure(
                    ErrorCode.PROTOCOL_ERROR,
                    "SETTINGS_ENABLE_CONNECT_PROTOCOL went from 1 to 0 (RFC 8441 §3)",
                )
            if ident == SettingCode.ENABLE_CONNECT_PROTOCOL and value == 1 and not self.client_side:
                self.peer_announced_websocket = True
            if ident == SettingCode.INITIAL_WINDOW_SIZE and old != value:
                if self._initial_window_changed(value - (65535 if old is None else old)):
                    raise ConnectionFailure(
                        ErrorCode.FLOW_CONTROL_ERROR,
                        "SETTINGS_INITIAL_WINDOW_SIZE change pushes a stream window past 2^31-1 "
                        "(RFC 9113 §6.9.2)",
                    )
            elif ident == SettingCode.MAX_FRAME_SIZE:
                self._max_outgoing_frame = value
                self._max_frame_changed()
            elif ident == SettingCode.HEADER_TABLE_SIZE:
                self._encoder.header_table_size = min(value, 4096)
            self.remote_settings[ident] = value
        self._remote_settings_seen = True
        self._write(_core.build_settings(ack=True))
        events.append(SettingsReceived(received))
        if self._lingering:
            self._after_flush()         # queued END_STREAMs may have gone out

    def _on_data(self, piece: DataPiece, events: list[Any]) -> None:
        sid = piece.stream_id
        s = self.streams.get(sid)
        if s is None:
            if piece.last:
                self._release(0, piece.frame_length)
            if self._is_idle(sid):
                raise ConnectionFailure(ErrorCode.PROTOCOL_ERROR,
                                       f"DATA on idle stream {sid} (RFC 9113 §5.1)")
            if piece.last:
                self._on_closed_stream(sid, "DATA", events)
            return
        info: StreamInfo = s.info
        if s.discard and not info.websocket:
            # A refused WebSocket's DATA (reject_websocket): dropped unseen.
            if piece.last:
                self._release(0, piece.frame_length)
                if piece.end_stream:
                    s.remote_ended = True
                    self._lingering.add(sid)
            return
        if s.remote_ended:
            if piece.last:
                self._release(0, piece.frame_length)
            self._stream_error(sid, ErrorCode.STREAM_CLOSED,
                               f"DATA on stream {sid} after its END_STREAM (RFC 9113 §6.1)", events)
            return
        if not info.headers_in or (info.websocket and info.phase == Phase.CONNECTING):
            if piece.last:
                self._release(sid, piece.frame_length)
            self._stream_error(sid, ErrorCode.PROTOCOL_ERROR,
                               f"DATA before HEADERS on stream {sid} (RFC 9113 §8.1)", events)
            return
        if info.websocket:
            if info.phase == Phase.REQUESTED:
                # Early data: held (it is flow-controlled, so bounded) until accept/reject.
                if len(piece):
                    info.early.append(bytes(piece))
                if piece.last:
                    info.early_flow += piece.frame_length
                    if piece.end_stream:
                        s.remote_ended = True
                return
            if info.phase == Phase.OPEN and not s.discard and len(piece):
                # DATA read in the same batch as the 2xx that opened the WebSocket (before the
                # parser was attached): parse it here, in order.
                self._feed_early(s, bytes(piece), events)
            if piece.last:
                self._release(sid, piece.frame_length)
                if piece.end_stream:
                    self._remote_end(s, events)
            return
        if len(piece):
            info.received += len(piece)
            if info.content_length is not None and info.received > info.content_length:
                if piece.last:
                    self._release(0, piece.frame_length)
                self._stream_error(sid, ErrorCode.PROTOCOL_ERROR,
                                   f"body longer than content-length {info.content_length} "
                                   "(RFC 9113 §8.1.1)", events)
                return
            # One DataReceived per DATA frame, whatever the reads (bounded by our frame size).
            info.early.append(bytes(piece))
        held = False
        if piece.last and info.early:
            data = info.early[0] if len(info.early) == 1 else b"".join(info.early)
            info.early = []
            events.append(DataReceived(sid, data, piece.frame_length))
            held = self.hold_request_bodies and not info.local
        if piece.last:
            if not held:
                self._release(sid, piece.frame_length)
            if piece.end_stream:
                if info.content_length is not None and info.received != info.content_length:
                    self._stream_error(sid, ErrorCode.PROTOCOL_ERROR,
                                       f"body of {info.received} octets, content-length says "
                                       f"{info.content_length} (RFC 9113 §8.1.1)", events)
                    return
                self._remote_end(s, events)

    def _on_signal(self, signal: Signal, events: list[Any]) -> None:
        kind, sid = signal.kind, signal.stream_id
        s = self.streams.get(sid)
        if kind == _core.SIGNAL_STREAM_ERROR:
            self._stream_error(sid, signal.code, signal.message or "", events)
        elif s is None:
            return
        elif kind == _core.SIGNAL_WEBSOCKET_FAILED:
            if s.info.session is not None:
                s.info.session.fail(signal.code, signal.message or "", events)
        elif kind == _core.SIGNAL_END_STREAM:
            self._remote_end(s, events)

    def _on_priority(self, frame: Frame, events: list[Any]) -> None:
        # Accepted and ignored (RFC 9113 §5.3.2), but a malformed one is a stream error.
        self._charge("priority_limit", "PRIORITY frames")
        if frame.stream_error:
            self._stream_error(frame.stream_id, frame.stream_error,
                               "PRIORITY frame malformed or depending on its own stream "
                               "(RFC 9113 §6.3)", events)

    def _on_rst_stream(self, frame: Frame, events: list[Any]) -> None:
        self._charge("peer_reset_limit", "RST_STREAM frames from the peer")
        sid = frame.stream_id
        s = self.streams.get(sid)
        if s is None:
            if self._is_idle(sid):
                raise ConnectionFailure(ErrorCode.PROTOCOL_ERROR,
                                       f"RST_STREAM on idle stream {sid} (RFC 9113 §6.4)")
            return
        code = frame.error_code
        self._remove(s, RESET_BY_PEER)
        self._terminal_event(s, code, True, "reset by the peer", events)

    def _on_ping(self, frame: Frame, events: list[Any]) -> None:
        data = bytes(frame.opaque_data or b"")
        if frame.ack:
            if data in self._pings_sent:
                self._pings_sent.remove(data)
            events.append(PingAcknowledged(data))
        else:
            self._charge("ping_limit", "PING frames")
            self._write(_core.build_ping(data, ack=True))
            events.append(PingReceived(data))

    def _on_goaway(self, frame: Frame, events: list[Any]) -> None:
        last = frame.last_stream_id or 0
        code = frame.error_code or 0            # (the reader checked the frame: it has one)
        self._goaway_received = last if self._goaway_received is None else min(last, self._goaway_received)
        events.append(ConnectionTerminated(code, last, bytes(frame.debug_data or b""), True))
        # Streams we opened above last_stream_id were not processed (RFC 9113 §6.8).
        for sid in sorted(self.streams):
            if not self._peer_initiated(sid) and sid > last:
                s = self.streams[sid]
                self._remove(s, RESET_BY_PEER)
                self._terminal_event(s, ErrorCode.REFUSED_STREAM, True,
                                     "not processed: the peer sent GOAWAY", events)

    def _on_window_update(self, frame: Frame, events: list[Any]) -> None:
        self._charge("window_update_limit", "WINDOW_UPDATE frames")
        sid = frame.stream_id
        if frame.stream_error:
            self._stream_error(sid, frame.stream_error,
                               "WINDOW_UPDATE with an increment of 0 (RFC 9113 §6.9)", events)
            return
        increment = frame.window_increment or 0
        if sid == 0:
            if self._window_update(0, increment):
                raise ConnectionFailure(ErrorCode.FLOW_CONTROL_ERROR,
                                       "connection send window past 2^31-1 (RFC 9113 §6.9.1)")
            self._after_flush()
            return
        s = self.streams.get(sid)
        if s is None:
            if self._is_idle(sid):
                raise ConnectionFailure(ErrorCode.PROTOCOL_ERROR,
                                       f"WINDOW_UPDATE on idle stream {sid} (RFC 9113 §5.1)")
            self._on_closed_stream(sid, "WINDOW_UPDATE", events)
            return
        if self._window_update(sid, increment):
            self._stream_error(sid, ErrorCode.FLOW_CONTROL_ERROR,
                               f"stream {sid} send window past 2^31-1 (RFC 9113 §6.9.1)", events)
            return
        self._after_flush()

    # -- the rest of the engine interface (ws2fast.engine.Engine) ------------------------------

    # (multiplexed, true here, is declared by the compiled engine interface)

    @property
    def http_version(self) -> str:
        return "HTTP/2"

    @property
    def closed(self) -> bool:
        """The connection ended (GOAWAY with an error, either way) and no stream is left."""
        return self._terminated and not self.streams

    @property
    def going_away(self) -> bool:
        """The peer sent GOAWAY, or the connection ended: no new stream."""
        return self._goaway_received is not None or self._terminated

    def has_stream(self, stream_id: int) -> bool:
        return stream_id in self.streams

    def release_body(self, stream_id: int, nbytes: int) -> None:
        """Server, with ``hold_request_bodies``: the application took ``nbytes`` (what the
        ``DataReceived`` events said, ``flow_controlled_length``) of the request body on
        ``stream_id``: the client may send them again.  Bytes of a stream that has ended go
        back to the connection's window only."""
        if nbytes < 0:
            raise ValueError("nbytes must not be negative")
        if nbytes:
            self._release(stream_id, nbytes)

    def receive_eof(self) -> list[Any]:
        """The peer closed its side of the transport: nothing for HTTP/2 to do (streams end
        when the transport does)."""
        return []

    def send_connection_ping(self, payload: bytes) -> bool:
        """An HTTP/2 PING (``payload``: 8 octets): True."""
        self.send_http2_ping(payload)
        return True

    def goaway(self) -> None:
        """GOAWAY(NO_ERROR): streams already open finish, no new one is taken."""
        self.close()

    def send_http2_ping(self, data: bytes = b"\0" * 8) -> None:
        """Send an HTTP/2 PING (8 octets); a :class:`PingAcknowledged` answers it."""
        if len(data) != 8:
            raise LocalProtocolError("a PING carries exactly 8 octets (RFC 9113 §6.7)")
        self._pings_sent.append(bytes(data))
        self._write(_core.build_ping(data))

    def close(self, error_code: int = ErrorCode.NO_ERROR, message: str = "") -> None:
        """Send GOAWAY.  With NO_ERROR, streams already open may finish (graceful drain); new
        ones from the peer are refused."""
        last = self._highest_peer_id
        self._goaway_sent = last
        self._write(_core.build_goaway(last, error_code, message.encode("utf-8")))
        if error_code != ErrorCode.NO_ERROR:
            self._terminated = True


_FRAME_HANDLERS = {
    FrameType.SETTINGS: H2Connection._on_settings,
    FrameType.HEADERS: H2Connection._on_headers,
    FrameType.CONTINUATION: H2Connection._on_continuation,
    FrameType.PUSH_PROMISE: H2Connection._on_push_promise,
    FrameType.PRIORITY: H2Connection._on_priority,
    FrameType.RST_STREAM: H2Connection._on_rst_stream,
    FrameType.PING: H2Connection._on_ping,
    FrameType.GOAWAY: H2Connection._on_goaway,
    FrameType.WINDOW_UPDATE: H2Connection._on_window_update,
}


if TYPE_CHECKING:
    from ._upcalls import H2CoreUpcalls
    from .engine import Engine
    from .websocket import WebSocketCarrier

    def _implements(c: H2Connection) -> H2CoreUpcalls:      # mypy checks the calls the core makes
        return c

    def _carries(c: H2Connection) -> WebSocketCarrier:      # the carrier of its streams' sessions
        return c

    def _engine(c: H2Connection) -> Engine:                 # the engine interface
        return c
