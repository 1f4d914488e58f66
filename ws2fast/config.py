"""Config: every limit and policy of a connection, with safe defaults.

One frozen object, shared by :class:`~ws2fast.H2Connection` and
:class:`~ws2fast.H1Connection` (and later the asyncio layer).  Change a field with
:func:`dataclasses.replace` or by passing keywords: ``Config(max_message_size=16 << 20)``.
Every field is checked when the object is made, so a bad value fails where it was written.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields

__all__ = ["Config", "RateLimit"]

_MAX_WINDOW = 2**31 - 1


def _check_range(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be within {low}..{high}, not {value}")


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A token bucket: at most ``burst`` events at once, refilled at ``per_second``.

    A peer that goes past it is sent GOAWAY(ENHANCE_YOUR_CALM) and the connection ends
    (RFC 9113 §10.5: an endpoint may treat floods of frames that cost it work as a connection
    error).
    """

    burst: int
    per_second: float

    def __post_init__(self) -> None:
        _check_range("RateLimit.burst", self.burst, 1, 2**31)
        if isinstance(self.per_second, bool) or not isinstance(self.per_second, (int, float)) \
                or not 0 <= self.per_second < float("inf"):
            raise ValueError(f"RateLimit.per_second must be a finite number >= 0, not {self.per_second!r}")


