"""ws2fast.H2Connection as a module: chunking independence (Hypothesis), the compiled hot path
against the Python path, Config, and the public surface."""

from __future__ import annotations

import dataclasses
from collections import defaultdict

import hpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ws2fast
from ws2fast import Config, H2Connection
from ws2fast._core import (
    PREFACE,
    build_continuation,
    build_data,
    build_frame_header,
    build_headers,
    build_ping,
    build_priority,
    build_rst_stream,
    build_settings,
    build_window_update,
    build_ws_close,
    build_ws_frame,
)
from ws2fast.events import BinaryMessage, TextMessage, WebSocketRequested

CONNECT = [(b":method", b"CONNECT"), (b":protocol", b"websocket"), (b":scheme", b"https"),
           (b":authority", b"c.test"), (b"sec-websocket-version", b"13")]


def _record_client_conversation() -> tuple[bytes, bytes]:
    """A client's whole side of a busy connection, built by hand: (opening, the rest).

    The server accepts each WebSocket once the opening is read, so what it receives does not
    depend on when it answered (an application that answers later sees the same messages,
    only returned by accept_websocket).
    """
    enc = hpack.Encoder()
    out = [PREFACE, build_settings({4: 100000}), build_settings(ack=True), build_window_update(0, 10000)]
    for sid in (1, 3, 5):
        block = enc.encode(CONNECT[:3] + [(b":path", f"/s{sid}".encode())] + CONNECT[3:])
        if sid == 3:                                    # split across CONTINUATIONs
            out += [build_headers(sid, block[:7], end_headers=False),
                    build_continuation(sid, block[7:12], end_headers=False),
                    build_continuation(sid, block[12:])]
        else:
            out.append(build_headers(sid, block))
    out.append(build_headers(7, enc.encode([(b":method", b"POST"), (b":scheme", b"https"),
                                            (b":path", b"/form"), (b":authority", b"c.test")])))
    opening = b"".join(out)
    out = []
    for i in range(40):
        sid = (1, 3, 5)[i % 3]
        payload = bytes([i]) * (i * 37 % 300)
        if i % 4 == 0:
            out.append(build_data(sid, build_ws_frame(1, "é" * i + "x", mask=True)))
        elif i % 4 == 1:
            frame = build_ws_frame(2, payload, mask=True)
            out.append(build_data(sid, frame, pad_length=i % 7))
        elif i % 4 == 2:                                # fragmented, with a ping between
            out.append(build_data(sid, build_ws_frame(2, payload[:5], fin=False, mask=True)
                                  + build_ws_frame(9, b"p%d" % i, mask=True)
                                  + build_ws_frame(0, payload[5:], mask=True)))
        else:                                           # one WebSocket frame over 3 DATA frames
            frame = build_ws_frame(2, payload, mask=True)
            third = len(frame) // 3
            out += [build_data(sid, frame[:third]), build_data(sid, frame[third:2 * third]),
                    build_data(sid, frame[2 * third:])]
        if i == 10:
            out += [build_priority(1, 3, 200), build_ping(b"pingpong"),
                    build_frame_header(0xEE, 0, 0, 3) + b"???", build_data(7, b"form-body", end_stream=True)]
        if i == 20:
            out.append(build_window_update(1, 5000))
    out.append(build_data(1, build_ws_close(1000, "bye", mask=True)))
    out.append(build_data(1, b"", end_stream=True))
    out.append(build_rst_stream(3, 8))
    out.append(build_data(5, build_ws_frame(1, "last", mask=True)))
    return opening, b"".join(out)


OPENING, REST = _record_client_conversation()
CONVERSATION = OPENING + REST


