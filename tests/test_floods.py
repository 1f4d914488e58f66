"""Flood limits (Config.*_limit, RFC 9113 §10.5): each kind of frame that costs work and can
come without end gets a token bucket; past it the connection ends with
GOAWAY(ENHANCE_YOUR_CALM).  Driven by a raw peer (hyperframe + hpack) with a test clock."""

from __future__ import annotations

import dataclasses

import pytest
from hyperframe import frame as hf

from tests.rawpeer import CONNECT, goaway, open_websocket, server_pair
from ws2fast import Config, RateLimit
from ws2fast._core import build_frame_header, build_ws_frame
from ws2fast.errors import ErrorCode
from ws2fast.events import ConnectionTerminated, TextMessage

CALM = ErrorCode.ENHANCE_YOUR_CALM


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _peer(limit: str, burst: int = 5, per_second: float = 1.0, **more):
    clock = Clock()
    config = Config(clock=clock, **{limit: RateLimit(burst, per_second)}, **more)
    return server_pair(config), clock


def _ping(peer, i):
    return peer.send(hf.PingFrame(0, opaque_data=i.to_bytes(8, "big")))


def _settings(peer, i):
    return peer.send(peer.settings(MAX_FRAME_SIZE=16384 + i))


def _priority(peer, i):
    f = hf.PriorityFrame(101 + 2 * i)
    f.depends_on, f.stream_weight = 0, 16
    return peer.send(f)


def _window_update(peer, i):
    return peer.send(hf.WindowUpdateFrame(0, window_increment=1))


def _rapid_reset(peer, i):
    sid = 1 + 2 * i                                  # open a stream, cancel it at once
    return peer.send(peer.headers(sid, CONNECT), hf.RstStreamFrame(sid, error_code=ErrorCode.CANCEL))


def _made_you_reset(peer, i):
    sid = 1 + 2 * i                                  # a stream we must reset (§6.9: increment 0)
    return peer.send(peer.headers(sid, CONNECT), build_frame_header(0x8, 0, sid, 4) + b"\0\0\0\0")


def _empty_data(peer, i):
    if i == 0:
        open_websocket(peer, 1)
    return peer.send(peer.data(1, b""))


def _empty_headers(peer, i):
    # HEADERS with an empty fragment, then nothing but empty CONTINUATIONs
    if i == 0:
        return peer.send(build_frame_header(0x1, 0, 1, 0))
    return peer.send(build_frame_header(0x9, 0, 1, 0))


FLOODS = {
    "ping_limit": _ping, "settings_limit": _settings, "priority_limit": _priority,
    "window_update_limit": _window_update, "peer_reset_limit": _rapid_reset,
    "local_reset_limit": _made_you_reset, "empty_frame_limit": _empty_data,
}
SPENT = {"settings_limit": 1}       # the SETTINGS of the connection preface counts too


@pytest.mark.parametrize("limit", FLOODS)
def test_a_flood_past_its_burst_ends_the_connection_with_enhance_your_calm(limit):
    peer, _ = _peer(limit, max_concurrent_streams=1000)
    flood = FLOODS[limit]
    allowed = 5 - SPENT.get(limit, 0)
    for i in range(allowed):
        events = flood(peer, i)
        assert not any(isinstance(e, ConnectionTerminated) for e in events), (i, events)
    assert CALM not in goaway(peer.read())
    events = flood(peer, allowed)
    (terminated,) = [e for e in events if isinstance(e, ConnectionTerminated)]
    assert terminated.error_code == CALM and limit in terminated.message
    assert goaway(peer.read()) == [CALM]


@pytest.mark.parametrize("limit", FLOODS)
def test_the_bucket_refills_with_time(limit):
    peer, clock = _peer(limit, burst=5, per_second=2.0, max_concurrent_streams=1000)
    flood = FLOODS[limit]
    for i in range(25):                              # 2/s for 10 s after the burst
        events = flood(peer, i)
        assert not any(isinstance(e, ConnectionTerminated) for e in events), (i, events)
        if i >= 4 - SPENT.get(limit, 0):
            clock.now += 0.5
    assert CALM not in goaway(peer.read())


def test_a_limit_set_to_none_is_off():
    config = Config(ping_limit=None)
    peer = server_pair(config)
    for i in range(1000):
        assert not any(isinstance(e, ConnectionTerminated) for e in _ping(peer, i))


