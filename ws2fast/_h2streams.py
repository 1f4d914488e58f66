"""The first layer of :class:`~ws2fast.H2Connection` above the compiled core: the connection's
state (set once, in ``__init__``), the stream table and each stream's life from open to closed
(RFC 9113 §5.1), stream and connection errors, flood budgets and timeouts."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from . import _core
from ._core import (
    FrameReader,
    H2Core,
    H2Stream,
)
from ._h2state import (
    ENDED,
    LIMITS,
    MAX_STREAM_ID,
    RESET_BY_PEER,
    RESET_BY_US,
    UNLIMITED,
    Budget,
    ConnectionFailure,
    HeaderBlock,
    Phase,
    StreamInfo,
)
from .config import Config, RateLimit
from .errors import CloseCode, ErrorCode, SettingCode
from .events import (
    ConnectionTerminated,
    Event,
    StreamReset,
    WebSocketClosed,
    WebSocketRejected,
)
from .exceptions import LocalProtocolError
from .hpack import Decoder, Encoder


class _H2Streams(H2Core):
    def __init__(self, client_side: bool, config: Config | None = None) -> None:
        # The fields shared with the core (streams, _lingering, _deferred, _settings_pending,
        # _initiated, _terminated, the window sizes...) are declared and initialized in H2Core
        # (_ext/h2core.pxi), with the side that writes each; what is set here is Python's own.
        self.client_side = bool(client_side)
        self.config = config = config if config is not None else Config()
        self._core_reader(FrameReader(config.max_frame_size, expect_preface=not self.client_side,
                                      stream_data=True))
        self._decoder = Decoder(max(4096, config.header_table_size), config.max_header_list_size)
        self._encoder = Encoder(4096)
        self._mask_outgoing = self.client_side
        self._release_on_consume = config.release_on_consume
        self._stream_recv_size = config.initial_window_size
        self._conn_recv_size = config.connection_window_size
        self.local_settings: dict[int, int] = {}
        self.remote_settings: dict[int, int] = {
            SettingCode.HEADER_TABLE_SIZE: 4096,
            SettingCode.ENABLE_PUSH: 1,
            SettingCode.MAX_CONCURRENT_STREAMS: UNLIMITED,
            SettingCode.INITIAL_WINDOW_SIZE: 65535,
            SettingCode.MAX_FRAME_SIZE: 16384,
            SettingCode.MAX_HEADER_LIST_SIZE: UNLIMITED,
            SettingCode.ENABLE_CONNECT_PROTOCOL: 0,
        }
        self._remote_settings_seen = False
        self._settings_acked = False                   # the peer acknowledged our first SETTINGS
        #: server: the client sent SETTINGS_ENABLE_CONNECT_PROTOCOL = 1 (it announced that it
        #: speaks RFC 8441: Config.announce_websocket_capability on its side)
        self.peer_announced_websocket = False
        #: server: plain request bodies keep their flow-control window until the application
        #: took them (:meth:`release_body`), so that a slow reader stops only its own stream
        self.hold_request_bodies = False
        self._next_local_id = 1 if self.client_side else 2
        self._highest_peer_id = 0
        self._peer_open = 0
        self._local_open = 0
        self._closed: dict[int, int] = {}             # closed stream id -> how (RESET_BY_US...)
        self._block: HeaderBlock | None = None        # header block being assembled
        self._goaway_sent: int | None = None           # the last_stream_id we sent
        self._goaway_received: int | None = None
        self._pings_sent: list[bytes] = []
        # The receive window a new stream gets: what the peer may assume before it has seen
        # our SETTINGS (65,535), or more if we advertise more.
        self._local_initial_window = max(65535, config.initial_window_size)
        # Flood limits (Config.*_limit): token buckets, None where the limit is off.
        clock = config.clock
        self._budgets = {name: None if getattr(config, name) is None else Budget(getattr(config, name), clock)
                         for name in LIMITS}
        self._empty_seen = 0                           # core's _empty_data already charged
        self._stalls: dict[int, tuple[int, float]] = {}  # blocked stream -> (flushed, since)
        # Server: WebSocket streams whose close handshake is complete and whose END_STREAM we
        # sent, waiting for the peer's (stream id -> None, oldest first).  They no longer count
        # toward the concurrency limit; past max_concurrent_streams of them, or after the close
        # timeout, the oldest is reset with NO_ERROR.
        self._closing: dict[int, None] = {}
        #: WebSocket streams reset with NO_ERROR after a complete close handshake because the
        #: peer never ended its side (server)
        self.streams_reset_after_close = 0

    def _charge(self, limit: str, what: str, n: int = 1) -> None:
        budget = self._budgets[limit]
        if budget is not None and not budget.spend(n):
            rate: RateLimit = getattr(self.config, limit)
            raise ConnectionFailure(ErrorCode.ENHANCE_YOUR_CALM,
                                   f"{what} beyond {rate.burst} at once or {rate.per_second:g}/s "
                                   f"(Config.{limit}; RFC 9113 §10.5)")

    def _peer_initiated(self, sid: int) -> bool:
        return (sid & 1) == (0 if self.client_side else 1)

    def _is_idle(self, sid: int) -> bool:
        if self._peer_initiated(sid):
            return sid > self._highest_peer_id
        return sid >= self._next_local_id

    def _new_stream(self, sid: int, websocket: bool, local: bool) -> H2Stream:
        s = H2Stream(sid)
        s.info = StreamInfo(sid, websocket, local)
        s.recv_window = self._local_initial_window
        s.send_window = self.remote_settings[SettingCode.INITIAL_WINDOW_SIZE]
        self._core_add(s)
        if local:
            self._local_open += 1
        else:
            self._peer_open += 1
        return s

    def _remove(self, s: H2Stream, how: int) -> None:
        sid = s.stream_id
        if sid not in self.streams:
            return
        self._core_remove(sid)
        self._lingering.discard(sid)
        self._closing.pop(sid, None)
        self._uncount(s)
        if s.info.early_flow:
            self._release(0, s.info.early_flow)
            s.info.early_flow = 0
        self._remember_closed(sid, how)

    def _uncount(self, s: H2Stream) -> None:
        # The stream no longer counts toward the concurrency limit (RFC 9113 §5.1.2).
        if s.info.counted:
            s.info.counted = False
            if s.info.local:
                self._local_open -= 1
            else:
                self._peer_open -= 1

    def _remember_closed(self, sid: int, how: int) -> None:
        closed = self._closed
        closed[sid] = how
        while len(closed) > self.config.max_closed_streams_remembered:
            del closed[next(iter(closed))]

    def _on_closed_stream(self, sid: int, what: str, events: list[Any]) -> None:
        # DATA, HEADERS or WINDOW_UPDATE on a closed stream (RFC 9113 §5.1 "closed"; RST_STREAM
        # and PRIORITY never come here: they are always ignored, §5.4.2):
        # - after our RST_STREAM: ignored (frames the peer sent before it saw the reset);
        # - after both END_STREAMs: WINDOW_UPDATE is ignored (it may have been in flight when
        #   our END_STREAM arrived); HEADERS means the peer reopened a stream it had finished,
        #   a connection error STREAM_CLOSED (§5.1); DATA a stream error STREAM_CLOSED (§6.1);
        # - after the peer's RST_STREAM, or forgotten (Config.max_closed_streams_remembered):
        #   a stream error STREAM_CLOSED (WINDOW_UPDATE on a forgotten stream is ignored).
        how = self._closed.get(sid)
        if how == RESET_BY_US or (what == "WINDOW_UPDATE" and how != RESET_BY_PEER):
            return
        if how == ENDED and what == "HEADERS":
            raise ConnectionFailure(ErrorCode.STREAM_CLOSED,
                                   f"HEADERS on stream {sid} after both sides ended it (RFC 9113 §5.1)")
        self._stream_error(sid, ErrorCode.STREAM_CLOSED, f"{what} on closed stream {sid} "
                           "(RFC 9113 §5.1)", events)

    def _reap(self) -> None:
        # Streams waiting for an END_STREAM (either side's) or a reset: forget those that are
        # done.  Once our END_STREAM is out, one marked reset_after_flush (a complete response
        # the client need not finish sending for) is reset with NO_ERROR (RFC 9113 §8.1), and a
        # WebSocket whose close handshake is complete stops holding a concurrency slot.
        for sid in list(self._lingering):
            s = self.streams.get(sid)
            if s is None:
                self._lingering.discard(sid)
            elif s.local_ended:
                if s.remote_ended:
                    self._remove(s, ENDED)
                elif s.info.reset_after_flush:
                    self._write(_core.build_rst_stream(sid, ErrorCode.NO_ERROR))
                    self._remove(s, RESET_BY_US)
                elif s.info.close_complete and s.info.counted:
                    # (it stays lingering too, so that the I/O layer keeps a timer for it)
                    self._uncount(s)
                    self._closing[sid] = None       # in deadline order:
                    s.info.deadline = self.config.clock() + self.config.close_timeout
                    if len(self._closing) > self.config.max_concurrent_streams:
                        self._reset_closed(self.streams[next(iter(self._closing))])

    def _reset_closed(self, s: H2Stream) -> None:
        # A WebSocket whose close handshake is complete, and whose peer did not end its side
        # in time: the response is complete, so NO_ERROR (RFC 9113 §8.1).
        self._write(_core.build_rst_stream(s.stream_id, ErrorCode.NO_ERROR))
        self._remove(s, RESET_BY_US)
        self.streams_reset_after_close += 1

    def _after_flush(self) -> None:
        # Queued DATA may have gone out with END_STREAM: streams may be complete now.
        self._reap()

    def _terminal_event(self, s: H2Stream, code: int | None, remote: bool, message: str,
                        events: list[Any], close_reason: str = "") -> None:
        # The stream is gone (reset either way, refused by GOAWAY, timed out, the connection
        # ended): its last event.  A WebSocket reports the peer's Close if one came, else 1006
        # with ``close_reason``.
        info: StreamInfo = s.info
        if info.websocket and info.phase == Phase.CONNECTING:
            info.move(Phase.DONE)
            events.append(WebSocketRejected(s.stream_id, 0, (), message, reset_code=code,
                                            undelivered=self._take_early(s),
                                            speculative=info.speculative))
        elif info.websocket and info.phase != Phase.DONE:
            session = info.session
            if session is None:
                self._websocket_gone(s, int(CloseCode.ABNORMAL_CLOSURE), close_reason, code, events)
            else:
                self._websocket_gone(s, session.final_code, session.close_reason or close_reason, code,
                                     events)
        elif not info.websocket and code is not None:
            events.append(StreamReset(s.stream_id, code, remote, message))

    @staticmethod
    def _take_early(s: H2Stream) -> tuple[Any, ...]:
        # Client: the answer came (or the stream is gone): stop keeping copies of early messages;
        # what they were, for a refusal to report.
        sent, s.sent_early = s.sent_early, None
        s.ws_open = False
        return tuple(sent) if sent else ()

    def _websocket_gone(self, s: H2Stream, close_code: int, reason: str, reset_code: int | None,
                        events: list[Any]) -> None:
        s.info.move(Phase.DONE)
        if s.info.session is not None:
            s.info.session.terminated(events, close_code, reason, reset_code)
        else:
            events.append(WebSocketClosed(s.stream_id, close_code, reason, reset_code))

    def _stream_error(self, sid: int, code: int, message: str, events: list[Any]) -> None:
        self._charge("local_reset_limit", "streams reset for breaking the rules")
        self._write(_core.build_rst_stream(sid, code))
        s = self.streams.get(sid)
        if s is None:
            self._remember_closed(sid, RESET_BY_US)
            events.append(StreamReset(sid, code, False, message))
            return
        self._remove(s, RESET_BY_US)
        if s.info.websocket and s.info.phase == Phase.DONE:
            return
        if s.info.websocket and s.info.phase != Phase.CONNECTING:
            self._websocket_gone(s, int(CloseCode.ABNORMAL_CLOSURE), message, code, events)
        else:
            self._terminal_event(s, code, False, message, events)

    def _respond_and_reset(self, sid: int, status: int, headers: Iterable[tuple[bytes, bytes]],
                           message: str, events: list[Any]) -> None:
        # A complete response, then RST_STREAM(NO_ERROR) so the client stops sending
        # (RFC 9113 §8.1).
        block = self._encoder.encode([(b":status", str(status).encode())] + list(headers))
        self._write(_core.build_headers(sid, block, end_stream=True,
                                        max_frame_size=self._max_outgoing_frame))
        self._write(_core.build_rst_stream(sid, ErrorCode.NO_ERROR))
        self._remember_closed(sid, RESET_BY_US)
        events.append(StreamReset(sid, ErrorCode.NO_ERROR, False, f"answered {status}: {message}"))

    def _connection_error(self, code: int, message: str, events: list[Any]) -> None:
        if self._terminated:
            return
        self._write(_core.build_goaway(self._highest_peer_id, code, message.encode("utf-8")[:256]))
        self._terminated = True
        self._goaway_sent = self._highest_peer_id
        events.append(ConnectionTerminated(code, self._highest_peer_id, b"", False, message))
        self._drop_all(code, events)

    def _drop_all(self, code: int, events: list[Any]) -> None:
        for sid in sorted(self.streams):
            s = self.streams[sid]
            self._remove(s, RESET_BY_US)
            self._terminal_event(s, code, False, "the connection ended", events)

    def reset_stream(self, stream_id: int, error_code: int = ErrorCode.CANCEL) -> None:
        """Reset a stream (RST_STREAM); queued data on it is dropped."""
        s = self.streams.get(stream_id)
        if s is None:
            raise LocalProtocolError(f"stream {stream_id} is not open")
        self._write(_core.build_rst_stream(stream_id, error_code))
        s.info.move(Phase.DONE)
        self._remove(s, RESET_BY_US)

    def _open_local_stream(self, fields: list[tuple[bytes, bytes]], end_stream: bool,
                           websocket: bool) -> H2Stream:
        if not self._initiated:
            raise LocalProtocolError("call initiate() first")
        if self._terminated or self._goaway_received is not None:
            raise LocalProtocolError("the connection is going away: open a new one")
        if self._local_open >= self.remote_settings[SettingCode.MAX_CONCURRENT_STREAMS]:
            raise LocalProtocolError(
                f"the peer allows {self.remote_settings[SettingCode.MAX_CONCURRENT_STREAMS]} "
                "concurrent streams (SETTINGS_MAX_CONCURRENT_STREAMS)")
        sid = self._next_local_id
        if sid > MAX_STREAM_ID:
            raise LocalProtocolError("stream ids are used up: open a new connection (RFC 9113 §5.1.1)")
        self._next_local_id += 2
        s = self._new_stream(sid, websocket=websocket, local=True)
        self._write_headers(sid, fields, end_stream)
        if end_stream:
            s.local_ended = True
        return s

    def _write_headers(self, sid: int, fields: list[tuple[bytes, bytes]], end_stream: bool) -> None:
        block = self._encoder.encode(fields)
        self._write(_core.build_headers(sid, block, end_stream=end_stream,
                                        max_frame_size=self._max_outgoing_frame))

    def next_timeout(self) -> float | None:
        """The earliest clock time at which :meth:`handle_timeouts` has work, or None."""
        times = [s.info.deadline for sid in self._lingering
                 if (s := self.streams.get(sid)) is not None and s.info.deadline is not None]
        if self._settings_pending:
            times.append(self._settings_pending[0][1] + self.config.settings_ack_timeout)
        stall = self.config.send_stall_timeout
        if stall is not None and self._track_stalls(self.config.clock()):
            times.append(min(since for _, since in self._stalls.values()) + stall)
        return min(times) if times else None

    def _track_stalls(self, now: float) -> bool:
        # Streams whose queue waits for window, and since when it has not moved.
        if not self._blocked_count:
            self._stalls.clear()
            return False
        stalls = {}
        for sid, flushed in self._blocked_progress:
            seen = self._stalls.get(sid)
            stalls[sid] = seen if seen is not None and seen[0] == flushed else (flushed, now)
        self._stalls = stalls
        return True

    def handle_timeouts(self) -> list[Event]:
        """Apply expired timeouts: a SETTINGS ACK that never came (GOAWAY SETTINGS_TIMEOUT),
        WebSocket streams whose close handshake did not finish or whose peer never ended its
        side (RST_STREAM CANCEL, freeing the concurrency slot)."""
        now = self.config.clock()
        events: list[Any] = []
        if self._terminated:
            return events
        if self._settings_pending and now >= self._settings_pending[0][1] + self.config.settings_ack_timeout:
            self._connection_error(ErrorCode.SETTINGS_TIMEOUT,
                                   "our SETTINGS were not acknowledged in time (RFC 9113 §6.5.3)", events)
            return events
        while self._closing:
            oldest = self.streams[next(iter(self._closing))]
            if now < oldest.info.deadline:
                break
            self._reset_closed(oldest)
        for sid in sorted(self._lingering):
            s = self.streams.get(sid)
            if s is None or s.info.deadline is None or now < s.info.deadline:
                continue
            self._write(_core.build_rst_stream(sid, ErrorCode.CANCEL))
            self._remove(s, RESET_BY_US)
            if s.info.phase != Phase.DONE:
                self._terminal_event(s, ErrorCode.CANCEL, False, "close timeout", events,
                                     close_reason="close timeout")
        stall = self.config.send_stall_timeout
        if stall is not None and self._track_stalls(now):
            for sid, (_, since) in sorted(self._stalls.items()):
                s = self.streams.get(sid)
                if s is None or now < since + stall:
                    continue
                message = (f"the peer kept its flow-control window closed for {stall:g} s with "
                           f"{s.pending_bytes} octets waiting (Config.send_stall_timeout)")
                self._write(_core.build_rst_stream(sid, ErrorCode.CANCEL))
                self._remove(s, RESET_BY_US)
                self._terminal_event(s, ErrorCode.CANCEL, False, message, events, close_reason=message)
                self._stalls.pop(sid, None)
        return events
