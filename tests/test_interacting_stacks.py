"""ws2fast's H2Connection against an independent stack (h2 + wsproto framing), in memory,
both directions: several WebSockets on one connection, messages of 0 B to 1 MiB, text and
binary, ping/pong, clean close (END_STREAM both ways) and abort."""

from __future__ import annotations

import os

import h2.errors
import h2.events
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.h2peer import H2Peer, pump
from ws2fast import Config, H2Connection
from ws2fast.errors import ErrorCode, SettingCode
from ws2fast.events import (
    BinaryMessage,
    CloseReceived,
    Pong,
    SettingsReceived,
    TextMessage,
    WebSocketAccepted,
    WebSocketClosed,
    WebSocketRejected,
    WebSocketRequested,
)
from ws2fast.exceptions import LocalProtocolError

SIZES = [0, 1, 125, 126, 65535, 65536, 300_000, 1 << 20]


def _payloads():
    for i, size in enumerate(SIZES):
        yield ("é" * (size // 2) + "a" * (size % 2)) if i % 2 else os.urandom(size)


def _extended_connect(peer: H2Peer, path: str, extra: tuple[tuple[bytes, bytes], ...] = ()) -> int:
    """The h2 client asks for a WebSocket on a new stream (RFC 8441); returns its id."""
    sid = peer.conn.get_next_available_stream_id()
    peer.conn.send_headers(sid, [
        (b":method", b"CONNECT"), (b":protocol", b"websocket"), (b":scheme", b"https"),
        (b":path", path.encode()), (b":authority", b"example.test"), (b"sec-websocket-version", b"13"),
        *extra,
    ])
    return sid


def _server_with_h2_client(streams: int = 3):
    ours = H2Connection(client_side=False)
    ours.initiate()
    peer = H2Peer(client_side=True)
    pump(ours, peer)
    requested = []
    for i in range(streams):
        sid = _extended_connect(peer, f"/room/{i}", ((b"sec-websocket-protocol", b"chat, superchat"),
                                                     (b"origin", b"https://example.test")))
        requested.append(sid)
    events = pump(ours, peer)
    asks = [e for e in events if isinstance(e, WebSocketRequested)]
    assert [e.stream_id for e in asks] == requested
    assert [e.path for e in asks] == ["/room/0", "/room/1", "/room/2"][:streams]
    assert all(e.subprotocols == ("chat", "superchat") and e.origin == "https://example.test"
               for e in asks)
    for sid in requested:
        assert ours.accept_websocket(sid, subprotocol="chat") == []
        peer.attach(sid)
    pump(ours, peer)
    for sid in requested:
        response = [e for e in peer.events_of(h2.events.ResponseReceived) if e.stream_id == sid]
        assert dict(response[0].headers) == {b":status": b"200", b"sec-websocket-protocol": b"chat"}
    return ours, peer, requested


def _client_with_h2_server(streams: int = 3, **peer_kwargs):
    ours = H2Connection(client_side=True)
    ours.initiate()
    peer = H2Peer(client_side=False, **peer_kwargs)
    events = pump(ours, peer)
    assert any(isinstance(e, SettingsReceived) for e in events)
    sids = [ours.open_websocket(f"/s/{i}", "example.test", subprotocols=["chat"]) for i in range(streams)]
    events = pump(ours, peer)
    accepted = [e for e in events if isinstance(e, WebSocketAccepted)]
    assert [e.stream_id for e in accepted] == sids
    for sid in sids:
        fields = peer.requests[sid]
        assert fields[b":method"] == b"CONNECT" and fields[b":protocol"] == b"websocket"
        assert fields[b":path"].startswith(b"/s/") and fields[b":authority"] == b"example.test"
        assert fields[b"sec-websocket-version"] == b"13"
        assert b"sec-websocket-key" not in fields and b"upgrade" not in fields
    return ours, peer, sids


def _messages(events, kinds=(TextMessage, BinaryMessage)):
    return [e for e in events if isinstance(e, kinds)]


def test_h2_client_to_our_server_messages_every_size_both_ways():
    ours, peer, sids = _server_with_h2_client()
    sent = {sid: list(_payloads()) for sid in sids}
    received = []
    for i in range(len(SIZES)):
        for sid in sids:
            peer.send_message(sid, sent[sid][i])
        received += _messages(pump(ours, peer))
    for sid in sids:
        got = [e for e in received if e.stream_id == sid]
        assert [e.data for e in got] == sent[sid]
        assert [type(e) for e in got] == [BinaryMessage if isinstance(p, bytes) else TextMessage
                                          for p in sent[sid]]
    # echo everything back
    for sid in sids:
        for payload in sent[sid]:
            ours.send_message(sid, payload)
    pump(ours, peer)
    for sid in sids:
        assert peer.messages[sid] == sent[sid]


def test_our_client_to_h2_server_messages_every_size_both_ways():
    ours, peer, sids = _client_with_h2_server()
    sent = {sid: list(_payloads()) for sid in sids}
    for sid in sids:
        for payload in sent[sid]:
            ours.send_message(sid, payload)
    pump(ours, peer)
    for sid in sids:
        assert peer.messages[sid] == sent[sid]
    received = []
    for sid in sids:
        for payload in reversed(sent[sid]):
            peer.send_message(sid, payload)
        received += _messages(pump(ours, peer))
    for sid in sids:
        assert [e.data for e in received if e.stream_id == sid] == list(reversed(sent[sid]))


def test_ping_pong_both_ways_over_h2():
    ours, peer, sids = _server_with_h2_client(2)
    peer.send_ws(sids[0], peer.ws[sids[0]].ping(b"are you there"))
    events = pump(ours, peer)
    assert [(type(e), e.payload, e.stream_id) for e in events if not isinstance(e, Pong)] == [
        (type(events[0]), b"are you there", sids[0])]
    assert peer.messages[sids[0]] == [("pong", b"are you there")]
    ours.ping(sids[1], b"and you?")
    events = pump(ours, peer)
    assert peer.messages[sids[1]] == [("ping", b"and you?")]
    assert [(e.payload, e.stream_id) for e in events if isinstance(e, Pong)] == [(b"and you?", sids[1])]


def test_clean_close_initiated_by_h2_client_ends_stream_both_ways():
    ours, peer, sids = _server_with_h2_client(2)
    closing, other = sids
    peer.send_ws(closing, peer.ws[closing].close(1000, "done"))
    events = pump(ours, peer)
    assert CloseReceived(1000, "done", closing) in events
    assert WebSocketClosed(closing, 1000, "done", None) in events
    # our echo carried END_STREAM
    assert ("close", 1000, "") in peer.messages[closing] or ("close", 1000, None) in peer.messages[closing]
    assert closing in peer.ended
    peer.end(closing)
    pump(ours, peer)
    assert closing not in ours.streams
    # the other WebSocket is untouched
    peer.send_message(other, "still here")
    assert [e.data for e in _messages(pump(ours, peer))] == ["still here"]


def test_clean_close_initiated_by_our_server_ends_stream_both_ways():
    ours, peer, sids = _server_with_h2_client(1)
    sid = sids[0]
    ours.close_websocket(sid, 1001, "going away")
    pump(ours, peer)
    assert peer.messages[sid] == [("close", 1001, "going away")]
    assert sid not in peer.ended                  # our END_STREAM waits for the peer's Close
    peer.send_ws(sid, peer.ws[sid].close(1001, ""))
    peer.end(sid)
    events = pump(ours, peer)
    assert [e for e in events if isinstance(e, WebSocketClosed)] == [WebSocketClosed(sid, 1001, "", None)]
    assert sid in peer.ended
    assert ours.streams == {}


def test_clean_close_initiated_by_our_client_ends_stream_both_ways():
    ours, peer, sids = _client_with_h2_server(2)
    sid = sids[0]
    ours.close_websocket(sid, 1000, "bye")
    pump(ours, peer)
    assert peer.messages[sid] == [("close", 1000, "bye")]
    peer.send_ws(sid, peer.ws[sid].close(1000, "bye"))
    peer.end(sid)
    events = pump(ours, peer)
    assert WebSocketClosed(sid, 1000, "bye", None) in events
    assert sid in peer.ended and sid not in ours.streams
    ours.send_message(sids[1], b"x")
    pump(ours, peer)
    assert peer.messages[sids[1]] == [b"x"]


def test_abort_by_h2_client_resets_only_that_websocket():
    ours, peer, sids = _server_with_h2_client(2)
    peer.conn.reset_stream(sids[0], h2.errors.ErrorCodes.CANCEL)
    events = pump(ours, peer)
    assert events == [WebSocketClosed(sids[0], 1006, "", ErrorCode.CANCEL)]
    with pytest.raises(LocalProtocolError):
        ours.send_message(sids[0], "gone")
    ours.send_message(sids[1], "fine")
    pump(ours, peer)
    assert peer.messages[sids[1]] == ["fine"]


def test_abort_by_our_client_sends_rst_stream_cancel():
    ours, peer, sids = _client_with_h2_server(2)
    ours.abort_websocket(sids[0])
    pump(ours, peer)
    assert peer.reset == {sids[0]: h2.errors.ErrorCodes.CANCEL}
    peer.send_message(sids[1], "ok")
    assert [e.data for e in _messages(pump(ours, peer))] == ["ok"]


def test_h2_server_without_connect_protocol_setting_refuses_to_open():
    ours = H2Connection(client_side=True)
    ours.initiate()
    peer = H2Peer(client_side=False, enable_connect_protocol=False)
    pump(ours, peer)
    assert ours.remote_settings[SettingCode.ENABLE_CONNECT_PROTOCOL] == 0
    with pytest.raises(LocalProtocolError, match="ENABLE_CONNECT_PROTOCOL"):
        ours.open_websocket("/", "example.test")


def test_h2_server_rejection_reaches_our_client():
    ours = H2Connection(client_side=True)
    ours.initiate()
    peer = H2Peer(client_side=False)
    peer.connect_status = 403
    pump(ours, peer)
    sid = ours.open_websocket("/", "example.test")
    events = pump(ours, peer)
    assert events[0] == WebSocketRejected(sid, 403, ())
    assert sid not in ours.streams


def test_flow_control_with_small_windows_delivers_everything():
    # Tiny windows on both sides force queueing, WINDOW_UPDATE batching and resumption.
    config = Config(initial_window_size=1000, connection_window_size=65535)
    ours = H2Connection(client_side=True, config=config)
    ours.initiate()
    peer = H2Peer(client_side=False)
    pump(ours, peer)
    sid = ours.open_websocket("/", "example.test")
    pump(ours, peer)
    big = os.urandom(200_000)
    ours.send_message(sid, big)
    assert ours.outgoing_buffered(sid) > 0            # the peer's window is 65,535
    pump(ours, peer)
    assert peer.messages[sid] == [big]
    assert ours.outgoing_buffered(sid) == 0
    peer.send_message(sid, big)
    assert [e.data for e in _messages(pump(ours, peer))] == [big]


# -- release_on_consume: any mix of windows, streams and interleaving makes progress -------------

class _RoundRobinPeer(H2Peer):
    """An h2 client that interleaves its streams' DATA ``chunk`` octets at a time (as browsers
    do), so several WebSockets can each hold part of a message at once."""

    chunk = 16384

    def flush(self) -> None:
        moved = True
        while moved:
            moved = False
            for sid, buf in list(self._outgoing.items()):
                window = min(self.conn.local_flow_control_window(sid), self.chunk,
                             self.conn.max_outbound_frame_size)
                if window > 0 and buf:
                    self.conn.send_data(sid, bytes(buf[:window]))
                    del buf[:window]
                    moved = True
                if not buf:
                    del self._outgoing[sid]


def _release_on_consume_server(config: Config, streams: int, chunk: int):
    ours = H2Connection(client_side=False, config=config)
    ours.initiate()
    peer = _RoundRobinPeer(client_side=True)
    peer.chunk = chunk
    pump(ours, peer)
    sids = []
    for _ in range(streams):
        sids.append(_extended_connect(peer, "/"))
    pump(ours, peer)
    for sid in sids:
        ours.accept_websocket(sid)
        peer.attach(sid)
    pump(ours, peer)
    return ours, peer, sids


def _pump_acknowledging(ours, peer, lag: int, rounds: int = 100_000) -> list:
    """pump(), with an application that takes (acknowledges) every message ``lag`` rounds after
    it arrived."""
    got, untaken = [], []
    for _ in range(rounds):
        peer.flush()
        if untaken and (len(untaken) > lag or not lag):
            event = untaken.pop(0)
            ours.acknowledge(event.stream_id, event.wire_size)
        a = ours.data_to_send()
        if a:
            peer.receive(a)
        b = peer.conn.data_to_send()
        if b:
            for event in ours.receive_data(b):
                if isinstance(event, (TextMessage, BinaryMessage)):
                    got.append(event)
                    untaken.append(event)
        if not a and not b:
            if not untaken:
                return got
            lag = 0                             # the application catches up
    raise AssertionError("the two sides never went quiet")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conn_window=st.integers(65535, 200_000), stream_share=st.sampled_from([1, 2, 4, 8]),
       streams=st.integers(1, 5), chunk=st.integers(500, 20_000),
       sizes=st.lists(st.integers(0, 400_000), min_size=1, max_size=4), lag=st.integers(0, 3),
       data=st.data())
def test_release_on_consume_never_stalls_when_every_message_is_taken(
        conn_window, stream_share, streams, chunk, sizes, lag, data):
    # Messages held until acknowledged, parts of messages held while they arrive: whatever the
    # windows (a stream's as large as the connection's included) and however the peer
    # interleaves its streams, an application that takes every message (at once, or a few
    # round trips later) gets every message.
    config = Config(release_on_consume=True, connection_window_size=conn_window,
                    initial_window_size=conn_window // stream_share, max_message_size=None)
    ours, peer, sids = _release_on_consume_server(config, streams, chunk)
    sent = {}
    for sid in sids:
        sent[sid] = [bytes([sid]) * n for n in data.draw(st.permutations(sizes))]
        for message in sent[sid]:
            peer.send_ws(sid, peer.ws[sid].send_data(message, fin=True))
    got = _pump_acknowledging(ours, peer, lag)
    for sid in sids:
        assert [e.data for e in got if e.stream_id == sid] == sent[sid], f"stream {sid} stalled"
    assert all(s.recv_held == 0 and s.partial_held == 0 for s in ours.streams.values())
