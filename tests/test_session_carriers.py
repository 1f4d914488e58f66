"""One WebSocket session, whatever carries it: the same client frames, fed to a WebSocket over
HTTP/1.1 (H1Connection, a byte stream) and to one over HTTP/2 (an H2Connection stream's DATA),
make the same events and the same WebSocket frames back, byte for byte.  The rules (pongs, the
close handshake and its validation, failing with the right code) are written once, in
ws2fast.websocket.WebSocketSession; this is what keeps the two from drifting."""

from __future__ import annotations

import struct

import pytest

from ws2fast import Config, H1Connection, H2Connection
from ws2fast._core import PREFACE, build_data, build_headers, build_settings, build_ws_frame
from ws2fast.events import WebSocketClosed
from ws2fast.hpack import Encoder
from ws2fast.websocket import WebSocketSession, failure_payload

KEY = b"\x01\x02\x03\x04"
CONNECT = [(b":method", b"CONNECT"), (b":protocol", b"websocket"), (b":scheme", b"https"),
           (b":path", b"/"), (b":authority", b"c.test"), (b"sec-websocket-version", b"13")]


def frame(opcode: int, payload: bytes = b"", fin: bool = True) -> bytes:
    return build_ws_frame(opcode, payload, fin=fin, mask_key=KEY)


def raw(first_octet: int, payload: bytes) -> bytes:
    # A masked frame built by hand, for the ones the builder refuses to make.
    n = len(payload)
    head = bytes([first_octet]) + (bytes([0x80 | n]) if n < 126 else bytes([0xFE]) + n.to_bytes(2, "big"))
    return head + KEY + bytes(b ^ KEY[i % 4] for i, b in enumerate(payload))


def close(code: int, reason: bytes = b"") -> bytes:
    return frame(0x8, struct.pack(">H", code) + reason)


class OverHTTP1:
    def __init__(self, config: Config) -> None:
        self.conn = H1Connection(client_side=False, config=config)
        self.conn.receive_data(b"GET / HTTP/1.1\r\nHost: c.test\r\nUpgrade: websocket\r\n"
                               b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                               b"Sec-WebSocket-Version: 13\r\n\r\n")
        self.conn.accept_websocket(0)
        self.conn.data_to_send()

    def feed(self, data: bytes) -> list:
        return self.conn.receive_data(data)

    def close(self, code: int, reason: str) -> list:
        return self.conn.close_websocket(0, code, reason) or []

    def sent(self) -> bytes:
        return self.conn.data_to_send()

    def session(self) -> WebSocketSession:
        assert self.conn.session is not None
        return self.conn.session


class OverHTTP2:
    def __init__(self, config: Config) -> None:
        self.conn = H2Connection(client_side=False, config=config)
        self.conn.initiate()
        self.conn.receive_data(PREFACE + build_settings({}) + build_settings(ack=True)
                               + build_headers(1, Encoder().encode(CONNECT)))
        self.conn.accept_websocket(1)
        self.conn.data_to_send()

    def feed(self, data: bytes) -> list:
        return self.conn.receive_data(build_data(1, data))

    def close(self, code: int, reason: str) -> list:
        self.conn.close_websocket(1, code, reason)
        return self.conn.receive_data(b"")      # (events of send_* calls come with the next batch)

    def sent(self) -> bytes:
        # The WebSocket bytes of stream 1: the payloads of its DATA frames.
        out, data = [], self.conn.data_to_send()
        while data:
            length = int.from_bytes(data[:3], "big")
            kind, sid = data[3], int.from_bytes(data[5:9], "big") & 0x7FFFFFFF
            if kind == 0 and sid == 1:
                out.append(data[9:9 + length])
            data = data[9 + length:]
        return b"".join(out)

    def session(self) -> WebSocketSession:
        return self.conn.streams[1].info.session


def _seen(events: list) -> list:
    # What an application sees, without the stream id (0 over HTTP/1.1, 1 over HTTP/2).
    out = []
    for e in events:
        fields = {k: getattr(e, k) for k in ("data", "payload", "code", "reason", "reset_code")
                  if hasattr(e, k)}
        out.append((type(e).__name__, {k: bytes(v) if isinstance(v, memoryview) else v
                                       for k, v in fields.items()}))
    return out


CASES = {
    "ping, then close": [frame(0x9, b"hi"), frame(0x2, b"abc"), close(1000, b"bye")],
    "close without a code": [frame(0x8)],
    "data after the close is ignored": [close(4000, b"x") + frame(0x2, b"late") + frame(0x9, b"p")],
    "close code that may not be sent": [close(999)],
    "close with a reason that is not UTF-8": [close(1000, b"\xff\xfe")],
    "text that is not UTF-8": [frame(0x1, b"ok\xc3\x28")],
    "control frame over 125 bytes": [raw(0x89, b"x" * 126)],
    "fragmented control frame": [raw(0x09, b"x")],
    "continuation without a start": [frame(0x0, b"x")],
    "unknown opcode": [raw(0x83, b"x")],
    "fragments, then a pong": [frame(0x1, b"he", fin=False), frame(0x0, b"llo"), frame(0xA, b"p")],
    "one close split over reads": [close(1001, b"going")[:3], close(1001, b"going")[3:]],
}


@pytest.mark.parametrize("reads", CASES.values(), ids=CASES.keys())
@pytest.mark.parametrize("auto_close", [True, False])
def test_the_same_frames_make_the_same_events_and_answers_over_both_versions(reads, auto_close):
    config = Config(auto_close=auto_close)
    sides = [OverHTTP1(config), OverHTTP2(config)]
    seen, answers = [], []
    for side in sides:
        events = []
        for data in reads:
            events += side.feed(data)
        seen.append(_seen(events))
        answers.append(side.sent())
        assert isinstance(side.session(), WebSocketSession)
    assert seen[0] == seen[1]
    assert answers[0] == answers[1]
    assert seen[0], "every case makes an event"


@pytest.mark.parametrize("code, reason", [(1000, "done"), (4321, "é" * 61), (1005, "")])
def test_closing_first_sends_the_same_close_and_ends_the_same_way(code, reason):
    sides = [OverHTTP1(Config()), OverHTTP2(Config())]
    for side in sides:
        assert side.close(code, reason) == []
    assert sides[0].sent() == sides[1].sent()
    ends = [_seen(side.feed(close(1000, b"ok"))) for side in sides]
    assert ends[0] == ends[1]
    assert ends[0][-1] == ("WebSocketClosed", {"code": 1000, "reason": "ok", "reset_code": None})


def test_a_close_reason_is_checked_the_same_way_over_both_versions():
    for side in (OverHTTP1(Config()), OverHTTP2(Config())):
        with pytest.raises(Exception, match="longer than 123 bytes"):
            side.close(1000, "x" * 124)
        with pytest.raises(Exception, match="may not be sent"):
            side.close(1006, "")
        with pytest.raises(Exception, match="at most 125 bytes"):
            side.session().ping(b"x" * 126)


def test_failure_reason_is_cut_at_a_character_boundary():
    payload = failure_payload(1002, "é" * 100)          # 200 octets of UTF-8
    assert payload[:2] == b"\x03\xea"
    assert len(payload) <= 125
    assert payload[2:].decode("utf-8") == "é" * 60


def test_a_failure_reports_our_code_and_the_whole_message():
    for side in (OverHTTP1(Config()), OverHTTP2(Config())):
        events = side.feed(close(999))
        closed = [e for e in events if isinstance(e, WebSocketClosed)]
        assert len(closed) == 1 and closed[0].code == 1002
        assert side.session().closed and side.session().close_sent
