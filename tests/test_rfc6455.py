"""RFC 6455 framing rules (§5-§8): one test per rule, each asserting the exact close code."""

from __future__ import annotations

import struct

import pytest

from ws2fast.errors import CloseCode
from ws2fast.exceptions import WebSocketProtocolError
from ws2fast.wsframes import (
    BinaryMessage,
    CloseReceived,
    FrameParser,
    Ping,
    Pong,
    TextMessage,
    build_frame,
    is_valid_close_code,
)

KEY = b"\x37\xfa\x21\x3d"


def raw(b0: int, payload: bytes = b"", *, masked: bool = True, length_bytes: int | None = None,
        length: int | None = None) -> bytes:
    """A frame built by hand: b0 is FIN|RSV|opcode; the length can be spelled non-minimally."""
    n = len(payload) if length is None else length
    mask_bit = 0x80 if masked else 0
    if length_bytes is None:
        length_bytes = 0 if n < 126 else 2 if n <= 0xFFFF else 8
    if length_bytes == 0:
        header = bytes([b0, mask_bit | n])
    elif length_bytes == 2:
        header = bytes([b0, mask_bit | 126]) + struct.pack(">H", n)
    else:
        header = bytes([b0, mask_bit | 127]) + struct.pack(">Q", n)
    if not masked:
        return header + payload
    return header + KEY + bytes(b ^ KEY[i % 4] for i, b in enumerate(payload))


def expect_close(wire: bytes, code: int, match: str | None = None, client_side: bool = False,
                 **kwargs) -> WebSocketProtocolError:
    parser = FrameParser(client_side, **kwargs)
    with pytest.raises(WebSocketProtocolError, match=match) as info:
        parser.feed(wire)
    assert info.value.close_code == code
    # Refuses further input once failed.
    with pytest.raises(WebSocketProtocolError, match="failed earlier"):
        parser.feed(b"")
    # The same verdict when the bytes arrive one at a time.
    parser = FrameParser(client_side, **kwargs)
    with pytest.raises(WebSocketProtocolError) as split:
        for i in range(len(wire)):
            parser.feed(wire[i:i + 1])
    assert split.value.close_code == code
    return info.value


def parse(wire: bytes, client_side: bool = False, **kwargs) -> list:
    return FrameParser(client_side, **kwargs).feed(wire)


# -- §5.2 opcodes and reserved bits ----------------------------------------------------------

@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])
def test_reserved_opcodes(opcode):
    expect_close(raw(0x80 | opcode), 1002, "reserved opcode")


@pytest.mark.parametrize("rsv", [0x40, 0x20, 0x10, 0x70])
def test_rsv_bits_without_extension(rsv):
    expect_close(raw(0x80 | rsv | 0x2, b"x"), 1002, "RSV")


def test_rsv1_with_permessage_deflate():
    [event] = parse(raw(0xC2, b"zz"), permessage_deflate=True)
    assert event.is_text is False and event.data == b"zz"
    expect_close(raw(0xA2, b"zz"), 1002, "RSV", permessage_deflate=True)       # RSV2 still refused
    expect_close(raw(0xC9, b""), 1002, "control", permessage_deflate=True)     # ping with RSV1
    expect_close(raw(0x42, b"a") + raw(0xC0, b"b"), 1002, "continuation", permessage_deflate=True)


# -- §5.1 masking ----------------------------------------------------------------------------

def test_server_requires_masked_frames():
    expect_close(raw(0x82, b"abc", masked=False), 1002, "unmasked frame from the client")


def test_client_refuses_masked_frames():
    expect_close(raw(0x82, b"abc", masked=True), 1002, "masked frame from the server", client_side=True)


def test_client_reads_unmasked_frames():
    assert parse(raw(0x81, "é".encode(), masked=False), client_side=True) == [TextMessage("é")]


# -- §5.2 payload length ---------------------------------------------------------------------

@pytest.mark.parametrize("n", [0, 1, 125])
def test_length_in_16_bits_must_need_them(n):
    expect_close(raw(0x82, bytes(n), length_bytes=2), 1002, "minimal")


@pytest.mark.parametrize("n", [0, 125, 126, 65535])
def test_length_in_64_bits_must_need_them(n):
    expect_close(raw(0x82, bytes(n), length_bytes=8), 1002, "minimal")