def _serve(chunks: list[bytes]) -> tuple[dict[int, list], list]:
    """Serve the conversation cut into ``chunks`` (none straddles the opening's end)."""
    conn = H2Connection(client_side=False)
    conn.initiate()
    per_stream: dict[int, list] = defaultdict(list)
    connection_level: list = []

    def take(events):
        for event in events:
            sid = getattr(event, "stream_id", None)
            (per_stream[sid] if sid else connection_level).append(event)
            if isinstance(event, WebSocketRequested):
                take(conn.accept_websocket(sid))

    for chunk in chunks:
        take(conn.receive_data(chunk))
        conn.data_to_send()
    return dict(per_stream), connection_level


def _cut(points: list[int]) -> list[bytes]:
    points = sorted(set(points) | {len(OPENING)})
    return [CONVERSATION[a:b] for a, b in zip([0] + points, points + [len(CONVERSATION)], strict=True)]


REFERENCE = _serve(_cut([]))


def test_recorded_conversation_gives_the_expected_events():
    per_stream, connection_level = REFERENCE
    assert [type(e).__name__ for e in connection_level] == [
        "SettingsReceived", "SettingsAcknowledged", "PingReceived"]
    texts = [e for e in per_stream[1] if isinstance(e, TextMessage)]
    assert texts[0] == TextMessage("x", 1)
    assert type(per_stream[1][-1]).__name__ == "WebSocketClosed"
    assert per_stream[3][-1] == ws2fast.events.WebSocketClosed(3, 1006, "", 8)
    assert per_stream[5][-1] == TextMessage("last", 5)
    assert [type(e).__name__ for e in per_stream[7]] == ["RequestReceived", "DataReceived", "StreamEnded"]
    assert sum(isinstance(e, BinaryMessage) for events in per_stream.values() for e in events) == 30


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(min_value=0, max_value=len(CONVERSATION)), max_size=60))
def test_any_chunking_gives_identical_events(cuts):
    assert _serve(_cut(cuts)) == REFERENCE


def test_byte_by_byte_gives_identical_events():
    assert _serve([CONVERSATION[i:i + 1] for i in range(len(CONVERSATION))]) == REFERENCE


def _ws_stream_in_data_frames(mask: bool, sid: int) -> tuple[bytes, list]:
    """Fragmented messages whose WebSocket frames straddle DATA frame boundaries (the way a
    proxy re-frames a stream), and the messages they make."""
    messages = [bytes([65 + i]) * (300 + 97 * i) for i in range(6)]
    ws = b"".join(build_ws_frame(2 if j == 0 else 0, m[j:j + 64], fin=j + 64 >= len(m), mask=mask)
                  for m in messages for j in range(0, len(m), 64))
    return b"".join(build_data(sid, ws[k:k + 250]) for k in range(0, len(ws), 250)), messages


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=1 << 20), max_size=6), st.booleans())
def test_data_in_the_same_read_as_the_response_stays_in_order_in_any_chunking(cuts, roc):
    # The 2xx and the first DATA frames arrive before the parser exists, so Python feeds them;
    # a read that ends such a frame and begins the next must not let the next overtake it.
    conn = H2Connection(client_side=True, config=Config(release_on_consume=roc))
    conn.initiate()
    conn.receive_data(build_settings({8: 1}))
    sid = conn.open_websocket("/", "c.test", scheme="http")
    conn.data_to_send()
    data, messages = _ws_stream_in_data_frames(False, sid)
    wire = build_headers(sid, hpack.Encoder().encode([(b":status", b"200")])) + data
    points = sorted({c % len(wire) for c in cuts} | {0, len(wire)})
    got = []
    for a, b in zip(points, points[1:], strict=False):
        for event in conn.receive_data(wire[a:b]):
            assert type(event).__name__ != "WebSocketClosed", event
            if isinstance(event, BinaryMessage):
                got.append(event.data)
                conn.acknowledge(sid, event.nbytes)
        conn.data_to_send()
    assert got == messages


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=1 << 20), max_size=6))
def test_early_data_and_what_follows_the_accept_stay_in_order_in_any_chunking(cuts):
    conn = H2Connection(client_side=False)
    conn.initiate()
    data, messages = _ws_stream_in_data_frames(True, 1)
    wire = PREFACE + build_settings({}) + build_headers(1, hpack.Encoder().encode(
        CONNECT[:3] + [(b":path", b"/")] + CONNECT[3:])) + data
    points = sorted({c % len(wire) for c in cuts} | {0, len(wire)})
    got = []
    for a, b in zip(points, points[1:], strict=False):
        events = conn.receive_data(wire[a:b])
        for event in list(events):
            if isinstance(event, WebSocketRequested):
                events += conn.accept_websocket(1)
        got += [e.data for e in events if isinstance(e, BinaryMessage)]
        assert not any(type(e).__name__ == "WebSocketClosed" for e in events), events
        conn.data_to_send()
    assert got == messages


