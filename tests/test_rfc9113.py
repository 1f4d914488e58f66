"""RFC 9113 frame-level rules: one test per rule, each asserting the exact error code."""

from __future__ import annotations

import struct

import pytest

from ws2fast import frames
from ws2fast.errors import ErrorCode, FrameType
from ws2fast.exceptions import FrameError
from ws2fast.frames import PREFACE, FrameReader

PROTOCOL_ERROR = ErrorCode.PROTOCOL_ERROR
FRAME_SIZE_ERROR = ErrorCode.FRAME_SIZE_ERROR
FLOW_CONTROL_ERROR = ErrorCode.FLOW_CONTROL_ERROR


def raw(ftype: int, flags: int, stream_id: int, payload: bytes = b"", length: int | None = None) -> bytes:
    """A frame built by hand, free to break every rule."""
    n = len(payload) if length is None else length
    return struct.pack(">I", n)[1:] + bytes([ftype, flags]) + struct.pack(">I", stream_id) + payload


def expect_error(wire: bytes, code: ErrorCode, match: str | None = None, **kwargs) -> FrameError:
    reader = FrameReader(**kwargs)
    with pytest.raises(FrameError, match=match) as info:
        reader.feed(wire)
    assert info.value.error_code == code
    assert info.value.stream_id is None                 # frame errors are connection errors
    # The reader refuses further use: the stream is out of sync.
    with pytest.raises(FrameError, match="failed earlier"):
        reader.feed(frames.build_ping())
    # The same error is found when the bytes arrive one at a time.
    reader = FrameReader(**kwargs)
    with pytest.raises(FrameError) as info_split:
        for i in range(len(wire)):
            reader.feed(wire[i:i + 1])
    assert info_split.value.error_code == code
    # And when DATA frames are streamed in pieces rather than assembled.
    with pytest.raises(FrameError) as info_streamed:
        FrameReader(stream_data=True, **kwargs).feed(wire)
    assert info_streamed.value.error_code == code
    return info.value


def read_one(wire: bytes, **kwargs):
    [frame] = FrameReader(**kwargs).feed(wire)
    return frame


# -- §4.2 frame size -------------------------------------------------------------------------

@pytest.mark.parametrize("ftype", [0, 1, 4, 7, 0x20])
def test_frame_over_max_frame_size(ftype):
    expect_error(raw(ftype, 0, 1 if ftype in (0, 1) else 0, length=16385), FRAME_SIZE_ERROR,
                 "exceeds SETTINGS_MAX_FRAME_SIZE")


@pytest.mark.parametrize("size", [16383, 16384])
def test_frame_at_max_frame_size(size):
    frame = read_one(frames.build_data(1, bytes(size)))
    assert frame.length == size


