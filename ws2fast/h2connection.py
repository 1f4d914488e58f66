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

from collections.abc import Callable, Iterable
from typing import Any

from . import _core
from ._core import (
    BinaryMessage,
    CloseReceived,
    DataPiece,
    Frame,
    FrameParser,
    FrameReader,
    H2Core,
    H2Stream,
    Ping,
    Pong,
    Signal,
    TextMessage,
)
from .config import Config, RateLimit
from .deflate import (
    DeflateParameters,
    ExtensionError,
    PerMessageDeflate,
    client_accept,
    client_offer,
    server_extensions,
)
from .errors import CloseCode, ErrorCode, FrameType, Opcode, SettingCode
from .events import (
    ConnectionTerminated,
    DataReceived,
    Event,
    InformationalResponseReceived,
    PingAcknowledged,
    PingReceived,
    RequestReceived,
    ResponseReceived,
    SettingsAcknowledged,
    SettingsReceived,
    StreamEnded,
    StreamReset,
    TrailersReceived,
    WebSocketAccepted,
    WebSocketClosed,
    WebSocketRejected,
    WebSocketRequested,
)
from .exceptions import FrameError, HeaderListTooLarge, HPACKError, LocalProtocolError
from .handshake import (
    MalformedHeaders,
    encode_headers,
    extended_connect_headers,
    validate_request,
    validate_response,
    validate_trailers,
    websocket_offers,
)
from .hpack import Decoder, Encoder

__all__ = ["H2Connection"]

_MESSAGES = (TextMessage, BinaryMessage)
# First octets of the whole (FIN) control frames we send (RFC 6455 §5.2).
_FIN = 0x80
_CLOSE_FRAME = _FIN | Opcode.CLOSE
_PING_FRAME = _FIN | Opcode.PING
_PONG_FRAME = _FIN | Opcode.PONG
_SETTING_KEYS = {int(code): code for code in SettingCode}
_MAX_STREAM_ID = 2**31 - 1
_UNLIMITED = 2**32 - 1

# How a stream closed, as remembered in H2Connection._closed (RFC 9113 §5.1 "closed" treats
# late frames differently for each).
_RESET_BY_US = 0      # we sent RST_STREAM: frames in flight are ignored
_RESET_BY_PEER = 1    # the peer sent RST_STREAM: anything but PRIORITY/RST_STREAM is a stream error
_ENDED = 2            # both sides sent END_STREAM: HEADERS is a connection error, DATA a stream error

# Phases of a WebSocket stream.
_REQUESTED = "requested"      # server: extended CONNECT received, not yet answered
_CONNECTING = "connecting"    # client: extended CONNECT sent, no final response yet
_OPEN = "open"                # accepted: DATA carries WebSocket frames
_DONE = "done"                # WebSocketClosed reported; the stream may linger until it ends


class _Info:
    """The Python half of a stream's state (``H2Stream.info``).

    ``early`` holds DATA not yet delivered: a WebSocket's before it is accepted, or the pieces
    of a plain body's DATA frame read so far.
    """

    __slots__ = (
        "websocket", "phase", "local", "headers_in", "close_sent", "close_received",
        "close_code", "close_reason", "early", "early_flow", "deadline", "content_length",
        "received", "offered_subprotocols", "offered_extensions", "reset_after_flush", "method",
        "counted", "close_complete",
    )

    def __init__(self, websocket: bool, local: bool) -> None:
        self.websocket = websocket
        self.phase = ""
        self.local = local
        self.headers_in = False
        self.close_sent = False
        self.close_received = False
        self.close_code = int(CloseCode.ABNORMAL_CLOSURE)
        self.close_reason = ""
        self.early: list[bytes] = []
        self.early_flow = 0
        self.deadline: float | None = None
        self.content_length: int | None = None
        self.received = 0
        self.offered_subprotocols: tuple[str, ...] = ()
        self.offered_extensions: tuple[str, ...] = ()
        self.reset_after_flush = False  # reset with NO_ERROR once our END_STREAM is out
        self.method = ""                # a plain request's method (HEAD: its response has no body)
        self.counted = True             # counts toward the concurrency limit
        self.close_complete = False     # a WebSocket whose close handshake is done both ways


class _HeaderBlock:
    """A header block being assembled: HEADERS, then CONTINUATIONs until END_HEADERS."""

    __slots__ = ("stream_id", "end_stream", "fragments", "length", "stream_error")

    def __init__(self, stream_id: int, end_stream: bool, first: bytes, length: int,
                 stream_error: int | None) -> None:
        self.stream_id = stream_id
        self.end_stream = end_stream
        self.fragments = [first]
        self.length = length                # frame payload octets so far (padding included)
        self.stream_error = stream_error