def test_memoryview_and_bytearray_input():
    assert _serve([memoryview(c) for c in _cut([])]) == REFERENCE
    assert _serve([bytearray(c) for c in _cut([])]) == REFERENCE


def test_answering_late_returns_the_early_messages_from_accept():
    # The whole conversation in one batch: the app accepts after the batch, and the messages
    # that came before its answer are returned by accept_websocket -- none lost.
    per_stream, _ = _serve([CONVERSATION])
    assert per_stream[1] == REFERENCE[0][1] and per_stream[5] == REFERENCE[0][5]
    # stream 3 was reset within that batch: its early messages died with it
    assert [type(e).__name__ for e in per_stream[3]] == ["WebSocketRequested", "WebSocketClosed"]


# -- Config ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("field, value, error", [
    ("max_frame_size", 16383, ValueError), ("max_frame_size", 2**24, ValueError),
    ("initial_window_size", 2**31, ValueError), ("initial_window_size", -1, ValueError),
    ("connection_window_size", 65534, ValueError), ("max_concurrent_streams", 2**32, ValueError),
    ("header_table_size", "4096", TypeError), ("max_message_size", -1, ValueError),
    ("close_timeout", 0, ValueError), ("settings_ack_timeout", -1, ValueError),
    ("max_header_list_size", True, TypeError),
])
def test_config_rejects_out_of_range_values(field, value, error):
    with pytest.raises(error, match=field):
        Config(**{field: value})


def test_config_limits_at_their_edges_are_accepted():
    Config(max_frame_size=16384, initial_window_size=2**31 - 1, connection_window_size=65535)
    c = Config(max_frame_size=2**24 - 1, initial_window_size=2**31 - 1, max_message_size=None)
    assert c.max_frame_size == 2**24 - 1
    assert "max_message_size=None" in repr(c) and "clock" not in repr(c)
    assert dataclasses.replace(c, max_frame_size=16384).max_frame_size == 16384


def test_public_surface():
    for name in ws2fast.__all__:
        assert hasattr(ws2fast, name), name
    for name in ws2fast.events.__all__:
        assert hasattr(ws2fast.events, name), name
    assert ws2fast.H2Connection is H2Connection


# -- WebSocket behaviour on an HTTP/2 stream --------------------------------------------------------

from hyperframe import frame as hf  # noqa: E402

from tests.rawpeer import CONNECT as RAW_CONNECT  # noqa: E402
from tests.rawpeer import client_pair, goaway, open_websocket, rst, server_pair  # noqa: E402
from ws2fast.events import CloseReceived, Ping, WebSocketClosed  # noqa: E402
from ws2fast.exceptions import LocalProtocolError  # noqa: E402


def _data(peer, sid):
    return [f for f in peer.read() if isinstance(f, hf.DataFrame) and f.stream_id == sid]