def test_empty_headers_and_continuations_count_as_empty_frames():
    peer, _ = _peer("empty_frame_limit", burst=3, max_continuation_frames=100)
    events = []
    for i in range(4):
        events += _empty_headers(peer, i)
    (terminated,) = [e for e in events if isinstance(e, ConnectionTerminated)]
    assert terminated.error_code == CALM
    assert goaway(peer.read()) == [CALM]


def test_continuation_frames_per_block_are_bounded():
    peer = server_pair(Config(max_continuation_frames=8))
    block = peer.encoder.encode(CONNECT)
    frames = [build_frame_header(0x1, 0, 1, 1) + block[:1]]
    frames += [build_frame_header(0x9, 0, 1, 1) + bytes([b]) for b in block[1:9]]    # 8: allowed
    assert not any(isinstance(e, ConnectionTerminated) for e in peer.send(*frames))
    events = peer.send(build_frame_header(0x9, 0, 1, 1) + block[9:10])              # the 9th
    (terminated,) = [e for e in events if isinstance(e, ConnectionTerminated)]
    assert terminated.error_code == CALM and "max_continuation_frames" in terminated.message


def test_a_websocket_with_messages_between_the_empty_frames_still_counts_them():
    # Empty DATA frames go through the compiled hot path; they are counted there.
    peer, _ = _peer("empty_frame_limit", burst=10)
    open_websocket(peer, 1)
    events = []
    for i in range(11):
        events += peer.send(peer.data(1, b""), peer.data(1, build_ws_frame(1, f"m{i}", mask=True)))
    assert [e.data for e in events if isinstance(e, TextMessage)] == [f"m{i}" for i in range(10)]
    assert [e.error_code for e in events if isinstance(e, ConnectionTerminated)] == [CALM]


def test_empty_data_with_end_stream_is_not_an_empty_frame():
    peer, _ = _peer("empty_frame_limit", burst=1)
    for sid in range(1, 21, 2):
        peer.send(peer.headers(sid, [(b":method", b"POST"), (b":scheme", b"https"), (b":path", b"/"),
                                     (b":authority", b"a")]), peer.data(sid, b"", end_stream=True))
    assert CALM not in goaway(peer.read())


@pytest.mark.parametrize("field, value, error", [
    ("ping_limit", 5, TypeError), ("ping_limit", (5, 1.0), TypeError),
    ("max_continuation_frames", -1, ValueError),
])
def test_limit_fields_are_checked(field, value, error):
    with pytest.raises(error, match=field):
        Config(**{field: value})


@pytest.mark.parametrize("burst, rate", [(0, 1.0), (5, -1.0), (5, float("inf")), (5, "1")])
def test_rate_limits_are_checked(burst, rate):
    with pytest.raises((ValueError, TypeError)):
        RateLimit(burst, rate)


def test_defaults_are_on():
    config = Config()
    assert all(getattr(config, f.name) is not None for f in dataclasses.fields(config) if f.name.endswith("_limit"))


# -- a peer that never opens its window (never reads) ------------------------------------------

def test_a_stream_whose_window_stays_closed_is_reset_after_send_stall_timeout():
    clock = Clock()
    peer = server_pair(Config(clock=clock, send_stall_timeout=60.0), INITIAL_WINDOW_SIZE=100)
    open_websocket(peer, 1)
    peer.ours.send_message(1, b"x" * 1000)
    assert peer.ours.outgoing_buffered(1) > 0
    peer.read()
    assert peer.ours.next_timeout() == clock.now + 60
    clock.now += 59
    assert peer.ours.handle_timeouts() == []
    peer.send(hf.WindowUpdateFrame(1, window_increment=50))      # progress: the stall starts over
    assert peer.ours.next_timeout() == clock.now + 60
    clock.now += 59.5
    assert peer.ours.handle_timeouts() == []
    clock.now += 1
    (closed,) = peer.ours.handle_timeouts()
    assert type(closed).__name__ == "WebSocketClosed" and closed.code == 1006
    assert "send_stall_timeout" in closed.reason
    assert {f.stream_id: f.error_code for f in peer.read() if isinstance(f, hf.RstStreamFrame)} == {1: ErrorCode.CANCEL}
    assert peer.ours.next_timeout() is None and 1 not in peer.ours.streams


def test_send_stall_timeout_none_waits_forever():
    clock = Clock()
    peer = server_pair(Config(clock=clock, send_stall_timeout=None), INITIAL_WINDOW_SIZE=0)
    open_websocket(peer, 1)
    peer.ours.send_message(1, b"x" * 10)
    clock.now += 1e6
    assert peer.ours.next_timeout() is None and peer.ours.handle_timeouts() == []
    assert peer.ours.outgoing_buffered(1) > 0
