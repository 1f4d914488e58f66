"""The records an :class:`~ws2fast.H2Connection` keeps, and the state machine of a stream.

Where a stream's state lives (one owner per field):

- :class:`ws2fast._core.H2Stream` (compiled, read per DATA frame): windows, the send queue,
  ``local_ended`` / ``pending_end`` (written by the core as DATA goes out), ``remote_ended``,
  ``discard``, ``ws_open`` and ``sent_early`` (written by the Python layers, read by the
  core; the core appends to ``sent_early``), the WebSocket parser and deflate codec;
- :class:`StreamInfo` (``H2Stream.info``, Python, read per HEADERS or control frame): the
  :class:`Phase`, what was offered, the body's length, deadlines, and, once a WebSocket is
  accepted, its :class:`~ws2fast.websocket.WebSocketSession` (the close handshake, its codes,
  pings: the same session class HTTP/1.1 runs);
- the connection's own tables: ``streams`` (the one stream table; the core holds a C-level
  index of the same streams, ``_core_add`` / ``_core_remove``), ``_closed`` (how each closed
  stream ended), ``_lingering`` (streams waiting for an END_STREAM, or with a deadline),
  ``_closing`` (server: closed WebSockets whose slot is free, waiting for the peer's
  END_STREAM) and ``_stalls`` (streams whose queue waits for window).
"""

from __future__ import annotations

import enum
from collections.abc import Callable

from typing import TYPE_CHECKING

from .config import RateLimit
from .errors import Opcode

if TYPE_CHECKING:
    from .websocket import WebSocketSession

# The first octet of a whole (FIN) Close frame (RFC 6455 §5.2): the carrier watches for it.
FIN = 0x80
CLOSE_FRAME = FIN | Opcode.CLOSE
MAX_STREAM_ID = 2**31 - 1
UNLIMITED = 2**32 - 1

# How a stream closed, as remembered in H2Connection._closed (RFC 9113 §5.1 "closed" treats
# late frames differently for each).
RESET_BY_US = 0      # we sent RST_STREAM: frames in flight are ignored
RESET_BY_PEER = 1    # the peer sent RST_STREAM: anything but PRIORITY/RST_STREAM is a stream error
ENDED = 2            # both sides sent END_STREAM: HEADERS is a connection error, DATA a stream error


class Phase(enum.IntEnum):
    """What a stream carries, and how far its exchange has come (its frames' state, open or
    half-closed, is in ``H2Stream.local_ended`` / ``remote_ended``)."""

    IDLE = 0            # a plain request or response, before the response head (server)
    REQUESTED = 1       # server: extended CONNECT received, not yet answered
    CONNECTING = 2      # client: extended CONNECT sent, no final response yet
    OPEN = 3            # accepted: DATA carries WebSocket frames
    REJECTED = 4        # client: our extended CONNECT got a non-2xx; its body may follow
    RESPONDED = 5       # server: the response head of a plain request is out
    DONE = 6            # terminal event reported (WebSocketClosed, rejected, reset); may linger


# The transition table: every change of phase goes through StreamInfo.move, which refuses any
# other (a bug in this package, never the peer's doing: the peer's frames are checked against
# the phase before it changes).
TRANSITIONS: dict[Phase, frozenset[Phase]] = {
    Phase.IDLE: frozenset({Phase.REQUESTED, Phase.CONNECTING, Phase.RESPONDED, Phase.DONE}),
    Phase.REQUESTED: frozenset({Phase.OPEN, Phase.DONE}),        # accept; reject, reset
    Phase.CONNECTING: frozenset({Phase.OPEN, Phase.REJECTED, Phase.DONE}),
    Phase.OPEN: frozenset({Phase.DONE}),                         # closed, failed, reset
    Phase.REJECTED: frozenset({Phase.DONE}),
    Phase.RESPONDED: frozenset({Phase.DONE}),
    Phase.DONE: frozenset({Phase.DONE}),
}


class StreamInfo:
    """The Python half of a stream's state (``H2Stream.info``).

    ``early`` holds DATA not yet delivered: a WebSocket's before it is accepted, or the pieces
    of a plain body's DATA frame read so far.
    """

    __slots__ = (
        "stream_id", "websocket", "phase", "local", "headers_in", "session", "early", "early_flow",
        "deadline", "content_length", "received", "offered_subprotocols", "offered_extensions",
        "reset_after_flush", "method", "counted", "close_complete", "speculative",
    )

    def __init__(self, stream_id: int, websocket: bool, local: bool) -> None:
        self.stream_id = stream_id
        self.websocket = websocket
        self.phase = Phase.IDLE
        self.local = local
        self.headers_in = False
        self.session: WebSocketSession | None = None   # once the WebSocket is accepted
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
        # client: our extended CONNECT left before the server's SETTINGS (Config.early_handshake);
        # server: the client's came before it acknowledged our SETTINGS
        self.speculative = False

    def move(self, phase: Phase) -> None:
        """Change phase along the transition table."""
        if phase not in TRANSITIONS[self.phase]:
            raise RuntimeError(f"stream {self.stream_id}: no transition from {self.phase.name} to "
                               f"{phase.name} (a bug in ws2fast)")
        self.phase = phase


class HeaderBlock:
    """A header block being assembled: HEADERS, then CONTINUATIONs until END_HEADERS."""

    __slots__ = ("stream_id", "end_stream", "fragments", "length", "stream_error")

    def __init__(self, stream_id: int, end_stream: bool, first: bytes, length: int,
                 stream_error: int | None) -> None:
        self.stream_id = stream_id
        self.end_stream = end_stream
        self.fragments = [first]
        self.length = length                # frame payload octets so far (padding included)
        self.stream_error = stream_error


class ConnectionFailure(Exception):
    """Raised inside the connection to end the batch with GOAWAY(code) (never escapes
    ``receive_data``)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


LIMITS = ("peer_reset_limit", "local_reset_limit", "ping_limit", "settings_limit", "priority_limit",
          "window_update_limit", "empty_frame_limit")


class Budget:
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