@pytest.mark.parametrize("size, closed", [(999, False), (1000, False), (1001, True)])
def test_max_message_size_at_the_limit_over_h2(size, closed):
    peer = server_pair(Config(max_message_size=1000))
    open_websocket(peer, 1)
    open_websocket(peer, 3)
    events = peer.send(peer.ws(1, 2, b"m" * size))
    if closed:
        assert events == [WebSocketClosed(1, 1009, events[0].reason)]
        (close,) = _data(peer, 1)
        assert close.data[:4] == b"\x88" + bytes([len(close.data) - 2]) + b"\x03\xf1"
        assert "END_STREAM" in close.flags
        assert goaway(peer.read()) == []
    else:
        assert [e.nbytes for e in events] == [size]
    assert peer.send(peer.ws(3, 1, "other")) == [TextMessage("other", 3)]


def test_invalid_utf8_over_h2_closes_with_1007_and_spares_other_streams():
    peer = server_pair()
    open_websocket(peer, 1)
    open_websocket(peer, 3)
    events = peer.send(peer.ws(1, 2, b"fine"), peer.data(1, b"\x81\x82\0\0\0\0\xff\xfe"))
    assert events[0].data == b"fine"
    assert events[1] == WebSocketClosed(1, 1007, events[1].reason)
    (close,) = _data(peer, 1)
    assert close.data[2:4] == b"\x03\xef"
    # anything later on that stream is dropped, but still counted for flow control
    assert peer.send(peer.ws(1, 1, "ignored")) == []
    assert peer.send(peer.ws(3, 1, "alive")) == [TextMessage("alive", 3)]


def test_auto_pong_and_auto_close_can_be_turned_off():
    peer = server_pair(Config(auto_pong=False, auto_close=False))
    open_websocket(peer, 1)
    assert peer.send(peer.ws(1, 9, b"p")) == [Ping(b"p", 1)]
    assert _data(peer, 1) == []
    peer.ours.send_pong(1, b"p")
    assert _data(peer, 1)[0].data == b"\x8a\x01p"
    assert peer.send(peer.ws(1, 8, b"\x03\xe8")) == [CloseReceived(1000, "", 1)]
    assert _data(peer, 1) == []                            # no echo
    peer.ours.close_websocket(1, 1000)
    (close,) = _data(peer, 1)
    assert "END_STREAM" in close.flags
    assert peer.send(peer.data(1, b"", end_stream=True)) == [WebSocketClosed(1, 1000, "", None)]
    assert peer.ours.streams == {}


def test_fragmented_send_and_ping_from_our_client():
    peer = client_pair(ENABLE_CONNECT_PROTOCOL=1)
    sid = peer.ours.open_websocket("/", "a.test")
    peer.send(peer.headers(sid, [(b":status", b"200")]))
    peer.read()
    peer.ours.send_fragment(sid, "he", first=True, fin=False, text=True)
    peer.ours.ping(sid, b"x")
    peer.ours.send_fragment(sid, "llo", first=False, fin=True)
    frames = [f.data for f in _data(peer, sid)]
    assert [f[0] for f in frames] == [0x01, 0x89, 0x80]
    assert all(f[1] & 0x80 for f in frames)                # masked: we are the client
    with pytest.raises(LocalProtocolError):
        peer.ours.ping(sid, b"x" * 126)


def test_close_timeout_resets_a_websocket_whose_peer_never_answers_close():
    now = [0.0]
    peer = server_pair(Config(close_timeout=2.0, clock=lambda: now[0]))
    open_websocket(peer, 1)
    peer.ours.close_websocket(1, 1001)
    peer.read()
    assert peer.ours.next_timeout() == 2.0
    now[0] = 2.0
    assert peer.ours.handle_timeouts() == [WebSocketClosed(1, 1006, "close timeout", 8)]
    assert rst(peer.read()) == {1: 8}