@pytest.mark.parametrize("n", [125, 126, 127, 65535, 65536, 65537])
def test_minimal_lengths_at_each_boundary(n):
    [event] = parse(raw(0x82, bytes(range(256)) * (n // 256) + bytes(n % 256)), max_message_size=None)
    assert event.nbytes == n


@pytest.mark.parametrize("length", [2**63, 2**64 - 1, 2**63 + 5])
def test_64_bit_length_with_top_bit_set(length):
    # The frame that crashes libraries that narrow before checking: rejected, nothing allocated.
    wire = bytes([0x82, 0xFF]) + struct.pack(">Q", length) + KEY + b"x" * 32
    expect_close(wire, 1002, "most significant bit")
    expect_close(wire, 1002, "most significant bit", max_message_size=None)


@pytest.mark.parametrize("length", [2**63 - 1, 2**32, 65536 + 1])
def test_huge_lengths_against_a_64k_limit(length):
    wire = bytes([0x82, 0xFF]) + struct.pack(">Q", length) + KEY
    expect_close(wire, 1009, "exceeds max_message_size", max_message_size=65536)


@pytest.mark.parametrize("delta,ok", [(-1, True), (0, True), (1, False)])
def test_max_message_size_single_frame(delta, ok):
    limit = 1000
    wire = raw(0x82, bytes(limit + delta))
    if ok:
        assert parse(wire, max_message_size=limit)[0].nbytes == limit + delta
    else:
        expect_close(wire, 1009, "exceeds max_message_size", max_message_size=limit)


@pytest.mark.parametrize("delta,ok", [(-1, True), (0, True), (1, False)])
def test_max_message_size_counts_all_fragments(delta, ok):
    limit = 1000
    wire = raw(0x01, b"a" * 600) + raw(0x89, b"ping") + raw(0x80, b"b" * (400 + delta))
    if ok:
        events = parse(wire, max_message_size=limit)
        assert events == [Ping(b"ping"), TextMessage("a" * 600 + "b" * (400 + delta))]
    else:
        expect_close(wire, 1009, "exceeds max_message_size", max_message_size=limit)


def test_max_message_size_is_checked_before_the_payload_arrives():
    parser = FrameParser(False, max_message_size=100)
    with pytest.raises(WebSocketProtocolError) as info:
        parser.feed(bytes([0x82, 0xFE, 0x10, 0x00]) + KEY)     # 4096 announced, nothing sent
    assert info.value.close_code == CloseCode.MESSAGE_TOO_BIG


@pytest.mark.parametrize("value", [-1, 2**63, 2**64])
def test_max_message_size_argument_range(value):
    with pytest.raises(ValueError):
        FrameParser(False, max_message_size=value)


# -- §5.4 fragmentation, §5.5 control frames -------------------------------------------------

def test_control_frames_interleave_with_fragments():
    wire = (raw(0x02, b"ab") + raw(0x89, b"1") + raw(0x00, b"cd") + raw(0x8A, b"2")
            + raw(0x80, b"ef"))
    assert parse(wire) == [Ping(b"1"), Pong(b"2"), BinaryMessage(b"abcdef")]


def test_continuation_without_a_message():
    expect_close(raw(0x80, b"x"), 1002, "no message in progress")


@pytest.mark.parametrize("opcode", [0x1, 0x2])
def test_new_message_inside_a_fragmented_one(opcode):
    expect_close(raw(0x01, b"a") + raw(0x80 | opcode, b"b"), 1002, "in progress")


@pytest.mark.parametrize("opcode", [0x8, 0x9, 0xA])
def test_fragmented_control_frame(opcode):
    expect_close(raw(opcode, b""), 1002, "fragmented control")


@pytest.mark.parametrize("opcode", [0x8, 0x9, 0xA])
def test_control_frame_payload_limit(opcode):
    body = b"\x03\xe8" + b"r" * 123 if opcode == 0x8 else b"p" * 125
    assert len(parse(raw(0x80 | opcode, body))) == 1
    expect_close(raw(0x80 | opcode, body + b"x"), 1002, "125")


def test_empty_fragments():
    assert parse(raw(0x01, b"") + raw(0x00, b"") + raw(0x80, b"")) == [TextMessage("")]
    assert parse(raw(0x82, b"")) == [BinaryMessage(b"")]


# -- §8.1 UTF-8 ------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [
    b"\xff", b"\xc0\x80", b"\xc1\xbf",             # never valid; overlong 2-byte
    b"\xe0\x80\x80", b"\xe0\x9f\xbf",              # overlong 3-byte
    b"\xed\xa0\x80", b"\xed\xbf\xbf",              # surrogates
    b"\xf0\x80\x80\x80", b"\xf0\x8f\xbf\xbf",      # overlong 4-byte
    b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80",      # above U+10FFFF
    b"\x80", b"a\xbf", b"\xc2a",                   # stray / broken continuation
])
def test_invalid_utf8_text(bad):
    expect_close(raw(0x81, b"ok" + bad), 1007, "UTF-8")


@pytest.mark.parametrize("good", ["\u0080", "\u07ff", "\u0800", "\uffff", "\U00010000", "\U0010ffff",
                                  "\ud7ff", "\ue000"])
def test_valid_utf8_boundaries(good):
    assert parse(raw(0x81, good.encode())) == [TextMessage(good)]


def test_text_ending_inside_a_sequence():
    expect_close(raw(0x81, "é".encode()[:1]), 1007, "ends inside")
    expect_close(raw(0x01, b"a") + raw(0x80, "€".encode()[:2]), 1007, "ends inside")


def test_utf8_split_across_fragments_is_valid():
    euro = "€".encode()
    assert parse(raw(0x01, euro[:1]) + raw(0x00, euro[1:2]) + raw(0x80, euro[2:])) == [TextMessage("€")]


def test_invalid_utf8_fails_mid_fragment_before_the_message_ends():
    parser = FrameParser(False)
    assert parser.feed(raw(0x01, b"valid so far")) == []
    frame = raw(0x80, b"abc\xff" + b"d" * 1000)           # 8-octet header (16-bit length, key)
    assert parser.feed(frame[:11]) == []                  # header and "abc"
    with pytest.raises(WebSocketProtocolError) as info:
        parser.feed(frame[11:12])                         # 0xff: fails now, 1000 bytes early
    assert info.value.close_code == 1007


def test_impossible_lead_byte_fails_at_once():
    # 0xF4 0x90 can never start valid UTF-8: fail on the second byte, mid-frame.
    parser = FrameParser(False)
    frame = raw(0x81, b"\xf4\x90" + b"x" * 100)
    parser.feed(frame[:7])                    # header, key, 0xF4
    with pytest.raises(WebSocketProtocolError) as info:
        parser.feed(frame[7:8])
    assert info.value.close_code == 1007


# -- §5.5.1, §7.4 close frames ---------------------------------------------------------------

def test_close_without_payload():
    assert parse(raw(0x88)) == [CloseReceived(1005, "")]


def test_close_with_one_byte():
    expect_close(raw(0x88, b"\x03"), 1002, "1-byte")


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012,
                                  1013, 1014, 3000, 3999, 4000, 4999])
