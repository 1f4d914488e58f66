"""Events returned by ``receive_data`` of the sans-IO connections.

HTTP/2-level events are past tense and frozen dataclasses (they are rare).  WebSocket message
and control events are nouns and compiled types made in C on the hot path
(:class:`TextMessage`, :class:`BinaryMessage`, :class:`Ping`, :class:`Pong`,
:class:`CloseReceived`); each has ``stream_id`` (0 over HTTP/1.1).

Header lists are tuples of ``(name, value)`` byte pairs, as they came off the wire (names
lowercase).  ``remote`` on :class:`StreamReset` and :class:`ConnectionTerminated` tells whether
the peer sent the RST_STREAM/GOAWAY (True) or we did because the peer broke a rule (False); then
``message`` says which rule.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._core import BinaryMessage, CloseReceived, CompressedMessage, Ping, Pong, TextMessage

__all__ = [
    "Event",
    "SettingsReceived",
    "SettingsAcknowledged",
    "PingReceived",
    "PingAcknowledged",
    "WebSocketRequested",
    "WebSocketAccepted",
    "WebSocketRejected",
    "WebSocketClosed",
    "TextMessage",
    "BinaryMessage",
    "CompressedMessage",
    "Ping",
    "Pong",
    "CloseReceived",
    "RequestReceived",
    "ResponseReceived",
    "InformationalResponseReceived",
    "TrailersReceived",
    "DataReceived",
    "StreamEnded",
    "StreamReset",
    "ConnectionTerminated",
]

Headers = tuple[tuple[bytes, bytes], ...]


class Event:
    """Base class of the dataclass events (the compiled ones do not derive from it)."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class SettingsReceived(Event):
    """The peer's SETTINGS, now in force and acknowledged: ``{SettingCode: value}`` (a plain
    int key for a setting this library does not know)."""

    settings: dict[int, int]


@dataclass(frozen=True, slots=True)
class SettingsAcknowledged(Event):
    """The peer acknowledged our SETTINGS; ``settings`` are those now in force, keyed as in
    :class:`SettingsReceived`."""

    settings: dict[int, int]


@dataclass(frozen=True, slots=True)
class PingReceived(Event):
    """An HTTP/2 PING (already answered)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class PingAcknowledged(Event):
    """The answer to a PING we sent."""

    data: bytes


@dataclass(frozen=True, slots=True)
class WebSocketRequested(Event):
    """Server: a client asks for a WebSocket (RFC 8441 extended CONNECT, or RFC 6455 Upgrade).

    Answer with ``accept_websocket`` or ``reject_websocket``.  ``subprotocols`` are the offers
    in order; ``extensions`` the raw ``sec-websocket-extensions`` values.

    Over HTTP/2: ``speculative``, the extended CONNECT came before the client acknowledged our
    SETTINGS (it did not wait for them: an early handshake); ``capability_announced``, the
    client sent SETTINGS_ENABLE_CONNECT_PROTOCOL = 1 itself.  Both False over HTTP/1.1.
    """

    stream_id: int
    path: str
    authority: str
    scheme: str
    subprotocols: tuple[str, ...]
    extensions: tuple[str, ...]
    origin: str | None
    headers: Headers
    speculative: bool = False
    capability_announced: bool = False


@dataclass(frozen=True, slots=True)
class WebSocketAccepted(Event):
    """Client: the server accepted our WebSocket (a 2xx, or 101 over HTTP/1.1)."""

    stream_id: int
    status: int
    subprotocol: str | None
    extensions: tuple[str, ...]
    headers: Headers


@dataclass(frozen=True, slots=True)
class WebSocketRejected(Event):
    """Client: the server refused our WebSocket.  A body, if any, follows as
    :class:`DataReceived` events and :class:`StreamEnded`.  ``status`` is 0 when there was no
    answer we could use: the stream was reset (``reset_code``: the RST_STREAM code), refused by
    a GOAWAY, timed out, or its answer was refused by us; ``reason`` says which.

    ``undelivered``: the messages sent before the answer (``Config.early_handshake``), in
    order, that the server did not take (all of them: a server takes early messages only when
    it accepts).  ``speculative``: our extended CONNECT left before the server's SETTINGS came.
    """

    stream_id: int
    status: int
    headers: Headers
    reason: str = ""
    reset_code: int | None = None
    undelivered: tuple[str | bytes, ...] = ()
    speculative: bool = False


@dataclass(frozen=True, slots=True)
class WebSocketClosed(Event):
    """A WebSocket is over and its stream is gone: the last event for it.

    ``code``/``reason`` are the close code and reason the peer sent (1006 and "" when it sent
    none: reset, timeout, the connection ended).  ``reset_code`` is the RST_STREAM error code if
    the stream was reset (by either side), else None.
    """

    stream_id: int
    code: int
    reason: str
    reset_code: int | None = None


@dataclass(frozen=True, slots=True)
class RequestReceived(Event):
    """Server: a plain HTTP request (not a WebSocket)."""

    stream_id: int
    method: str
    path: str
    authority: str
    scheme: str
    headers: Headers
    end_stream: bool


@dataclass(frozen=True, slots=True)
class ResponseReceived(Event):
    """Client: the final response to a plain request."""

    stream_id: int
    status: int
    headers: Headers
    end_stream: bool


@dataclass(frozen=True, slots=True)
class InformationalResponseReceived(Event):
    """Client: a 1xx response before the final one."""

    stream_id: int
    status: int
    headers: Headers


@dataclass(frozen=True, slots=True)
class TrailersReceived(Event):
    """Trailing header fields; the stream's incoming side ends with them."""

    stream_id: int
    headers: Headers


@dataclass(frozen=True, slots=True)
class DataReceived(Event):
    """Body bytes of a plain request or response (or of a refused WebSocket).

    ``flow_controlled_length`` is what the bytes count against flow control (padding
    included); with ``release_on_consume`` give it back with ``acknowledge``.
    """

    stream_id: int
    data: bytes
    flow_controlled_length: int


@dataclass(frozen=True, slots=True)
class StreamEnded(Event):
    """The peer ended its side of a plain stream (END_STREAM)."""

    stream_id: int


@dataclass(frozen=True, slots=True)
class StreamReset(Event):
    """A plain stream was reset: by the peer (``remote``) or by us for the peer's error."""

    stream_id: int
    error_code: int
    remote: bool
    message: str = ""


@dataclass(frozen=True, slots=True)
class ConnectionTerminated(Event):
    """GOAWAY: sent by the peer (``remote``), or by us because the peer broke a rule.

    Streams up to ``last_stream_id`` may still complete (graceful drain) when ``error_code``
    is NO_ERROR.
    """

    error_code: int
    last_stream_id: int
    additional_data: bytes
    remote: bool
    message: str = ""