class _ConnectionError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class H2Connection(H2Core):
    """One HTTP/2 connection, client or server side (``client_side`` is our role).

    Call :meth:`initiate` first (it queues the preface/SETTINGS), feed every byte received to
    :meth:`receive_data`, and write out :meth:`data_to_send` after each call.
    """

    def __init__(self, client_side: bool, config: Config | None = None) -> None:
        self.client_side = bool(client_side)
        self.config = config = config if config is not None else Config()
        self._reader = FrameReader(
            config.max_frame_size, expect_preface=not self.client_side, stream_data=True
        )
        self._core_reader(self._reader)
        self._decoder = Decoder(max(4096, config.header_table_size), config.max_header_list_size)
        self._encoder = Encoder(4096)
        self._mask_outgoing = self.client_side
        self._release_on_consume = config.release_on_consume
        self._stream_recv_size = config.initial_window_size
        self._conn_recv_size = config.connection_window_size
        self.streams: dict[int, H2Stream] = {}
        self.local_settings: dict[int, int] = {}
        self.remote_settings: dict[int, int] = {
            SettingCode.HEADER_TABLE_SIZE: 4096,
            SettingCode.ENABLE_PUSH: 1,
            SettingCode.MAX_CONCURRENT_STREAMS: _UNLIMITED,
            SettingCode.INITIAL_WINDOW_SIZE: 65535,
            SettingCode.MAX_FRAME_SIZE: 16384,
            SettingCode.MAX_HEADER_LIST_SIZE: _UNLIMITED,
            SettingCode.ENABLE_CONNECT_PROTOCOL: 0,
        }
        self._settings_pending: list[tuple[dict[int, int], float]] = []
        self._remote_settings_seen = False
        self._initiated = False
        self._terminated = False
        self._next_local_id = 1 if self.client_side else 2
        self._highest_peer_id = 0
        self._peer_open = 0
        self._local_open = 0
        self._closed: dict[int, int] = {}             # closed stream id -> how (_RESET_BY_US...)
        self._block: _HeaderBlock | None = None        # header block being assembled
        self._goaway_sent: int | None = None           # the last_stream_id we sent
        self._goaway_received: int | None = None
        self._pings_sent: list[bytes] = []
        self._lingering: set[int] = set()
        self._deferred: list[Any] = []                 # events made by send_* calls
        # The receive window a new stream gets: what the peer may assume before it has seen
        # our SETTINGS (65,535), or more if we advertise more.
        self._local_initial_window = max(65535, config.initial_window_size)
        # Flood limits (Config.*_limit): token buckets, None where the limit is off.
        clock = config.clock
        self._budgets = {name: None if getattr(config, name) is None else _Budget(getattr(config, name), clock)
                         for name in _LIMITS}
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

    # -- setup ------------------------------------------------------------------------------

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
            and self._next_local_id <= _MAX_STREAM_ID

    @property
    def settings_ack_pending(self) -> bool:
        """Whether SETTINGS we sent still await their ACK."""
        return bool(self._settings_pending)

    # -- receiving --------------------------------------------------------------------------

    # receive_data(data) -> list of events is compiled (H2Core): a batch of WebSocket messages
    # only is returned as the reader made it; any other batch comes here.

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
                raise _ConnectionError(error.error_code or ErrorCode.PROTOCOL_ERROR, message)
        except _ConnectionError as exc:
            self._connection_error(exc.code, str(exc), events)
        if self._lingering:
            self._reap()
        return events

    def _dispatch(self, item: Any, events: list[Any]) -> None:
        kind = type(item)
        if kind in _MESSAGES:
            s = self.streams.get(item.stream_id)
            if s is not None and not s.info.close_received:
                events.append(item)
        elif kind is Frame:
            handler = _FRAME_HANDLERS.get(item.type)
            if handler is not None:
                handler(self, item, events)
        elif kind is DataPiece:
            self._on_data(item, events)
        elif kind is Signal:
            self._on_signal(item, events)
        elif kind is Ping:
            self._on_ws_ping(item, events)
        elif kind is Pong:
            s = self.streams.get(item.stream_id)
            if s is not None and not s.info.close_received:
                events.append(item)
        elif kind is CloseReceived:
            self._on_ws_close(item, events)

    def _charge(self, limit: str, what: str, n: int = 1) -> None:
        budget = self._budgets[limit]
        if budget is not None and not budget.spend(n):
            rate: RateLimit = getattr(self.config, limit)
            raise _ConnectionError(ErrorCode.ENHANCE_YOUR_CALM,
                                   f"{what} beyond {rate.burst} at once or {rate.per_second:g}/s "
                                   f"(Config.{limit}; RFC 9113 §10.5)")

    # SETTINGS ------------------------------------------------------------------------------

    def _on_settings(self, frame: Frame, events: list[Any]) -> None:
        if frame.ack:
            if not self._settings_pending:
                return                      # an ACK for nothing: ignore
            settings, _ = self._settings_pending.pop(0)
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
                raise _ConnectionError(
                    ErrorCode.PROTOCOL_ERROR, "server sent SETTINGS_ENABLE_PUSH = 1 (RFC 9113 §6.5.2)"
                )
            if ident == SettingCode.ENABLE_CONNECT_PROTOCOL and old == 1 and value == 0:
                raise _ConnectionError(
                    ErrorCode.PROTOCOL_ERROR,
                    "SETTINGS_ENABLE_CONNECT_PROTOCOL went from 1 to 0 (RFC 8441 §3)",
                )
            if ident == SettingCode.INITIAL_WINDOW_SIZE and old != value:
                if self._initial_window_changed(value - (65535 if old is None else old)):
                    raise _ConnectionError(
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

    # HEADERS / CONTINUATION ----------------------------------------------------------------

    def _on_headers(self, frame: Frame, events: list[Any]) -> None:
        data = bytes(frame.data)
        if not data and not frame.end_headers:
            self._charge("empty_frame_limit", "empty frames")
        self._block = _HeaderBlock(frame.stream_id, bool(frame.end_stream), data, frame.length,
                                   frame.stream_error)
        self._check_block_size()
        if frame.end_headers:
            self._end_block(events)

    def _on_continuation(self, frame: Frame, events: list[Any]) -> None:
        block = self._block
        if block is None:                   # the reader forbids this; be safe
            raise _ConnectionError(ErrorCode.PROTOCOL_ERROR, "CONTINUATION without HEADERS")
        data = bytes(frame.data)
        if not data and not frame.end_headers:
            self._charge("empty_frame_limit", "empty frames")
        block.fragments.append(data)
        block.length += frame.length
        if len(block.fragments) > self.config.max_continuation_frames + 1:
            raise _ConnectionError(ErrorCode.ENHANCE_YOUR_CALM,
                                   f"header block in more than {self.config.max_continuation_frames} "
                                   "CONTINUATION frames (Config.max_continuation_frames)")
        self._check_block_size()
        if frame.end_headers:
            self._end_block(events)

    def _check_block_size(self) -> None:
        assert self._block is not None
        if self._block.length > self.config.max_header_block_size:
            raise _ConnectionError(
                ErrorCode.ENHANCE_YOUR_CALM,
                f"header block of more than {self.config.max_header_block_size} octets "
                "(Config.max_header_block_size)",
            )

    def _on_push_promise(self, frame: Frame, events: list[Any]) -> None:
        # RFC 9113 §8.4: a client that sent ENABLE_PUSH = 0, and any server, must refuse it.
        raise _ConnectionError(
            ErrorCode.PROTOCOL_ERROR,
            "PUSH_PROMISE received, but push is disabled (client) or impossible (server) "
            "(RFC 9113 §8.4)",
        )

    def _end_block(self, events: list[Any]) -> None:
        assert self._block is not None
        block, self._block = self._block, None
        sid, end_stream, fragments, stream_error = block.stream_id, block.end_stream, block.fragments, \
            block.stream_error
        too_large: HeaderListTooLarge | None = None
        try:
            headers = self._decoder.decode(b"".join(fragments))
        except HeaderListTooLarge as exc:
            headers, too_large = [], exc
        except HPACKError as exc:
            raise _ConnectionError(ErrorCode.COMPRESSION_ERROR, str(exc)) from None
        if stream_error:
            self._stream_error(sid, stream_error, "HEADERS priority on itself (RFC 9113 §5.3.1)", events)
            return
        s = self.streams.get(sid)
        if s is None:
            self._headers_for_unknown(sid, headers, end_stream, too_large, events)
            return
        info: _Info = s.info
        if s.remote_ended:
            self._stream_error(sid, ErrorCode.STREAM_CLOSED,
                               f"HEADERS on stream {sid} after its END_STREAM (RFC 9113 §5.1)", events)
            return
        if too_large is not None:
            self._stream_error(sid, ErrorCode.PROTOCOL_ERROR, str(too_large), events)
            return
        if info.websocket and info.phase == _CONNECTING:
            self._on_connect_response(s, headers, end_stream, events)
        elif info.websocket and info.phase != "rejected":
            self._stream_error(sid, ErrorCode.PROTOCOL_ERROR,
                               f"HEADERS on WebSocket stream {sid} after the handshake: only DATA, "
                               "RST_STREAM, WINDOW_UPDATE and PRIORITY may follow (RFC 8441 §5)", events)
        elif info.local and not info.headers_in:
            self._on_response(s, headers, end_stream, events)
        else:
            self._on_trailers(s, headers, end_stream, events)

    def _headers_for_unknown(self, sid: int, headers: list[tuple[bytes, bytes]], end_stream: bool,
                             too_large: HeaderListTooLarge | None, events: list[Any]) -> None:
        if not self._peer_initiated(sid):
            if sid >= self._next_local_id:
                raise _ConnectionError(ErrorCode.PROTOCOL_ERROR,
                                       f"HEADERS on idle stream {sid}, which only we may open "
                                       "(RFC 9113 §5.1.1)")
            self._on_closed_stream(sid, "HEADERS", events)
            return
        if sid <= self._highest_peer_id:
            if sid not in self._closed:
                # Never opened, so implicitly closed by a higher id (RFC 9113 §5.1.1).
                raise _ConnectionError(ErrorCode.PROTOCOL_ERROR,
                                       f"HEADERS opening stream {sid} after stream "
                                       f"{self._highest_peer_id}: ids must increase (RFC 9113 §5.1.1)")
            self._on_closed_stream(sid, "HEADERS", events)
            return
        if self.client_side:
            raise _ConnectionError(ErrorCode.PROTOCOL_ERROR,
                                   f"server opened stream {sid} with HEADERS (RFC 9113 §5.1.1)")
        self._highest_peer_id = sid
        if self._goaway_sent is not None:
            self._remember_closed(sid, _RESET_BY_US)     # after our GOAWAY: not processed (§6.8)
            self._write(_core.build_rst_stream(sid, ErrorCode.REFUSED_STREAM))
            return
        if self._peer_open >= self.config.max_concurrent_streams:
            self._remember_closed(sid, _RESET_BY_US)
            self._write(_core.build_rst_stream(sid, ErrorCode.REFUSED_STREAM))
            events.append(StreamReset(sid, ErrorCode.REFUSED_STREAM, False,
                                      f"more than {self.config.max_concurrent_streams} concurrent "
                                      "streams (RFC 9113 §5.1.2)"))
            return
        if too_large is not None:
            self._respond_and_reset(sid, 431, (), str(too_large), events)
            return
        try:
            request = validate_request(
                headers, connect_protocol_enabled=bool(
                    self.local_settings.get(SettingCode.ENABLE_CONNECT_PROTOCOL)))
        except MalformedHeaders as exc:
            self._stream_error(sid, ErrorCode.PROTOCOL_ERROR, str(exc), events)
            return
        if request.protocol is not None:
            self._on_extended_connect(sid, request, end_stream, events)
            return
        s = self._new_stream(sid, websocket=False, local=False)
        info = s.info
        info.headers_in = True
        info.method = request.method
        info.content_length = request.content_length
        events.append(RequestReceived(sid, request.method, request.path, request.authority,
                                      request.scheme, request.headers, end_stream))
        if end_stream:
            self._remote_end(s, events)

    def _on_extended_connect(self, sid: int, request: Any, end_stream: bool,
                             events: list[Any]) -> None:
        if request.protocol.lower() != "websocket":
            self._respond_and_reset(sid, 501, (), f"unknown :protocol {request.protocol!r} "
                                    "answered 501 (RFC 8441 §4)", events)
            return
        if end_stream:
            self._stream_error(sid, ErrorCode.PROTOCOL_ERROR,
                               "extended CONNECT with END_STREAM: the WebSocket could never send "
                               "(RFC 8441 §4)", events)
            return
        versions = [v for n, v in request.headers if n == b"sec-websocket-version"]
        if versions != [b"13"]:
            self._respond_and_reset(sid, 426, ((b"sec-websocket-version", b"13"),),
                                    f"sec-websocket-version {versions!r}, not 13 (RFC 6455 §4.4)",
                                    events)
            return
        subprotocols, extensions, origin = websocket_offers(request.headers)
        s = self._new_stream(sid, websocket=True, local=False)
        info = s.info
        info.phase = _REQUESTED
        info.headers_in = True
        info.offered_subprotocols = subprotocols
        info.offered_extensions = extensions
        events.append(WebSocketRequested(sid, request.path, request.authority, request.scheme,
                                         subprotocols, extensions, origin, request.headers))

    def _final_response(self, sid: int, headers: list[tuple[bytes, bytes]],
                        events: list[Any]) -> tuple[int, tuple[tuple[bytes, bytes], ...], int | None] | None:
        # A response head: (status, fields, content-length) if final; None when it was
        # malformed (stream reset) or informational (1xx reported; 101 is malformed in HTTP/2).
        try:
            status, fields, content_length = validate_response(headers)
        except MalformedHeaders as exc:
            self._stream_error(sid, ErrorCode.PROTOCOL_ERROR, str(exc), events)
            return None
        if 100 <= status < 200:
            if status == 101:
                self._stream_error(sid, ErrorCode.PROTOCOL_ERROR,
                                   "101 Switching Protocols in HTTP/2 (RFC 9113 §8.6)", events)
            else:
                events.append(InformationalResponseReceived(sid, status, fields))
            return None
        return status, fields, content_length

    def _on_connect_response(self, s: H2Stream, headers: list[tuple[bytes, bytes]],
                             end_stream: bool, events: list[Any]) -> None:
        sid = s.stream_id
        info: _Info = s.info
        response = self._final_response(sid, headers, events)
        if response is None:
            return
        status, fields, _ = response
        info.headers_in = True
        if not 200 <= status < 300:
            info.phase = "rejected"
            info.websocket = False
            events.append(WebSocketRejected(sid, status, fields))
            if end_stream:
                self._remote_end(s, events)
            return
        subprotocols, extensions, _ = websocket_offers(fields)
        problem = ""
        if len(subprotocols) > 1 or (subprotocols and subprotocols[0] not in info.offered_subprotocols):
            problem = f"server chose subprotocol {subprotocols!r}, not one we offered"
        elif extensions and not info.offered_extensions:
            problem = f"server chose extensions {extensions!r} although we offered none"
        elif extensions:
            try:
                agreed = client_accept(extensions, ", ".join(info.offered_extensions))
            except ExtensionError as exc:
                problem = str(exc)
            else:
                s.deflate = None if agreed is None else self._codec(agreed)
        if not problem and end_stream:
            problem = "server ended the stream in its 2xx answer"
        if problem:
            info.phase = _DONE
            self._write(_core.build_rst_stream(sid, ErrorCode.CANCEL))
            self._remove(s, _RESET_BY_US)
            events.append(WebSocketRejected(sid, status, fields, problem))
            return
        self._attach_parser(s, client_side=True)
        info.phase = _OPEN
        s.ws_open = True
        events.append(WebSocketAccepted(sid, status, subprotocols[0] if subprotocols else None,
                                        extensions, fields))

    def _on_response(self, s: H2Stream, headers: list[tuple[bytes, bytes]], end_stream: bool,
                     events: list[Any]) -> None:
        sid = s.stream_id
        response = self._final_response(sid, headers, events)
        if response is None:
            return
        status, fields, content_length = response
        s.info.headers_in = True
        # A response to HEAD, and a 204 or 304, has no content whatever its content-length
        # says (RFC 9113 §8.1.1, RFC 9110 §6.4.1).
        s.info.content_length = 0 if s.info.method == "HEAD" or status in (204, 304) else content_length
        events.append(ResponseReceived(sid, status, fields, end_stream))
        if end_stream:
            self._remote_end(s, events)

    def _on_trailers(self, s: H2Stream, headers: list[tuple[bytes, bytes]], end_stream: bool,
                     events: list[Any]) -> None:
        sid = s.stream_id
        if not end_stream:
            self._stream_error(sid, ErrorCode.PROTOCOL_ERROR,
                               "a second HEADERS without END_STREAM (RFC 9113 §8.1)", events)
            return
        try:
            fields = validate_trailers(headers)
        except MalformedHeaders as exc:
            self._stream_error(sid, ErrorCode.PROTOCOL_ERROR, str(exc), events)
            return
        events.append(TrailersReceived(sid, fields))
        self._remote_end(s, events)

    # DATA ----------------------------------------------------------------------------------

    def _on_data(self, piece: DataPiece, events: list[Any]) -> None:
        sid = piece.stream_id
        s = self.streams.get(sid)
        if s is None:
            if piece.last:
                self._release(0, piece.frame_length)
            if self._is_idle(sid):
                raise _ConnectionError(ErrorCode.PROTOCOL_ERROR,
                                       f"DATA on idle stream {sid} (RFC 9113 §5.1)")
            if piece.last:
                self._on_closed_stream(sid, "DATA", events)
            return
        info: _Info = s.info
        if s.remote_ended:
            if piece.last:
                self._release(0, piece.frame_length)
            self._stream_error(sid, ErrorCode.STREAM_CLOSED,
                               f"DATA on stream {sid} after its END_STREAM (RFC 9113 §6.1)", events)
            return
        if not info.headers_in or (info.websocket and info.phase == _CONNECTING):
            if piece.last:
                self._release(sid, piece.frame_length)
            self._stream_error(sid, ErrorCode.PROTOCOL_ERROR,
                               f"DATA before HEADERS on stream {sid} (RFC 9113 §8.1)", events)
            return
        if info.websocket:
            if info.phase == _REQUESTED:
                # Early data: held (it is flow-controlled, so bounded) until accept/reject.
                if len(piece):
                    info.early.append(bytes(piece))
                if piece.last:
                    info.early_flow += piece.frame_length
                    if piece.end_stream:
                        s.remote_ended = True
                return
            if info.phase == _OPEN and not s.discard and len(piece):
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
        if piece.last and info.early:
            data = info.early[0] if len(info.early) == 1 else b"".join(info.early)
            info.early = []
            events.append(DataReceived(sid, data, piece.frame_length))
        if piece.last:
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
            self._fail_websocket(s, signal.code, signal.message or "", events)
        elif kind == _core.SIGNAL_END_STREAM:
            self._remote_end(s, events)

    # WebSocket control frames --------------------------------------------------------------

    def _on_ws_ping(self, ping: Ping, events: list[Any]) -> None:
        s = self.streams.get(ping.stream_id)
        if s is None or s.info.close_received:
            return
        if self.config.auto_pong and not s.info.close_sent and not s.local_ended:
            self._send_ws_frame(s.stream_id, _PONG_FRAME, ping.payload)
        events.append(ping)

    def _on_ws_close(self, close: CloseReceived, events: list[Any]) -> None:
        s = self.streams.get(close.stream_id)
        if s is None or s.info.close_received:
            return
        info: _Info = s.info
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
            self._send_ws_frame(s.stream_id, _CLOSE_FRAME, payload, end_stream)

    def _end_local(self, s: H2Stream) -> None:
        if not s.local_ended and not s.pending_end:
            self._send_data(s.stream_id, b"", True)

    def _websocket_done(self, s: H2Stream, events: list[Any]) -> None:
        # The close handshake is complete (or the WebSocket failed): report once, then let the
        # stream linger until both sides ended it or the close timeout resets it.
        info: _Info = s.info
        if info.phase != _DONE:
            info.phase = _DONE
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
        info: _Info = s.info
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

    # other frames --------------------------------------------------------------------------

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
                raise _ConnectionError(ErrorCode.PROTOCOL_ERROR,
                                       f"RST_STREAM on idle stream {sid} (RFC 9113 §6.4)")
            return
        code = frame.error_code
        self._remove(s, _RESET_BY_PEER)
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
                self._remove(s, _RESET_BY_PEER)
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
                raise _ConnectionError(ErrorCode.FLOW_CONTROL_ERROR,
                                       "connection send window past 2^31-1 (RFC 9113 §6.9.1)")
            self._after_flush()
            return
        s = self.streams.get(sid)
        if s is None:
            if self._is_idle(sid):
                raise _ConnectionError(ErrorCode.PROTOCOL_ERROR,
                                       f"WINDOW_UPDATE on idle stream {sid} (RFC 9113 §5.1)")
            self._on_closed_stream(sid, "WINDOW_UPDATE", events)
            return
        if self._window_update(sid, increment):
            self._stream_error(sid, ErrorCode.FLOW_CONTROL_ERROR,
                               f"stream {sid} send window past 2^31-1 (RFC 9113 §6.9.1)", events)
            return
        self._after_flush()

    # -- stream bookkeeping -----------------------------------------------------------------

    def _peer_initiated(self, sid: int) -> bool:
        return (sid & 1) == (0 if self.client_side else 1)

    def _is_idle(self, sid: int) -> bool:
        if self._peer_initiated(sid):
            return sid > self._highest_peer_id
        return sid >= self._next_local_id

    def _new_stream(self, sid: int, websocket: bool, local: bool) -> H2Stream:
        s = H2Stream(sid)
        s.info = _Info(websocket, local)
        s.recv_window = self._local_initial_window
        s.send_window = self.remote_settings[SettingCode.INITIAL_WINDOW_SIZE]
        self.streams[sid] = s
        self._core_add(s)
        if local:
            self._local_open += 1
        else:
            self._peer_open += 1
        return s

    def _remove(self, s: H2Stream, how: int) -> None:
        sid = s.stream_id
        if self.streams.pop(sid, None) is None:
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
        if how == _RESET_BY_US or (what == "WINDOW_UPDATE" and how != _RESET_BY_PEER):
            return
        if how == _ENDED and what == "HEADERS":
            raise _ConnectionError(ErrorCode.STREAM_CLOSED,
                                   f"HEADERS on stream {sid} after both sides ended it (RFC 9113 §5.1)")
        self._stream_error(sid, ErrorCode.STREAM_CLOSED, f"{what} on closed stream {sid} "
                           "(RFC 9113 §5.1)", events)

    def _remote_end(self, s: H2Stream, events: list[Any]) -> None:
        s.remote_ended = True
        info: _Info = s.info
        if info.websocket and info.phase == _OPEN:
            # The peer ended its side without a close handshake: abnormal closure (1006).
            self._end_local(s)
            self._websocket_done(s, events)
        elif not info.websocket:
            events.append(StreamEnded(s.stream_id))
            if info.phase == "rejected":
                self._end_local(s)          # our extended CONNECT is over too
        self._lingering.add(s.stream_id)

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
                    self._remove(s, _ENDED)
                elif s.info.reset_after_flush:
                    self._write(_core.build_rst_stream(sid, ErrorCode.NO_ERROR))
                    self._remove(s, _RESET_BY_US)
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
        self._remove(s, _RESET_BY_US)
        self.streams_reset_after_close += 1

    def _after_flush(self) -> None:
        # Queued DATA may have gone out with END_STREAM: streams may be complete now.
        self._reap()

    def _terminal_event(self, s: H2Stream, code: int | None, remote: bool, message: str,
                        events: list[Any]) -> None:
        info: _Info = s.info
        if info.websocket and info.phase == _CONNECTING:
            info.phase = _DONE
            events.append(WebSocketRejected(s.stream_id, 0, (), message))
        elif info.websocket and info.phase != _DONE:
            info.phase = _DONE
            events.append(WebSocketClosed(s.stream_id, info.close_code, info.close_reason, code))
        elif not info.websocket and code is not None:
            events.append(StreamReset(s.stream_id, code, remote, message))

    def _stream_error(self, sid: int, code: int, message: str, events: list[Any]) -> None:
        self._charge("local_reset_limit", "streams reset for breaking the rules")
        self._write(_core.build_rst_stream(sid, code))
        s = self.streams.get(sid)
        if s is None:
            self._remember_closed(sid, _RESET_BY_US)
            events.append(StreamReset(sid, code, False, message))
            return
        self._remove(s, _RESET_BY_US)
        if s.info.websocket and s.info.phase == _DONE:
            return
        if s.info.websocket and s.info.phase != _CONNECTING:
            s.info.phase = _DONE
            events.append(WebSocketClosed(sid, int(CloseCode.ABNORMAL_CLOSURE), message, code))
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
        self._remember_closed(sid, _RESET_BY_US)
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
            self._remove(s, _RESET_BY_US)
            self._terminal_event(s, code, False, "the connection ended", events)

    def _attach_parser(self, s: H2Stream, client_side: bool) -> None:
        self._bind_parser(s, FrameParser(client_side, self.config.max_message_size) if s.deflate is None
                          else s.deflate.frame_parser(client_side))

    def _codec(self, agreed: DeflateParameters) -> PerMessageDeflate:
        return PerMessageDeflate.from_config(agreed, self.config)

    # -- sending: WebSockets ----------------------------------------------------------------

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
        s.info.phase = _CONNECTING
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
        info: _Info = s.info
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
        info.phase = _OPEN
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
                self._dispatch(item, events)
            self._fail_websocket(s, code, str(exc), events)
            return
        for item in parsed:
            self._dispatch(item, events)

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
        s.info.phase = _DONE
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
        if s is None or not s.info.websocket or s.info.phase != _REQUESTED:
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
        self._send_ws_frame(s.stream_id, _PING_FRAME, payload)

    def send_pong(self, stream_id: int, payload: bytes = b"") -> None:
        """Send a WebSocket pong (when ``auto_pong`` is off, or unsolicited)."""
        s = self._open_websocket(stream_id)
        if len(payload) > 125:
            raise LocalProtocolError("a pong payload is at most 125 bytes (RFC 6455 §5.5)")
        self._send_ws_frame(s.stream_id, _PONG_FRAME, payload)

    def send_fragment(self, stream_id: int, data: Any, *, first: bool, fin: bool,
                      text: bool = False) -> None:
        """Send one frame of a fragmented message (``first``: the opening frame, whose type
        ``text`` decides; ``fin``: the last)."""
        self._open_websocket(stream_id)
        opcode = (Opcode.TEXT if text else Opcode.BINARY) if first else Opcode.CONTINUATION
        if isinstance(data, str):
            data = data.encode("utf-8")
        self._send_ws_frame(stream_id, (_FIN if fin else 0) | opcode, data)

    def close_websocket(self, stream_id: int, code: int = 1000, reason: str = "") -> None:
        """Start (or, after a :class:`CloseReceived` with ``auto_close`` off, complete) the
        close handshake.  END_STREAM follows once both Close frames are exchanged."""
        s = self.streams.get(stream_id)
        if s is None or not s.info.websocket or s.info.phase not in (_OPEN, _DONE):
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
        info: _Info = s.info
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

    def reset_stream(self, stream_id: int, error_code: int = ErrorCode.CANCEL) -> None:
        """Reset a stream (RST_STREAM); queued data on it is dropped."""
        s = self.streams.get(stream_id)
        if s is None:
            raise LocalProtocolError(f"stream {stream_id} is not open")
        self._write(_core.build_rst_stream(stream_id, error_code))
        s.info.phase = _DONE
        self._remove(s, _RESET_BY_US)

    def _open_websocket(self, stream_id: int) -> H2Stream:
        s = self.streams.get(stream_id)
        if s is None or not s.ws_open:
            raise LocalProtocolError(f"stream {stream_id} carries no open WebSocket")
        return s

    # -- sending: plain HTTP ----------------------------------------------------------------

    def send_request(
        self,
        method: str,
        path: str,
        authority: str,
        *,
        scheme: str = "https",
        headers: Iterable[tuple[bytes | str, bytes | str]] = (),
        body: bytes | None = b"",
        end_stream: bool = True,
    ) -> int:
        """Client: send a plain request; returns its stream id.  With ``end_stream=False`` (or
        ``body=None``) the body follows with :meth:`send_body`."""
        if not self.client_side:
            raise LocalProtocolError("only a client sends requests")
        fields = [(b":method", method.encode("ascii")), (b":scheme", scheme.encode("ascii")),
                  (b":authority", authority.encode("ascii")), (b":path", path.encode("ascii"))]
        fields.extend(encode_headers(headers))
        ends_now = end_stream and not body
        s = self._open_local_stream(fields, end_stream=ends_now, websocket=False)
        s.info.method = method
        if body:
            self._send_data(s.stream_id, bytes(body), end_stream)
        return s.stream_id

    def send_response(
        self,
        stream_id: int,
        status: int,
        headers: Iterable[tuple[bytes | str, bytes | str]] = (),
        body: bytes | None = b"",
        *,
        end_stream: bool = True,
    ) -> None:
        """Server: answer a plain request.  With ``end_stream=False`` the body follows with
        :meth:`send_body`.

        The arguments are checked before anything is written, so a refused response leaves the
        request still awaiting one.  The answer to a HEAD request carries no body: ``body`` only
        sets its content-length (RFC 9110 §9.3.2)."""
        if not self.response_pending(stream_id):
            raise LocalProtocolError(f"stream {stream_id} holds no request awaiting a response")
        s = self.streams[stream_id]
        if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599 \
                or status == 101:
            raise LocalProtocolError(f"status {status!r} cannot be sent over HTTP/2")
        fields = [(b":status", str(status).encode())] + encode_headers(headers)
        body = bytes(body) if body else b""
        if s.info.method == "HEAD" and status >= 200:
            if end_stream and not any(n == b"content-length" for n, _ in fields):
                fields.append((b"content-length", str(len(body)).encode()))
            body = b""
        if status >= 200:
            s.info.phase = "responded"
        ends_now = end_stream and not body and status >= 200
        self._write_headers(stream_id, fields, end_stream=ends_now)
        if ends_now:
            s.local_ended = True
        elif body:
            self._send_data(stream_id, body, end_stream)
        self._lingering.add(stream_id)
        self._after_flush()

    def response_pending(self, stream_id: int) -> bool:
        """Server: whether the plain request on ``stream_id`` awaits its response head."""
        s = self.streams.get(stream_id)
        return s is not None and not s.info.websocket and not s.info.local \
            and s.info.phase != "responded" and not self._terminated

    def send_body(self, stream_id: int, data: bytes, *, end_stream: bool = False) -> None:
        """Send (more of) a plain body, under flow control: what does not fit waits.  In the
        answer to a HEAD request the data is dropped (only ``end_stream`` counts)."""
        s = self.streams.get(stream_id)
        if s is None or s.info.websocket:
            raise LocalProtocolError(f"stream {stream_id} is not a plain open stream")
        data = bytes(data)
        if s.info.method == "HEAD" and not s.info.local:
            data = b""
        self._send_data(stream_id, data, end_stream)
        if end_stream:
            self._lingering.add(stream_id)
            self._after_flush()

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
        if sid > _MAX_STREAM_ID:
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

    # -- connection-level sends ---------------------------------------------------------------

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

    # -- timeouts ---------------------------------------------------------------------------

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
            self._remove(s, _RESET_BY_US)
            if s.info.phase != _DONE:
                s.info.close_reason = s.info.close_reason or "close timeout"
                self._terminal_event(s, ErrorCode.CANCEL, False, "close timeout", events)
        stall = self.config.send_stall_timeout
        if stall is not None and self._track_stalls(now):
            for sid, (_, since) in sorted(self._stalls.items()):
                s = self.streams.get(sid)
                if s is None or now < since + stall:
                    continue
                message = (f"the peer kept its flow-control window closed for {stall:g} s with "
                           f"{s.pending_bytes} octets waiting (Config.send_stall_timeout)")
                self._write(_core.build_rst_stream(sid, ErrorCode.CANCEL))
                self._remove(s, _RESET_BY_US)
                s.info.close_reason = s.info.close_reason or message
                self._terminal_event(s, ErrorCode.CANCEL, False, message, events)
                self._stalls.pop(sid, None)
        return events


_LIMITS = ("peer_reset_limit", "local_reset_limit", "ping_limit", "settings_limit", "priority_limit",
           "window_update_limit", "empty_frame_limit")


class _Budget:
    """A token bucket (Config.*_limit)."""

    __slots__ = ("burst", "rate", "tokens", "stamp", "clock")

    def __init__(self, limit: RateLimit, clock: Callable[[], float]) -> None:
        self.burst, self.rate, self.clock = float(limit.burst), float(limit.per_second), clock
        self.tokens = self.burst
        self.stamp = clock()

    def spend(self, n: int = 1) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate) - n
        self.stamp = now
        return self.tokens >= 0


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