def test_valid_close_codes(code):
    assert parse(raw(0x88, struct.pack(">H", code) + b"bye")) == [CloseReceived(code, "bye")]
    assert is_valid_close_code(code)


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535])
def test_invalid_close_codes(code):
    expect_close(raw(0x88, struct.pack(">H", code)), 1002, "may not be sent")
    assert not is_valid_close_code(code)


def test_close_reason_must_be_utf8():
    expect_close(raw(0x88, b"\x03\xe8\xff"), 1007, "reason")
    expect_close(raw(0x88, b"\x03\xe8\xe2\x82"), 1007, "reason")        # truncated sequence


def test_error_keeps_the_events_before_it():
    error = expect_close(raw(0x81, b"one") + raw(0x89, b"p") + raw(0x83), 1002)
    assert error.events == [TextMessage("one"), Ping(b"p")]


def test_build_frame_round_trip_both_roles():
    for client_side, mask in ((False, True), (True, False)):
        wire = (build_frame(1, "text", mask=mask) + build_frame(2, b"bin", mask=mask)
                + build_frame(9, b"p", mask=mask) + build_frame(10, b"q", mask=mask))
        assert parse(wire, client_side) == [TextMessage("text"), BinaryMessage(b"bin"), Ping(b"p"),
                                            Pong(b"q")]