def test_release_on_consume_gives_held_bytes_back_when_a_stream_goes():
    peer = server_pair(Config(release_on_consume=True, connection_window_size=65535))
    open_websocket(peer, 1)
    for _ in range(40):
        peer.send(peer.ws(1, 2, b"h" * 1000))             # 40,320 octets held
    before = [f for f in peer.read() if isinstance(f, hf.WindowUpdateFrame) and f.stream_id == 0]
    assert before == []
    peer.send(hf.RstStreamFrame(1, error_code=8))
    (update,) = [f for f in peer.read() if isinstance(f, hf.WindowUpdateFrame) and f.stream_id == 0]
    assert update.window_increment == 40 * 1008
    peer.ours.acknowledge(1, 1000)                         # harmless once the stream is gone


def test_early_messages_before_accept_are_returned_by_accept():
    peer = server_pair()
    events = peer.send(peer.headers(1, RAW_CONNECT), peer.ws(1, 1, "early"), peer.ws(1, 2, b"bird"))
    assert [type(e) for e in events] == [ws2fast.events.WebSocketRequested]
    early = peer.ours.accept_websocket(1)
    assert [e.data for e in early] == ["early", b"bird"]


def test_receive_into_a_registered_buffer_over_h2():
    peer = server_pair()
    open_websocket(peer, 1)
    buffer = bytearray(64)
    peer.ours.receive_into(1, buffer)
    (event,) = peer.send(peer.ws(1, 2, b"straight in"))
    assert event.into_buffer and event.data is buffer and bytes(buffer[:event.nbytes]) == b"straight in"
    (event,) = peer.send(peer.ws(1, 2, b"own bytes"))
    assert not event.into_buffer and event.data == b"own bytes"
    with pytest.raises(LocalProtocolError):
        peer.ours.receive_into(3, buffer)


def test_messages_in_the_same_read_as_the_2xx_are_delivered():
    peer = client_pair(ENABLE_CONNECT_PROTOCOL=1)
    sid = peer.ours.open_websocket("/", "a.test")
    peer.read()
    events = peer.send(peer.headers(sid, [(b":status", b"200")]),
                       peer.data(sid, b"\x81\x05first" + b"\x82\x06second" + b"\x88\x02\x03\xe8"))
    assert [type(e).__name__ for e in events] == [
        "WebSocketAccepted", "TextMessage", "BinaryMessage", "CloseReceived", "WebSocketClosed"]
    assert events[1] == TextMessage("first", sid) and events[2].data == b"second"
    (echo,) = [f for f in peer.read() if isinstance(f, hf.DataFrame)]
    assert echo.data[:1] == b"\x88" and "END_STREAM" in echo.flags


_OUTPUT_OPS = st.lists(st.one_of(st.tuples(st.just("send"), st.integers(0, 20000)),
                                 st.tuples(st.just("take"), st.integers(0, 3000)),
                                 st.tuples(st.just("take all"), st.just(0))), max_size=25)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_OUTPUT_OPS)
def test_output_taken_in_any_amounts_between_sends_is_the_same_bytes(ops):
    # The output buffer is handed out whole (no copy) or in parts (copied): either way the
    # bytes and their order must be what one data_to_send() at the end would have given.
    def fresh():
        peer = server_pair(INITIAL_WINDOW_SIZE=2**31 - 1)
        peer.send(build_window_update(0, 2**31 - 1 - 65535))
        open_websocket(peer, 1)
        return peer.ours

    ours, reference = fresh(), fresh()
    taken = []
    for i, (op, n) in enumerate(ops):
        if op == "send":
            payload = bytes([i]) * n
            ours.send_message(1, payload)
            reference.send_message(1, payload)
        else:
            before = ours._output_size
            piece = ours.data_to_send() if op == "take all" else ours.data_to_send(n)
            assert len(piece) == (before if op == "take all" else min(n, before))
            assert ours._output_size == before - len(piece)
            taken.append(piece)
    taken.append(ours.data_to_send())
    assert b"".join(taken) == reference.data_to_send()
    assert ours.data_to_send() == b"" and ours.data_to_send(10) == b""