@dataclass(frozen=True, slots=True)
class Config:
    """Limits and policies.  Sizes are in octets, times in seconds.

    HTTP/2 settings we advertise (RFC 9113 §6.5.2):

    - ``header_table_size`` (4096): SETTINGS_HEADER_TABLE_SIZE, the HPACK table the peer may
      make us keep.
    - ``max_concurrent_streams`` (100): SETTINGS_MAX_CONCURRENT_STREAMS, streams the peer may
      have open at once.
    - ``initial_window_size`` (262144): SETTINGS_INITIAL_WINDOW_SIZE, what the peer may send on
      a stream before we release.
    - ``connection_window_size`` (1048576): the connection-level receive window (raised from
      65,535 by a WINDOW_UPDATE at start).
    - ``max_frame_size`` (16384): SETTINGS_MAX_FRAME_SIZE, the largest frame payload we accept.
    - ``max_header_list_size`` (65536): SETTINGS_MAX_HEADER_LIST_SIZE, the decoded header list
      we accept; a larger request is answered 431, a larger response reset.
    - ``max_header_block_size`` (131072): header block octets (HEADERS + CONTINUATION
      fragments) we buffer for one block.
    - ``enable_connect_protocol`` (True): server, advertise SETTINGS_ENABLE_CONNECT_PROTOCOL = 1
      (RFC 8441 §3).

    WebSocket:

    - ``max_message_size`` (1048576): the largest WebSocket message accepted (closed with 1009
      beyond); None: no limit.
    - ``auto_pong`` (True): answer WebSocket pings with pongs automatically.
    - ``auto_close`` (True): echo a received Close frame automatically (completing the close
      handshake).
    - ``permessage_deflate`` (False): permessage-deflate (RFC 7692), a client offers it, a
      server accepts an offer.
    - ``compression_threshold`` (128): messages shorter than this are sent uncompressed even
      when compression is on.
    - ``compression_level`` (6), ``compression_memory_level`` (5), ``compression_window_bits``
      (13): our compressor's zlib level (0-9), memory level (1-9: the hash table is
      2^(level + 9) octets) and LZ77 window in bits (9-15, never more than was negotiated).
      These defaults cost ~54 KiB per compressing WebSocket where zlib's own (6, 8, 15) cost
      ~262 KiB, for output ~3% larger on JSON.
    - ``release_on_consume`` (False): release receive window only as the application
      acknowledges messages (``H2Connection.acknowledge``) instead of as they are parsed:
      backpressure.  The asyncio layer always turns it on.
    - ``require_connect_protocol_setting`` (True): client, send extended CONNECT only after the
      server's SETTINGS allowed it (RFC 8441 §3).  (False ignores the setting altogether.)

    Beyond RFC 8441 (opt-in; the WebSocket2 discussion's ideas, nothing changes for a peer
    that does not know them):

    - ``early_handshake`` (False): client, an extended CONNECT may leave before the server's
      SETTINGS arrived (speculatively: refused with LocalProtocolError once SETTINGS came
      without SETTINGS_ENABLE_CONNECT_PROTOCOL), and messages may be sent on a WebSocket before
      the server's answer ("early messages", uncompressed, within the flow-control windows; a
      copy of each is kept until the answer, so that a refusal reports what was not taken).
    - ``announce_websocket_capability`` (None): client, send SETTINGS_ENABLE_CONNECT_PROTOCOL
      = 1 in our own SETTINGS, so that a server knows we speak RFC 8441; None: when
      ``early_handshake`` is on.
    - ``unannounced_websocket_status`` (None): server, the status (4xx/5xx) that answers an
      extended CONNECT from a client that did not announce the capability; None accepts it as
      any other (RFC 8441 requires no announcement).

    Time:

    - ``settings_ack_timeout`` (10.0): how long our SETTINGS may wait for an ACK (RFC 9113
      §6.5.3: SETTINGS_TIMEOUT).
    - ``close_timeout`` (3.0): how long a WebSocket may wait for the peer's Close once we sent
      ours, and then for the peer's END_STREAM, before its stream is reset.  A server's stream
      whose close handshake is complete holds no concurrency slot meanwhile (past
      ``max_concurrent_streams`` of them, the oldest is reset at once, with NO_ERROR).
    - ``send_stall_timeout`` (60.0): a stream whose queued DATA could not move for this long,
      because the peer kept its flow-control window closed, is reset (RST_STREAM CANCEL; its
      WebSocket ends with 1006), so a peer that never reads cannot hold our memory; None: wait
      forever.
    - ``handshake_timeout`` (10.0): asyncio server, a new connection must deliver its first
      request whole (HTTP/1.1: the request head and body; HTTP/2: the client preface and
      SETTINGS) within this, or it is closed, so slowloris cannot hold a connection open by
      dripping bytes; None: wait forever.
    - ``idle_timeout`` (60.0): asyncio server, a connection with no WebSocket and no request in
      progress for this long is closed (HTTP/2: GOAWAY NO_ERROR first); over HTTP/1.1
      keep-alive the next request must arrive whole within it; None: keep idle connections.
    - ``lingering_time`` (2.0), ``lingering_bytes`` (16777216): asyncio server, closing a
      connection (after GOAWAY, an HTTP/1.1 error answer, the idle timeout) first shuts down
      our sending side and keeps reading, dropping what comes, until the peer closes too, for
      at most this long and this many octets (nginx's lingering close).  Closing a socket with
      unread input sends a TCP reset, which can destroy our last words before the peer reads
      them.  The octets bound what one connection can make us read (dropping costs one
      recv per 64 KiB); a peer already sending has megabytes in flight in the socket buffers,
      so a bound of a few MiB would cut most such peers off with the reset anyway.
      ``lingering_time=None`` closes at once.
    - ``ping_interval`` (20.0): asyncio layer, send a WebSocket ping (and an HTTP/2 PING per
      connection) this often; None turns keepalive off.
    - ``ping_timeout`` (20.0): asyncio layer, fail the WebSocket (1011) or drop the connection
      when the answer takes longer.
    - ``clock`` (``time.monotonic``): the clock for timeouts; injectable for tests.

    Memory and transport:

    - ``max_queued_messages`` (16384): asyncio layer, messages received but not yet taken by
      the application, summed over a connection's WebSockets; past it the connection stops
      reading until half were taken.  Over HTTP/2 the stream windows bound the queued octets;
      this bounds their number, which tiny messages would otherwise turn into far more memory
      than their octets.
    - ``native_transport`` (None): asyncio layer, cleartext TCP on a selector loop (asyncio's
      own, not uvloop, not TLS): use ws2fast's compiled socket transport instead of asyncio's,
      whose read and write paths run in Python.  None: on, unless the environment says
      ``WS2FAST_NATIVE_TRANSPORT=0``.
    - ``max_closed_streams_remembered`` (2048): closed stream ids remembered, to tell "closed"
      from "never opened" and how each closed (RFC 9113 §5.1).

    Floods (RFC 9113 §10.5): past a limit, GOAWAY(ENHANCE_YOUR_CALM).  Each ``*_limit`` is a
    :class:`RateLimit` (burst, per second), or None to turn it off:

    - ``peer_reset_limit`` (1000, 100/s): RST_STREAM frames from the peer (Rapid Reset,
      CVE-2023-44487).
    - ``local_reset_limit`` (500, 50/s): streams we had to reset because the peer broke a rule
      (MadeYouReset, CVE-2025-8671; reset flood, CVE-2019-9514).
    - ``ping_limit`` (100, 10/s): PING frames (not ACKs) from the peer (ping flood,
      CVE-2019-9512).
    - ``settings_limit`` (50, 5/s): SETTINGS frames (not ACKs) from the peer (settings flood,
      CVE-2019-9515).
    - ``priority_limit`` (1000, 100/s): PRIORITY frames from the peer (resource loop,
      CVE-2019-9513).
    - ``window_update_limit`` (20000, 10000/s): WINDOW_UPDATE frames from the peer (generous:
      a fast reader sends many).
    - ``empty_frame_limit`` (1000, 100/s): frames that carry nothing and end nothing: DATA
      without payload or END_STREAM, HEADERS or CONTINUATION with an empty fragment and no
      END_HEADERS (empty frames flood, CVE-2019-9518).
    - ``max_continuation_frames`` (64): CONTINUATION frames in one header block (CONTINUATION
      flood, VU#421644); the block's octets are bounded by ``max_header_block_size`` as well.
    """

    header_table_size: int = 4096
    max_concurrent_streams: int = 100
    initial_window_size: int = 262144
    connection_window_size: int = 1048576
    max_frame_size: int = 16384
    max_header_list_size: int = 65536
    max_header_block_size: int = 131072
    enable_connect_protocol: bool = True

    max_message_size: int | None = 1048576
    auto_pong: bool = True
    auto_close: bool = True
    permessage_deflate: bool = False
    compression_threshold: int = 128
    compression_level: int = 6
    compression_memory_level: int = 5
    compression_window_bits: int = 13
    release_on_consume: bool = False
    require_connect_protocol_setting: bool = True
    early_handshake: bool = False
    announce_websocket_capability: bool | None = None
    unannounced_websocket_status: int | None = None

    settings_ack_timeout: float = 10.0
    close_timeout: float = 3.0
    send_stall_timeout: float | None = 60.0
    handshake_timeout: float | None = 10.0
    idle_timeout: float | None = 60.0
    lingering_time: float | None = 2.0
    lingering_bytes: int = 16777216
    ping_interval: float | None = 20.0
    ping_timeout: float | None = 20.0

    max_queued_messages: int = 16384
    native_transport: bool | None = None
    max_closed_streams_remembered: int = 2048

    peer_reset_limit: RateLimit | None = RateLimit(1000, 100.0)
    local_reset_limit: RateLimit | None = RateLimit(500, 50.0)
    ping_limit: RateLimit | None = RateLimit(100, 10.0)
    settings_limit: RateLimit | None = RateLimit(50, 5.0)
    priority_limit: RateLimit | None = RateLimit(1000, 100.0)
    window_update_limit: RateLimit | None = RateLimit(20000, 10000.0)
    empty_frame_limit: RateLimit | None = RateLimit(1000, 100.0)
    max_continuation_frames: int = 64
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)

    def __post_init__(self) -> None:
        _check_range("header_table_size", self.header_table_size, 0, 2**32 - 1)
        _check_range("max_concurrent_streams", self.max_concurrent_streams, 0, 2**32 - 1)
        _check_range("initial_window_size", self.initial_window_size, 0, _MAX_WINDOW)
        _check_range("connection_window_size", self.connection_window_size, 65535, _MAX_WINDOW)
        _check_range("max_frame_size", self.max_frame_size, 16384, 2**24 - 1)
        _check_range("max_header_list_size", self.max_header_list_size, 0, 2**32 - 1)
        _check_range("max_header_block_size", self.max_header_block_size, 1, 2**32 - 1)
        if self.max_message_size is not None:
            _check_range("max_message_size", self.max_message_size, 0, 2**63 - 1)
        optional = ("ping_interval", "ping_timeout", "send_stall_timeout",      # None: off
                    "handshake_timeout", "idle_timeout", "lingering_time")
        for name in ("settings_ack_timeout", "close_timeout", *optional):
            value = getattr(self, name)
            if value is None and name in optional:
                continue
            if not (isinstance(value, (int, float)) and value > 0):
                raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")
        _check_range("max_closed_streams_remembered", self.max_closed_streams_remembered, 0, 2**31)
        _check_range("lingering_bytes", self.lingering_bytes, 0, 2**62)
        _check_range("compression_threshold", self.compression_threshold, 0, 2**31)
        _check_range("compression_level", self.compression_level, 0, 9)
        _check_range("compression_memory_level", self.compression_memory_level, 1, 9)
        _check_range("compression_window_bits", self.compression_window_bits, 9, 15)
        _check_range("max_continuation_frames", self.max_continuation_frames, 0, 2**31)
        _check_range("max_queued_messages", self.max_queued_messages, 1, 2**31)
        if self.unannounced_websocket_status is not None:
            _check_range("unannounced_websocket_status", self.unannounced_websocket_status, 400, 599)
        for name in ("early_handshake", "enable_connect_protocol", "require_connect_protocol_setting"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool, not {type(getattr(self, name)).__name__}")
        if self.announce_websocket_capability is not None and not isinstance(self.announce_websocket_capability, bool):
            raise TypeError("announce_websocket_capability must be a bool or None, not "
                            f"{type(self.announce_websocket_capability).__name__}")
        if self.native_transport is not None and not isinstance(self.native_transport, bool):
            raise TypeError(f"native_transport must be a bool or None, not {type(self.native_transport).__name__}")
        for f in fields(self):
            if f.name.endswith("_limit"):
                value = getattr(self, f.name)
                if value is not None and not isinstance(value, RateLimit):
                    raise TypeError(f"{f.name} must be a RateLimit or None, not {type(value).__name__}")

    @property
    def announces_websocket_capability(self) -> bool:
        """Whether a client sends SETTINGS_ENABLE_CONNECT_PROTOCOL = 1 with this config."""
        announce = self.announce_websocket_capability
        return self.early_handshake if announce is None else announce

    def __repr__(self) -> str:
        changed = [
            f"{f.name}={getattr(self, f.name)!r}"
            for f in fields(self)
            if f.compare and getattr(self, f.name) != f.default
        ]
        return "Config(" + ", ".join(changed) + ")"