@pytest.mark.parametrize("limit", [16384, 100000, 16777215])
def test_raised_max_frame_size(limit):
    reader = FrameReader(max_frame_size=limit)
    wire = frames.build_data(1, bytes(limit))
    got = reader.feed(wire[:limit // 2]) + reader.feed(wire[limit // 2:])
    assert got[0].length == limit
    if limit < 16777215:
        expect_error(raw(0, 0, 1, length=limit + 1), FRAME_SIZE_ERROR, max_frame_size=limit)


@pytest.mark.parametrize("value", [0, 16383, 16777216, 2**31, 2**63, 2**64 - 1, -1])
def test_max_frame_size_setting_range(value):
    with pytest.raises(ValueError):
        FrameReader(max_frame_size=value)
    reader = FrameReader()
    with pytest.raises(ValueError):
        reader.max_frame_size = value
    assert reader.max_frame_size == 16384


def test_largest_length_field():
    expect_error(b"\xff\xff\xff\x00\x00\x00\x00\x00\x01", FRAME_SIZE_ERROR)


# -- §6 stream identifiers -------------------------------------------------------------------

@pytest.mark.parametrize("ftype,payload", [
    (FrameType.DATA, b""), (FrameType.HEADERS, b""), (FrameType.PRIORITY, bytes(5)),
    (FrameType.RST_STREAM, bytes(4)), (FrameType.PUSH_PROMISE, bytes(4)),
])
def test_stream_frames_on_stream_zero(ftype, payload):
    expect_error(raw(ftype, 4, 0, payload), PROTOCOL_ERROR, "on stream 0")


def test_continuation_on_stream_zero():
    # A CONTINUATION on stream 0 is also outside any open header block.
    expect_error(raw(FrameType.CONTINUATION, 4, 0), PROTOCOL_ERROR)


@pytest.mark.parametrize("ftype,payload", [
    (FrameType.SETTINGS, b""), (FrameType.PING, bytes(8)), (FrameType.GOAWAY, bytes(8)),
])
def test_connection_frames_on_a_stream(ftype, payload):
    expect_error(raw(ftype, 0, 1, payload), PROTOCOL_ERROR, "belongs on stream 0")


def test_window_update_on_either():
    assert read_one(frames.build_window_update(0, 1)).stream_id == 0
    assert read_one(frames.build_window_update(7, 1)).stream_id == 7


def test_reserved_bits_are_ignored():
    frame = read_one(raw(FrameType.DATA, 0, 0x80000001, b"x"))
    assert frame.stream_id == 1
    frame = read_one(raw(FrameType.WINDOW_UPDATE, 0, 0, b"\x80\x00\x00\x05"))
    assert frame.window_increment == 5
    frame = read_one(raw(FrameType.GOAWAY, 0, 0, b"\x80\x00\x00\x03" + bytes(4)))
    assert frame.last_stream_id == 3
    frame = read_one(raw(FrameType.PUSH_PROMISE, 4, 1, b"\x80\x00\x00\x02"))
    assert frame.promised_stream_id == 2


# -- fixed sizes -----------------------------------------------------------------------------

@pytest.mark.parametrize("ftype,good,bad", [
    (FrameType.RST_STREAM, 4, [0, 3, 5]),
    (FrameType.PING, 8, [0, 7, 9]),
    (FrameType.WINDOW_UPDATE, 4, [0, 3, 5]),
])
def test_fixed_size_frames(ftype, good, bad):
    sid = 0 if ftype in (FrameType.PING, FrameType.WINDOW_UPDATE) else 1
    payload = b"\x00\x00\x00\x01" + bytes(good - 4) if ftype == FrameType.WINDOW_UPDATE else bytes(good)
    assert read_one(raw(ftype, 0, sid, payload)).length == good
    for size in bad:
        expect_error(raw(ftype, 0, sid, bytes(size)), FRAME_SIZE_ERROR, "octets, not")


@pytest.mark.parametrize("size", [0, 4, 6])
def test_priority_of_wrong_size_is_a_stream_error(size):
    # RFC 9113 §6.3: a stream error, so the reader goes on.
    reader = FrameReader()
    bad, ping = reader.feed(raw(FrameType.PRIORITY, 0, 3, bytes(size)) + frames.build_ping())
    assert bad.stream_error == FRAME_SIZE_ERROR and bad.stream_id == 3
    assert bad.depends_on is None and ping.type == FrameType.PING


def test_priority_of_right_size():
    frame = read_one(frames.build_priority(3, 1, 16))
    assert frame.stream_error is None


@pytest.mark.parametrize("size", [1, 5, 7, 11])
def test_settings_not_a_multiple_of_six(size):
    expect_error(raw(FrameType.SETTINGS, 0, 0, bytes(size)), FRAME_SIZE_ERROR, "multiple of 6")


def test_settings_ack_with_payload():
    expect_error(raw(FrameType.SETTINGS, 1, 0, bytes(6)), FRAME_SIZE_ERROR, "ACK")
    assert read_one(frames.build_settings(ack=True)).ack


@pytest.mark.parametrize("size", [0, 7])
def test_goaway_too_short(size):
    expect_error(raw(FrameType.GOAWAY, 0, 0, bytes(size)), FRAME_SIZE_ERROR, "shorter")


def test_goaway_minimal():
    assert read_one(raw(FrameType.GOAWAY, 0, 0, bytes(8))).debug_data == b""


@pytest.mark.parametrize("flags,size", [(0x08, 0), (0x20, 4), (0x28, 5)])
def test_headers_too_short_for_its_fields(flags, size):
    expect_error(raw(FrameType.HEADERS, flags | 4, 1, bytes(size)), FRAME_SIZE_ERROR, "shorter")


@pytest.mark.parametrize("flags,size", [(0, 3), (0x08, 4)])
def test_push_promise_too_short(flags, size):
    expect_error(raw(FrameType.PUSH_PROMISE, flags | 4, 1, bytes(size)), FRAME_SIZE_ERROR, "shorter")


def test_padded_data_without_pad_length():
    expect_error(raw(FrameType.DATA, 0x08, 1), FRAME_SIZE_ERROR, "shorter")


# -- padding (§6.1, §6.2, §6.6) --------------------------------------------------------------

def test_data_padding_as_long_as_the_payload():
    expect_error(raw(FrameType.DATA, 0x08, 1, b"\x03abc"[:3]), PROTOCOL_ERROR, "padding")
    expect_error(raw(FrameType.DATA, 0x08, 1, b"\x01"), PROTOCOL_ERROR, "padding")


def test_data_padding_fills_all_but_the_pad_length():
    frame = read_one(raw(FrameType.DATA, 0x08, 1, b"\x03\x00\x00\x00"))
    assert bytes(frame.data) == b"" and frame.pad_length == 3


def test_headers_padding_exceeds_the_fragment():
    expect_error(raw(FrameType.HEADERS, 0x0C, 1, b"\x03ab"), PROTOCOL_ERROR, "padding")
    expect_error(raw(FrameType.HEADERS, 0x2C, 1, b"\x01" + bytes(5)), PROTOCOL_ERROR, "padding")
    frame = read_one(raw(FrameType.HEADERS, 0x2C, 1, b"\x01" + b"\x00\x00\x00\x03\x0f" + b"\x00"))
    assert bytes(frame.data) == b"" and frame.weight == 16 and frame.depends_on == 3


def test_push_promise_padding_exceeds_the_fragment():
    expect_error(raw(FrameType.PUSH_PROMISE, 0x0C, 1, b"\x02\x00\x00\x00\x02a"), PROTOCOL_ERROR, "padding")


# -- §6.10 header blocks ---------------------------------------------------------------------

@pytest.mark.parametrize("intruder", [
    frames.build_data(1, b"x"), frames.build_ping(), frames.build_settings(),
    frames.build_priority(1, 3), frames.build_window_update(0, 1),
    raw(0x20, 0, 0, b"unknown type"), raw(0xFF, 0, 1),
    frames.build_headers(3, b"x"), frames.build_continuation(3, b"x"),
])
def test_any_frame_inside_a_header_block(intruder):
    error = expect_error(frames.build_headers(1, b"a", end_headers=False) + intruder, PROTOCOL_ERROR,
                         "inside the header block of stream 1")
    assert [f.type for f in error.frames] == [FrameType.HEADERS]


def test_push_promise_opens_a_header_block():
    expect_error(frames.build_push_promise(1, 2, b"a", end_headers=False) + frames.build_ping(),
                 PROTOCOL_ERROR, "inside the header block")


def test_continuation_without_a_header_block():
    expect_error(frames.build_continuation(1, b"x"), PROTOCOL_ERROR, "without an open header block")
    expect_error(frames.build_headers(1, b"a") + frames.build_continuation(1, b"x"), PROTOCOL_ERROR,
                 "without an open header block")


def test_header_block_with_continuations():
    reader = FrameReader()
    got = reader.feed(frames.build_headers(1, b"a", end_headers=False)
                      + frames.build_continuation(1, b"b", end_headers=False))
    assert reader.header_block_stream == 1
    got += reader.feed(frames.build_continuation(1, b"c") + frames.build_ping())
    assert reader.header_block_stream == 0
    assert [bytes(f.data) for f in got[:3]] == [b"a", b"b", b"c"]


# -- unknown frame types (§4.1, §5.5) --------------------------------------------------------

def test_unknown_frames_are_skipped():
    reader = FrameReader()
    wire = raw(0x20, 0xFF, 5, b"ext") + frames.build_ping() + raw(0xFE, 0, 0)
    big = raw(0x21, 0, 0, bytes(1000))
    got = reader.feed(wire + big[:500])
    got += reader.feed(big[500:] + frames.build_ping(b"abcdefgh"))
    assert [f.type for f in got] == [FrameType.PING, FrameType.PING]
    assert reader.unknown_frames == 3


# -- §6.9 WINDOW_UPDATE ----------------------------------------------------------------------

def test_window_update_zero_on_the_connection():
    expect_error(raw(FrameType.WINDOW_UPDATE, 0, 0, bytes(4)), PROTOCOL_ERROR, "WINDOW_UPDATE of 0")


def test_window_update_zero_on_a_stream_is_a_stream_error():
    frame = read_one(raw(FrameType.WINDOW_UPDATE, 0, 5, bytes(4)))
    assert frame.stream_error == PROTOCOL_ERROR and frame.window_increment == 0


# -- self-dependency (RFC 7540 §5.3.1, still a stream error) --------------------------------

def test_priority_on_itself():
    assert read_one(frames.build_priority(5, 5)).stream_error == PROTOCOL_ERROR


def test_headers_depending_on_itself():
    frame = read_one(frames.build_headers(5, b"x", priority=(5, 16, False)))
    assert frame.stream_error == PROTOCOL_ERROR and bytes(frame.data) == b"x"


# -- §6.5.2 setting values -------------------------------------------------------------------

@pytest.mark.parametrize("ident,value,code", [
    (0x2, 2, PROTOCOL_ERROR),                   # ENABLE_PUSH
    (0x2, 2**32 - 1, PROTOCOL_ERROR),
    (0x4, 2**31, FLOW_CONTROL_ERROR),           # INITIAL_WINDOW_SIZE
    (0x4, 2**32 - 1, FLOW_CONTROL_ERROR),
    (0x5, 16383, PROTOCOL_ERROR),               # MAX_FRAME_SIZE
    (0x5, 16777216, PROTOCOL_ERROR),
    (0x5, 0, PROTOCOL_ERROR),
    (0x8, 2, PROTOCOL_ERROR),                   # ENABLE_CONNECT_PROTOCOL (RFC 8441 §3)
    (0x9, 2, PROTOCOL_ERROR),                   # NO_RFC7540_PRIORITIES (RFC 9218 §2.1)
])
def test_setting_values_out_of_range(ident, value, code):
    expect_error(frames.build_settings({1: 100, ident: value}), code)


@pytest.mark.parametrize("ident,value", [
    (0x2, 0), (0x2, 1), (0x4, 2**31 - 1), (0x4, 0), (0x5, 16384), (0x5, 16777215), (0x8, 1),
    (0x3, 2**32 - 1), (0x6, 0), (0x1, 2**32 - 1), (0x0, 5), (0xABCD, 2**32 - 1),
])
def test_setting_values_in_range(ident, value):
    assert read_one(frames.build_settings({ident: value})).settings == [(ident, value)]


# -- §3.4 connection preface -----------------------------------------------------------------

def test_preface_then_frames():
    reader = FrameReader(expect_preface=True)
    assert reader.feed(PREFACE[:10]) == []
    [frame] = reader.feed(PREFACE[10:] + frames.build_settings())
    assert frame.type == FrameType.SETTINGS


@pytest.mark.parametrize("wire", [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    PREFACE[:-1] + b"X",
    frames.build_settings() + PREFACE,
])
def test_bad_preface(wire):
    expect_error(wire, PROTOCOL_ERROR, "preface", expect_preface=True)


def test_preface_is_24_octets():
    assert len(PREFACE) == 24 and PREFACE == b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


# ============================================================================================
# Connection-level rules (ws2fast.H2Connection), driven by a raw peer.  Each asserts the exact
# GOAWAY / RST_STREAM code, and for stream errors that the other streams keep working.
# ============================================================================================

from hyperframe import frame as hf  # noqa: E402

from tests.rawpeer import (  # noqa: E402
    CONNECT,
    RawPeer,
    client_pair,
    goaway,
    open_websocket,
    rst,
    server_pair,
    status,
)
from ws2fast import Config, H2Connection  # noqa: E402
from ws2fast._core import build_settings  # noqa: E402
from ws2fast.errors import SettingCode  # noqa: E402
from ws2fast.events import (  # noqa: E402
    ConnectionTerminated,
    DataReceived,
    PingAcknowledged,
    PingReceived,
    RequestReceived,
    SettingsAcknowledged,
    StreamEnded,
    StreamReset,
    TextMessage,
    TrailersReceived,
    WebSocketClosed,
    WebSocketRejected,
)
from ws2fast.exceptions import LocalProtocolError  # noqa: E402

GET = [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/"), (b":authority", b"a.test")]


def _works(peer: RawPeer, sid: int) -> None:
    events = peer.send(peer.ws(sid, 1, "still"))
    assert TextMessage("still", sid) in events


def _conn_error(peer: RawPeer, code: int, *frames) -> list:
    events = peer.send(*frames)
    assert goaway(peer.read()) == [code]
    (terminated,) = [e for e in events if isinstance(e, ConnectionTerminated)]
    assert terminated.error_code == code and not terminated.remote
    # after it, only the streams' terminal events
    assert all(isinstance(e, (WebSocketClosed, WebSocketRejected, StreamReset))
               for e in events[events.index(terminated) + 1:])
    assert peer.send(peer.ws(1, 1, "x")) == []          # the connection is over
    return events


def _stream_error(peer: RawPeer, sid: int, code: int, *frames) -> list:
    events = peer.send(*frames)
    frames_out = peer.read()
    assert rst(frames_out) == {sid: code}
    assert goaway(frames_out) == []
    return events


# §3.4 preface, §6.5 SETTINGS ------------------------------------------------------------------

def test_connection_invalid_client_preface_is_goaway_protocol_error():
    ours = H2Connection(client_side=False)
    ours.initiate()
    peer = RawPeer(ours)
    peer.read()
    events = peer.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert goaway(peer.read()) == [PROTOCOL_ERROR]
    assert isinstance(events[-1], ConnectionTerminated)


def test_connection_settings_are_acknowledged_and_ours_take_effect_on_ack():
    ours = H2Connection(client_side=False, config=Config(header_table_size=0))
    ours.initiate()
    peer = RawPeer(ours)
    peer.read()
    events = peer.send(PREFACE, peer.settings(MAX_FRAME_SIZE=20000))
    acks = [f for f in peer.read() if isinstance(f, hf.SettingsFrame) and "ACK" in f.flags]
    assert len(acks) == 1
    assert ours.remote_settings[SettingCode.MAX_FRAME_SIZE] == 20000
    assert ours.settings_ack_pending
    events = peer.send(peer.settings(ack=True))
    assert isinstance(events[0], SettingsAcknowledged)
    assert events[0].settings[SettingCode.HEADER_TABLE_SIZE] == 0
    assert not ours.settings_ack_pending


def test_connection_settings_ack_timeout_is_goaway_settings_timeout():
    now = [100.0]
    ours = H2Connection(client_side=True, config=Config(settings_ack_timeout=5, clock=lambda: now[0]))
    ours.initiate()
    peer = RawPeer(ours)
    peer.read()
    assert ours.next_timeout() == 105.0
    now[0] = 104.9
    assert ours.handle_timeouts() == []
    now[0] = 105.0
    events = ours.handle_timeouts()
    assert goaway(peer.read()) == [ErrorCode.SETTINGS_TIMEOUT]
    assert events[0].error_code == ErrorCode.SETTINGS_TIMEOUT


def test_connection_client_sends_enable_push_0_and_refuses_push_promise():
    ours = H2Connection(client_side=True)
    ours.initiate()
    peer = RawPeer(ours)
    (settings,) = [f for f in peer.read() if isinstance(f, hf.SettingsFrame)]
    assert settings.settings[hf.SettingsFrame.ENABLE_PUSH] == 0
    peer.send(peer.settings(ENABLE_CONNECT_PROTOCOL=1))
    sid = ours.send_request("GET", "/", "a.test")
    peer.read()
    push = hf.PushPromiseFrame(sid, promised_stream_id=2, data=peer.encoder.encode(GET), flags=["END_HEADERS"])
    _conn_error(peer, PROTOCOL_ERROR, push)


def test_connection_server_must_not_set_enable_push_1():
    ours = H2Connection(client_side=True)
    ours.initiate()
    peer = RawPeer(ours)
    peer.read()
    _conn_error(peer, PROTOCOL_ERROR, peer.settings(ENABLE_PUSH=1))


def test_connection_initial_window_change_applies_to_open_streams_and_may_go_negative():
    peer = client_pair(ENABLE_CONNECT_PROTOCOL=1, INITIAL_WINDOW_SIZE=10000)
    ours = peer.ours
    sid = ours.open_websocket("/", "a.test")
    peer.read()
    peer.send(peer.headers(sid, [(b":status", b"200")]))
    ours.send_message(sid, b"x" * 8000)             # 8,008 octets of window used
    peer.read()
    peer.send(peer.settings(INITIAL_WINDOW_SIZE=1000))
    assert ours.local_window(sid) == 1000 - 8008    # negative (RFC 9113 §6.9.2)
    ours.send_message(sid, b"y" * 100)
    assert [f for f in peer.read() if isinstance(f, hf.DataFrame)] == []
    assert ours.outgoing_buffered(sid) == 106
    peer.send(hf.WindowUpdateFrame(sid, window_increment=7008 + 105))
    assert [len(f.data) for f in peer.read() if isinstance(f, hf.DataFrame)] == [105]
    peer.send(hf.WindowUpdateFrame(sid, window_increment=1))
    data = [f for f in peer.read() if isinstance(f, hf.DataFrame)]
    assert [len(f.data) for f in data] == [1]
    assert ours.outgoing_buffered(sid) == 0


def test_connection_initial_window_change_past_2_31_is_flow_control_error():
    peer = client_pair(ENABLE_CONNECT_PROTOCOL=1)
    sid = peer.ours.open_websocket("/", "a.test")
    peer.send(hf.WindowUpdateFrame(sid, window_increment=2**31 - 1 - 65535))
    _conn_error(peer, FLOW_CONTROL_ERROR, peer.settings(INITIAL_WINDOW_SIZE=65536))


def test_connection_peer_max_frame_size_bounds_our_data_frames():
    for size in (16384, 20000):
        peer = client_pair(ENABLE_CONNECT_PROTOCOL=1, MAX_FRAME_SIZE=size, INITIAL_WINDOW_SIZE=2**20)
        peer.send(hf.WindowUpdateFrame(0, window_increment=2**20))
        sid = peer.ours.open_websocket("/", "a.test")
        peer.send(peer.headers(sid, [(b":status", b"200")]))
        peer.read()
        peer.ours.send_message(sid, b"z" * 100_000)
        lengths = [len(f.data) for f in peer.read() if isinstance(f, hf.DataFrame)]
        assert max(lengths) == size and sum(lengths) == 100_000 + 14


# §5.1 stream states, §5.1.1 stream ids, §5.1.2 concurrency -------------------------------------

def test_connection_client_stream_with_even_id_is_protocol_error():
    peer = server_pair()
    _conn_error(peer, PROTOCOL_ERROR, peer.headers(2, GET, end_stream=True))


def test_connection_stream_ids_must_increase():
    peer = server_pair()
    peer.send(peer.headers(5, GET, end_stream=True))
    _conn_error(peer, PROTOCOL_ERROR, peer.headers(3, GET, end_stream=True))


@pytest.mark.parametrize("make", [
    lambda p: p.data(7, b"x"),
    lambda p: hf.RstStreamFrame(7, error_code=8),
    lambda p: hf.WindowUpdateFrame(7, window_increment=1),
], ids=["DATA", "RST_STREAM", "WINDOW_UPDATE"])
def test_connection_frames_on_idle_streams_are_protocol_errors(make):
    peer = server_pair()
    open_websocket(peer, 1)
    _conn_error(peer, PROTOCOL_ERROR, make(peer))


def test_connection_priority_on_idle_stream_is_fine_and_opens_nothing():
    peer = server_pair()
    open_websocket(peer, 1)
    assert peer.send(hf.PriorityFrame(9, depends_on=1, stream_weight=20)) == []
    assert rst(peer.read()) == {} and 9 not in peer.ours.streams
    open_websocket(peer, 3)                    # 3 < 9 is still a fine new stream
    _works(peer, 3)


def test_connection_max_concurrent_streams_refuses_the_extra_stream_only():
    peer = server_pair(Config(max_concurrent_streams=2))
    open_websocket(peer, 1)
    open_websocket(peer, 3)
    events = _stream_error(peer, 5, ErrorCode.REFUSED_STREAM, peer.headers(5, CONNECT))
    assert events == [StreamReset(5, ErrorCode.REFUSED_STREAM, False, events[0].message)]
    _works(peer, 1)
    _works(peer, 3)


def test_connection_data_after_end_stream_is_stream_closed():
    peer = server_pair()
    open_websocket(peer, 1)
    peer.send(peer.headers(3, GET, end_stream=True))
    _stream_error(peer, 3, ErrorCode.STREAM_CLOSED, peer.data(3, b"late"))
    _works(peer, 1)


def test_connection_client_must_not_open_more_than_the_server_allows():
    peer = client_pair(ENABLE_CONNECT_PROTOCOL=1, MAX_CONCURRENT_STREAMS=1)
    peer.ours.open_websocket("/", "a.test")
    with pytest.raises(LocalProtocolError, match="concurrent"):
        peer.ours.open_websocket("/", "a.test")


# §6.9 flow control ----------------------------------------------------------------------------

def test_connection_data_beyond_the_connection_window_is_flow_control_error():
    config = Config(connection_window_size=65535, initial_window_size=2**20, release_on_consume=True)
    peer = server_pair(config)
    open_websocket(peer, 1)
    frames = [peer.ws(1, 2, b"x" * 1000) for _ in range(66)]
    # 66 x 1,008 octets against a window of 65,535: the messages are held, never acknowledged
    _conn_error(peer, FLOW_CONTROL_ERROR, *frames)


def test_connection_data_beyond_a_stream_window_resets_that_stream_only():
    peer = server_pair(Config(initial_window_size=1000))
    open_websocket(peer, 1)
    open_websocket(peer, 3)
    events = _stream_error(peer, 1, FLOW_CONTROL_ERROR, peer.data(1, b"x" * 1001))
    assert [type(e) for e in events] == [WebSocketClosed]
    _works(peer, 3)


def test_connection_window_update_overflow():
    peer = server_pair()
    open_websocket(peer, 1)
    open_websocket(peer, 3)
    _stream_error(peer, 1, FLOW_CONTROL_ERROR, hf.WindowUpdateFrame(1, window_increment=2**31 - 1))
    _works(peer, 3)
    _conn_error(peer, FLOW_CONTROL_ERROR, hf.WindowUpdateFrame(0, window_increment=2**31 - 1))


def test_connection_window_update_of_zero_on_a_stream_is_a_stream_error():
    peer = server_pair()
    open_websocket(peer, 1)
    open_websocket(peer, 3)
    _stream_error(peer, 1, PROTOCOL_ERROR, raw(FrameType.WINDOW_UPDATE, 0, 1, b"\0\0\0\0"))
    _works(peer, 3)


def test_connection_window_updates_are_batched_one_per_half_window():
    peer = server_pair(Config(initial_window_size=65536, connection_window_size=2**20))
    open_websocket(peer, 1)
    message = peer.ws(1, 2, b"m" * 1000)           # 1,008 octets per DATA frame
    assert len(message.data) == 1008
    for _ in range(200):
        peer.send(message)
    updates = [f for f in peer.read() if isinstance(f, hf.WindowUpdateFrame)]
    stream = [f.window_increment for f in updates if f.stream_id == 1]
    conn = [f.window_increment for f in updates if f.stream_id == 0]
    assert len(stream) == 200 * 1008 // 32768 and all(i >= 32768 for i in stream)
    assert conn == []                               # 201,600 < half of 1 MiB


def test_connection_release_on_consume_waits_for_acknowledge():
    peer = server_pair(Config(initial_window_size=4096, release_on_consume=True))
    open_websocket(peer, 1)
    events = []
    for _ in range(3):
        events += peer.send(peer.ws(1, 2, b"k" * 1000))
    assert [f for f in peer.read() if isinstance(f, hf.WindowUpdateFrame) and f.stream_id == 1] == []
    for event in events:
        peer.ours.acknowledge(1, event.nbytes)
    updates = [f for f in peer.read() if isinstance(f, hf.WindowUpdateFrame) and f.stream_id == 1]
    # sooner than at half the window: 1,072 octets of window were left when the second
    # acknowledgement made 2,024 octets to give back; the third's 1,000 wait (3,096 are open)
    assert [u.window_increment for u in updates] == [2024]
    assert peer.ours.streams[1].recv_release == 1000
    peer.ours.acknowledge(1, 5000)                  # more than is held: nothing more goes back
    peer.send(peer.ws(1, 2, b"k" * 2000))
    assert [f for f in peer.read() if isinstance(f, hf.WindowUpdateFrame) and f.stream_id == 1] == []


def test_connection_release_on_consume_lets_a_message_larger_than_the_window_through():
    peer = server_pair(Config(initial_window_size=65535, release_on_consume=True, max_message_size=None))
    open_websocket(peer, 1)
    message = peer.ws(1, 2, b"L" * 300_000).data
    events = []
    for i in range(0, len(message), 16384):
        events += peer.send(peer.data(1, message[i:i + 16384]))
    assert [e.nbytes for e in events] == [300_000]      # no deadlock: it was given back as parsed
    updates = [f for f in peer.read() if isinstance(f, hf.WindowUpdateFrame) and f.stream_id == 1]
    given = sum(f.window_increment for f in updates)
    peer.ours.acknowledge(1, 300_000)
    more = [f for f in peer.read() if isinstance(f, hf.WindowUpdateFrame) and f.stream_id == 1]
    # in all, exactly what was received goes back (never more)
    assert given + sum(f.window_increment for f in more) + peer.ours.streams[1].recv_release == len(message)


# §8.2-§8.3 header validation ----------------------------------------------------------------

@pytest.mark.parametrize("fields", [
    GET + [(b"X-Upper", b"1")],
    GET + [(b"connection", b"close")],
    GET + [(b"keep-alive", b"1")],
    GET + [(b"proxy-connection", b"1")],
    GET + [(b"transfer-encoding", b"chunked")],
    GET + [(b"upgrade", b"websocket")],
    GET + [(b"te", b"gzip")],
    [(b"x", b"1")] + GET,
    GET + [(b":unknown", b"1")],
    GET + [(b":path", b"/again")],
    GET + [(b":status", b"200")],
    [f for f in GET if f[0] != b":method"],
    [f for f in GET if f[0] != b":scheme"],
    [f for f in GET if f[0] != b":path"],
    GET + [(b"x", b"a\r\nb")],
    GET + [(b"x", b"a\0b")],
    GET + [(b"x", b" padded")],
], ids=["uppercase", "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade",
        "te-gzip", "pseudo-after-regular", "unknown-pseudo", "duplicate-pseudo", "response-pseudo",
        "no-method", "no-scheme", "no-path", "crlf", "nul", "whitespace"])
def test_connection_malformed_request_is_stream_protocol_error(fields):
    peer = server_pair()
    open_websocket(peer, 1)
    events = _stream_error(peer, 3, PROTOCOL_ERROR, peer.headers(3, fields, end_stream=True))
    assert [type(e) for e in events] == [StreamReset]
    _works(peer, 1)


def test_connection_te_trailers_is_allowed():
    peer = server_pair()
    (event,) = peer.send(peer.headers(1, GET + [(b"te", b"trailers")]))
    assert isinstance(event, RequestReceived)


@pytest.mark.parametrize("fields", [[(b"x", b"1")], [(b":status", b"200"), (b":path", b"/")],
                                    [(b":status", b"20")]], ids=["no-status", "request-pseudo", "bad-status"])
def test_connection_malformed_response_is_stream_protocol_error(fields):
    peer = client_pair(ENABLE_CONNECT_PROTOCOL=1)
    sid = peer.ours.send_request("GET", "/", "a.test")
    peer.read()
    events = _stream_error(peer, sid, PROTOCOL_ERROR, peer.headers(sid, fields, end_stream=True))
    assert [type(e) for e in events] == [StreamReset]


def test_connection_content_length_must_match_the_body():
    peer = server_pair()
    post = [(b":method", b"POST")] + GET[1:] + [(b"content-length", b"3")]
    peer.send(peer.headers(1, post))
    _stream_error(peer, 1, PROTOCOL_ERROR, peer.data(1, b"four", end_stream=True))
    peer.send(peer.headers(3, post))
    _stream_error(peer, 3, PROTOCOL_ERROR, peer.data(3, b"tw", end_stream=True))


# §6.10 header blocks ----------------------------------------------------------------------------

def test_connection_continuation_sequence_is_one_header_block():
    peer = server_pair()
    block = peer.encoder.encode(GET + [(b"x-long", b"v" * 3000)])
    parts = [block[:10], block[10:1000], block[1000:]]
    events = peer.send(hf.HeadersFrame(1, parts[0], flags=["END_STREAM"]),
                       hf.ContinuationFrame(1, parts[1]),
                       hf.ContinuationFrame(1, parts[2], flags=["END_HEADERS"]))
    assert isinstance(events[0], RequestReceived) and events[0].headers == ((b"x-long", b"v" * 3000),)
    assert events[1] == StreamEnded(1)


@pytest.mark.parametrize("intruder", [
    lambda p: hf.PingFrame(0, opaque_data=b"12345678"),
    lambda p: p.data(1, b"x"),
    lambda p: hf.ContinuationFrame(3, b"", flags=["END_HEADERS"]),
    lambda p: raw(0xEE, 0, 0, b"unknown"),
], ids=["PING", "DATA", "CONTINUATION-other-stream", "unknown-type"])
def test_connection_any_other_frame_inside_a_header_block_is_protocol_error(intruder):
    peer = server_pair()
    block = peer.encoder.encode(GET)
    _conn_error(peer, PROTOCOL_ERROR, hf.HeadersFrame(1, block[:5]), intruder(peer))


def test_connection_header_block_larger_than_the_limit_is_enhance_your_calm():
    peer = server_pair(Config(max_header_block_size=4096))
    frames = [hf.HeadersFrame(1, b"\0" * 1000)] + [hf.ContinuationFrame(1, b"\0" * 1000) for _ in range(4)]
    _conn_error(peer, ErrorCode.ENHANCE_YOUR_CALM, *frames)


def test_connection_hpack_error_is_compression_error():
    peer = server_pair()
    bad = hf.HeadersFrame(1, b"\xff\xff\xff\xff\xff\xff", flags=["END_HEADERS"])
    _conn_error(peer, ErrorCode.COMPRESSION_ERROR, bad)


def test_connection_header_list_too_large_is_answered_431():
    peer = server_pair(Config(max_header_list_size=1000))
    open_websocket(peer, 1)
    peer.send(peer.headers(3, GET + [(b"x-big", b"b" * 2000)], end_stream=True))
    frames = peer.read()
    assert status(frames, 3) == [b"431"]
    _works(peer, 1)
    (event,) = peer.send(peer.headers(5, GET, end_stream=True))[:1]   # the HPACK state held
    assert isinstance(event, RequestReceived) and event.path == "/"


def test_connection_trailers_end_the_stream_and_must_carry_end_stream():
    peer = server_pair()
    post = [(b":method", b"POST")] + GET[1:]
    events = peer.send(peer.headers(1, post), peer.data(1, b"body"),
                       peer.headers(1, [(b"x-checksum", b"abc")], end_stream=True))
    assert [type(e) for e in events] == [RequestReceived, DataReceived, TrailersReceived, StreamEnded]
    peer.send(peer.headers(3, post), peer.data(3, b"body"))
    _stream_error(peer, 3, PROTOCOL_ERROR, peer.headers(3, [(b"x", b"1")]))


# §6.3 PRIORITY, §6.7 PING, §6.8 GOAWAY, §5.5 unknown frames ------------------------------------

def test_connection_priority_is_ignored_but_self_dependency_is_a_stream_error():
    peer = server_pair()
    open_websocket(peer, 1)
    open_websocket(peer, 3)
    assert peer.send(hf.PriorityFrame(1, depends_on=3, stream_weight=200)) == []
    _stream_error(peer, 1, PROTOCOL_ERROR, hf.PriorityFrame(1, depends_on=1))
    _works(peer, 3)


def test_connection_ping_is_answered_with_the_same_payload():
    peer = server_pair()
    events = peer.send(hf.PingFrame(0, opaque_data=b"abcdefgh"))
    assert events == [PingReceived(b"abcdefgh")]
    (ack,) = [f for f in peer.read() if isinstance(f, hf.PingFrame)]
    assert "ACK" in ack.flags and ack.opaque_data == b"abcdefgh"
    peer.ours.send_http2_ping(b"12345678")
    (ping,) = [f for f in peer.read() if isinstance(f, hf.PingFrame)]
    assert ping.opaque_data == b"12345678" and "ACK" not in ping.flags
    assert peer.send(hf.PingFrame(0, opaque_data=b"12345678", flags=["ACK"])) == [PingAcknowledged(b"12345678")]


def test_connection_unknown_frame_types_are_ignored():
    peer = server_pair()
    open_websocket(peer, 1)
    assert peer.send(raw(0xEE, 0xFF, 1, b"whatever"), raw(0x20, 0, 0, b"")) == []
    assert goaway(peer.read()) == []
    _works(peer, 1)


def test_connection_goaway_from_us_drains_gracefully():
    peer = server_pair()
    open_websocket(peer, 1)
    peer.ours.close()
    (frame,) = [f for f in peer.read() if isinstance(f, hf.GoAwayFrame)]
    assert (frame.last_stream_id, frame.error_code) == (1, ErrorCode.NO_ERROR)
    _works(peer, 1)                                 # open streams finish
    assert peer.send(peer.headers(3, CONNECT)) == []
    assert rst(peer.read()) == {3: ErrorCode.REFUSED_STREAM}


def test_connection_goaway_from_the_peer_reports_unprocessed_streams():
    peer = client_pair(ENABLE_CONNECT_PROTOCOL=1)
    a = peer.ours.open_websocket("/", "a.test")
    b = peer.ours.send_request("GET", "/", "a.test")
    peer.send(peer.headers(a, [(b":status", b"200")]))
    events = peer.send(hf.GoAwayFrame(0, last_stream_id=a, error_code=0, additional_data=b"bye"))
    assert events[0] == ConnectionTerminated(0, a, b"bye", True)
    assert events[1] == StreamReset(b, ErrorCode.REFUSED_STREAM, True, events[1].message)
    peer.ours.send_message(a, "still fine")
    assert any(isinstance(f, hf.DataFrame) for f in peer.read())
    with pytest.raises(LocalProtocolError, match="going away"):
        peer.ours.open_websocket("/", "a.test")


def test_connection_errors_never_raise_and_keep_the_events_before_them():
    peer = server_pair()
    open_websocket(peer, 1)
    events = peer.send(peer.ws(1, 1, "first"), peer.ws(1, 1, "second"), raw(FrameType.PING, 0, 1, b"x" * 8))
    assert events[:2] == [TextMessage("first", 1), TextMessage("second", 1)]
    assert isinstance(events[2], ConnectionTerminated) and events[2].error_code == PROTOCOL_ERROR
    assert events[3] == WebSocketClosed(1, 1006, "", PROTOCOL_ERROR)


def test_connection_plain_requests_beside_websockets():
    peer = server_pair()
    open_websocket(peer, 1)
    events = peer.send(peer.headers(3, [(b":method", b"POST")] + GET[1:]), peer.data(3, b"abc", end_stream=True))
    assert events == [RequestReceived(3, "POST", "/", "a.test", "https", (), False),
                      DataReceived(3, b"abc", 3), StreamEnded(3)]
    peer.ours.send_response(3, 200, [(b"content-type", b"text/html")], b"<p>hi</p>")
    frames = peer.read()
    assert status(frames, 3) == [b"200"]
    assert [(f.data, "END_STREAM" in f.flags) for f in frames if isinstance(f, hf.DataFrame)] == [(b"<p>hi</p>", True)]
    assert 3 not in peer.ours.streams
    _works(peer, 1)


def test_connection_caller_misuse_raises_local_protocol_error():
    peer = server_pair()
    ours = peer.ours
    for call in (lambda: ours.send_message(1, "x"), lambda: ours.accept_websocket(1),
                 lambda: ours.open_websocket("/", "a"), lambda: ours.send_request("GET", "/", "a"),
                 lambda: ours.send_response(1, 200), lambda: ours.close_websocket(1)):
        with pytest.raises(LocalProtocolError):
            call()
    open_websocket(peer, 1)
    with pytest.raises(LocalProtocolError):
        ours.accept_websocket(1)
    with pytest.raises(LocalProtocolError):
        ours.send_http2_ping(b"short")
    ours.close_websocket(1)
    with pytest.raises(LocalProtocolError):
        ours.send_message(1, "after close")
    with pytest.raises(LocalProtocolError):
        H2Connection(client_side=True).receive_data(b"")
    assert build_settings  # the writers stay importable beside the connection


def test_connection_our_smaller_initial_window_applies_only_once_acknowledged():
    # Before the ACK the peer may assume 65,535 (RFC 9113 §6.9.2); after it, 1,000.
    ours = H2Connection(client_side=False, config=Config(initial_window_size=1000))
    ours.initiate()
    peer = RawPeer(ours)
    peer.read()
    post = [(b":method", b"POST")] + GET[1:]
    events = peer.send(PREFACE, peer.settings(), peer.headers(1, post), peer.data(1, b"x" * 5000))
    assert [type(e) for e in events][-1] is DataReceived and rst(peer.read()) == {}
    peer.send(peer.settings(ack=True), peer.headers(3, post))
    _stream_error(peer, 3, FLOW_CONTROL_ERROR, peer.data(3, b"x" * 1001))


# §6.9.2: a raised window resumes what waits behind it -------------------------------------------

def _data(frames: list) -> list[bytes]:
    return [bytes(f.data) for f in frames if isinstance(f, hf.DataFrame)]


def test_connection_raising_initial_window_from_zero_resumes_a_queued_body():
    # The h2 client's sequence from the bug report: INITIAL_WINDOW_SIZE 0, GET, then 1.
    peer = server_pair(INITIAL_WINDOW_SIZE=0)
    peer.send(peer.headers(1, GET, end_stream=True))
    peer.ours.send_response(1, 200, [(b"content-type", b"text/plain")], b"hello")
    frames = peer.read()
    assert status(frames, 1) == [b"200"] and _data(frames) == []
    peer.send(peer.settings(INITIAL_WINDOW_SIZE=1))
    frames = peer.read()
    assert _data(frames) == [b"h"]
    peer.send(peer.settings(INITIAL_WINDOW_SIZE=5))               # +4 for every stream
    frames = peer.read()
    assert _data(frames) == [b"ello"]
    assert ["END_STREAM" in f.flags for f in frames if isinstance(f, hf.DataFrame)] == [True]
    assert peer.ours.streams == {}


def test_connection_raising_initial_window_from_zero_resumes_queued_websocket_messages():
    peer = server_pair(INITIAL_WINDOW_SIZE=0)
    open_websocket(peer, 1)
    peer.ours.send_message(1, "ab")
    peer.ours.send_message(1, "cd")
    assert _data(peer.read()) == [] and peer.ours.outgoing_buffered(1) == 8
    peer.send(peer.settings(INITIAL_WINDOW_SIZE=1))
    assert _data(peer.read()) == [b"\x81"]
    peer.send(hf.WindowUpdateFrame(1, window_increment=7))
    assert _data(peer.read()) == [b"\x02ab\x81\x02cd"]
    assert peer.ours.outgoing_buffered(1) == 0


def test_connection_window_update_on_the_connection_resumes_queued_data():
    peer = server_pair(INITIAL_WINDOW_SIZE=2**20)
    peer.send(peer.headers(1, GET, end_stream=True))
    peer.ours.send_response(1, 200, [], b"x" * 70000)
    assert sum(map(len, _data(peer.read()))) == 65535            # the connection window
    peer.send(hf.WindowUpdateFrame(0, window_increment=10))
    assert _data(peer.read()) == [b"x" * 10]
    peer.send(hf.WindowUpdateFrame(0, window_increment=10000))
    frames = peer.read()
    assert _data(frames) == [b"x" * (70000 - 65545)] and "END_STREAM" in frames[-1].flags


# §5.1 "closed": frames after each kind of closure -------------------------------------------------

def _ended_stream(peer: RawPeer) -> None:
    # Stream 1 closed normally: the request and the response both carried END_STREAM.
    peer.send(peer.headers(1, GET, end_stream=True))
    peer.ours.send_response(1, 200, [], b"ok")
    peer.read()
    assert 1 not in peer.ours.streams


def test_connection_headers_on_a_stream_both_sides_ended_is_connection_error_stream_closed():
    peer = server_pair()
    _ended_stream(peer)
    open_websocket(peer, 3)
    events = _conn_error(peer, ErrorCode.STREAM_CLOSED, peer.headers(1, GET, end_stream=True))
    assert [e.stream_id for e in events if isinstance(e, WebSocketClosed)] == [3]


def test_connection_headers_on_a_closed_stream_keep_hpack_in_sync():
    # The block that reopens stream 1 still enters the peer's dynamic table; our decoder must
    # have taken it too, or a later block would decode wrongly.  Here the HEADERS are ignored
    # (stream 1 was reset by us), and the next request uses the table entry it added.
    peer = server_pair()
    peer.send(peer.headers(1, GET))
    peer.ours.reset_stream(1, ErrorCode.CANCEL)
    peer.read()
    custom = GET + [(b"x-fresh", b"only-in-this-block")]
    assert peer.send(peer.headers(1, custom, end_stream=True)) == []
    assert rst(peer.read()) == {}
    events = peer.send(peer.headers(3, custom, end_stream=True))
    (request,) = [e for e in events if isinstance(e, RequestReceived)]
    assert (b"x-fresh", b"only-in-this-block") in request.headers


def test_connection_data_on_a_stream_both_sides_ended_is_stream_error_stream_closed():
    # RFC 9113 §6.1: DATA on a stream that is not open is a stream error.
    peer = server_pair()
    _ended_stream(peer)
    open_websocket(peer, 3)
    _stream_error(peer, 1, ErrorCode.STREAM_CLOSED, peer.data(1, b"late"))
    _works(peer, 3)


@pytest.mark.parametrize("late", [
    lambda p: hf.WindowUpdateFrame(1, window_increment=100),
    lambda p: hf.RstStreamFrame(1, error_code=ErrorCode.CANCEL),
    lambda p: hf.PriorityFrame(1, depends_on=0, stream_weight=10),
], ids=["WINDOW_UPDATE", "RST_STREAM", "PRIORITY"])
def test_connection_frames_in_flight_after_our_end_stream_are_ignored(late):
    peer = server_pair()
    _ended_stream(peer)
    assert peer.send(late(peer)) == []
    frames = peer.read()
    assert rst(frames) == {} and goaway(frames) == []


@pytest.mark.parametrize("late", [
    lambda p: p.data(1, b"late"),
    lambda p: p.headers(1, GET, end_stream=True),
    lambda p: hf.WindowUpdateFrame(1, window_increment=100),
    lambda p: hf.RstStreamFrame(1, error_code=ErrorCode.CANCEL),
], ids=["DATA", "HEADERS", "WINDOW_UPDATE", "RST_STREAM"])
def test_connection_frames_after_our_rst_stream_are_ignored(late):
    peer = server_pair()
    open_websocket(peer, 1)
    open_websocket(peer, 3)
    peer.ours.abort_websocket(1)
    peer.read()
    window = peer.ours.local_window(0)
    assert peer.send(late(peer)) == []
    frames = peer.read()
    assert rst(frames) == {} and goaway(frames) == []
    _works(peer, 3)
    assert peer.ours.local_window(0) == window                 # nothing of ours moved


@pytest.mark.parametrize("late", [
    lambda p: p.data(1, b"late"),
    lambda p: p.headers(1, [(b"x-late", b"1")], end_stream=True),
    lambda p: hf.WindowUpdateFrame(1, window_increment=100),
], ids=["DATA", "HEADERS", "WINDOW_UPDATE"])
def test_connection_frames_after_the_peers_rst_stream_are_stream_errors(late):
    peer = server_pair()
    open_websocket(peer, 1)
    open_websocket(peer, 3)
    peer.send(hf.RstStreamFrame(1, error_code=ErrorCode.CANCEL))
    assert rst(peer.read()) == {}
    _stream_error(peer, 1, ErrorCode.STREAM_CLOSED, late(peer))
    _works(peer, 3)
    # ... and a second RST_STREAM from the peer is not answered (RFC 9113 §5.4.2: no loops)
    assert peer.send(hf.RstStreamFrame(1, error_code=ErrorCode.CANCEL)) == []
    assert rst(peer.read()) == {}


def test_connection_client_side_headers_after_the_response_ended_is_connection_error():
    peer = client_pair()
    sid = peer.ours.send_request("GET", "/", "a.test")
    peer.send(peer.headers(sid, [(b":status", b"204")], end_stream=True))
    assert sid not in peer.ours.streams
    _conn_error(peer, ErrorCode.STREAM_CLOSED, peer.headers(sid, [(b":status", b"200")], end_stream=True))


# HEAD (RFC 9110 §9.3.2): the headers of GET, no content -------------------------------------------

def test_connection_response_to_head_carries_content_length_and_no_data():
    peer = server_pair()
    head = [(b":method", b"HEAD")] + GET[1:]
    peer.send(peer.headers(1, head, end_stream=True))
    peer.ours.send_response(1, 200, [(b"content-type", b"text/html")], b"<p>page</p>")
    frames = peer.read()
    (headers,) = [f for f in frames if isinstance(f, hf.HeadersFrame)]
    assert (b"content-length", b"11") in headers.fields and "END_STREAM" in headers.flags
    assert _data(frames) == [] and rst(frames) == {} and peer.ours.streams == {}


def test_connection_client_accepts_a_head_response_without_its_content():
    # ... whether the server ends the stream with the HEADERS or with an empty DATA frame.
    peer = client_pair()
    for ending in ("HEADERS", "DATA"):
        sid = peer.ours.send_request("HEAD", "/", "a.test")
        head = peer.headers(sid, [(b":status", b"200"), (b"content-length", b"11")],
                            end_stream=ending == "HEADERS")
        events = peer.send(head) if ending == "HEADERS" else peer.send(head, peer.data(sid, b"", end_stream=True))
        assert [type(e).__name__ for e in events] == ["ResponseReceived", "StreamEnded"]
        assert rst(peer.read()) == {}
    # A body on a HEAD response is malformed (RFC 9113 §8.1.1).
    sid = peer.ours.send_request("HEAD", "/", "a.test")
    peer.send(peer.headers(sid, [(b":status", b"200"), (b"content-length", b"2")]))
    _stream_error(peer, sid, PROTOCOL_ERROR, peer.data(sid, b"no", end_stream=True))


def test_connection_a_refused_response_writes_nothing_and_the_request_still_waits():
    peer = server_pair()
    peer.send(peer.headers(1, GET, end_stream=True))
    for status_, headers, body in [(1000, [], b""), (200, [(b"bad name", b"x")], b""),
                                   (200, [(b"x", b"a\nb")], b""), (200, [], "text")]:
        with pytest.raises((LocalProtocolError, ValueError, TypeError)):
            peer.ours.send_response(1, status_, headers, body)
        assert peer.read() == [] and peer.ours.response_pending(1)
    peer.ours.send_response(1, 200, [], b"fine")
    assert _data(peer.read()) == [b"fine"] and not peer.ours.response_pending(1)


def test_connection_settings_events_are_keyed_alike():
    # SettingsReceived and SettingsAcknowledged: SettingCode for known settings (an unknown one,
    # which RFC 9113 §6.5.2 says to ignore, keeps its number).
    ours = H2Connection(client_side=False)
    ours.initiate()
    peer = RawPeer(ours)
    peer.read()
    received = [e for e in peer.send(PREFACE, build_settings({SettingCode.MAX_CONCURRENT_STREAMS: 7, 0x77: 1}))
                if type(e).__name__ == "SettingsReceived"][0].settings
    (acknowledged,) = [e.settings for e in peer.send(peer.settings(ack=True)) if isinstance(e, SettingsAcknowledged)]
    assert received == {SettingCode.MAX_CONCURRENT_STREAMS: 7, 0x77: 1}
    assert [type(k) for k in received] == [SettingCode, int]
    assert acknowledged and all(type(k) is SettingCode for k in acknowledged)
