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
