"""The early handshake, the capability signal and early messages (Config.early_handshake,
announce_websocket_capability, unannounced_websocket_status), sans-IO: a client and a server
H2Connection exchanging bytes, and the frames on the wire read back with hyperframe."""

from __future__ import annotations

import pytest
from hyperframe import frame as hf

from tests.rawpeer import RawPeer
from ws2fast import Config, H2Connection
from ws2fast._core import build_goaway, build_rst_stream, build_settings
from ws2fast.errors import ErrorCode, SettingCode
from ws2fast.events import (
    BinaryMessage,
    SettingsReceived,
    StreamReset,
    TextMessage,
    WebSocketAccepted,
    WebSocketRejected,
    WebSocketRequested,
)
from ws2fast.exceptions import LocalProtocolError

EARLY = Config(early_handshake=True)


def _frames(data: bytes) -> list[hf.Frame]:
    frames = []
    data = data[24:] if data.startswith(b"PRI * HTTP/2.0") else data
    while data:
        frame, length = hf.Frame.parse_frame_header(memoryview(data[:9]))
        frame.parse_body(memoryview(data[9:9 + length]))
        frames.append(frame)
        data = data[9 + length:]
    return frames


def _pair(client_config: Config = EARLY, server_config: Config | None = None) -> tuple[H2Connection, H2Connection]:
    client = H2Connection(client_side=True, config=client_config)
    server = H2Connection(client_side=False, config=server_config or Config())
    client.initiate()
    server.initiate()
    return client, server


def _to(receiver: H2Connection, sender: H2Connection) -> list:
    return receiver.receive_data(sender.data_to_send())


def _messages(events: list) -> list:
    return [e.data for e in events if isinstance(e, (TextMessage, BinaryMessage))]


def test_early_connect_and_messages_leave_with_the_preface_and_are_delivered_after_accept():
    client, server_conn = _pair()
    server_first = server_conn.data_to_send()            # the server's SETTINGS, not yet delivered
    sid = client.open_websocket("/chat", "example.test")
    client.send_message(sid, "one")
    client.send_message(sid, b"two")
    client.send_message(sid, bytearray(b"three"))        # copied: the caller may reuse it
    first_write = client.data_to_send()
    frames = _frames(first_write)
    kinds = [type(f).__name__ for f in frames]
    assert kinds[:2] == ["SettingsFrame", "WindowUpdateFrame"] and "HeadersFrame" in kinds
    assert frames[0].settings[SettingCode.ENABLE_CONNECT_PROTOCOL] == 1     # the capability signal
    assert sum(isinstance(f, hf.DataFrame) and f.stream_id == sid for f in frames) == 3
    assert client.sent_early(sid) == ("one", b"two", b"three")

    events = server_conn.receive_data(first_write)
    requested = [e for e in events if isinstance(e, WebSocketRequested)]
    assert len(requested) == 1 and requested[0].speculative and requested[0].capability_announced
    assert not _messages(events)                         # held: never before the handler accepts
    delivered = server_conn.accept_websocket(sid)
    assert _messages(delivered) == ["one", b"two", b"three"]
    server_conn.send_message(sid, "welcome")

    events = client.receive_data(server_first + server_conn.data_to_send())
    assert any(isinstance(e, WebSocketAccepted) for e in events)
    assert _messages(events) == ["welcome"]
    assert client.sent_early(sid) == ()                  # taken: no copies kept any more
    client.send_message(sid, "after")
    assert _messages(_to(server_conn, client)) == ["after"]


def test_strict_client_against_a_server_with_every_option_on_sees_no_difference():
    server_config = Config(unannounced_websocket_status=None, early_handshake=True,
                           announce_websocket_capability=True)
    client, server_conn = _pair(Config(), server_config)
    with pytest.raises(LocalProtocolError, match="wait for SettingsReceived"):
        client.open_websocket("/", "example.test")
    first = client.data_to_send()
    assert SettingCode.ENABLE_CONNECT_PROTOCOL not in _frames(first)[0].settings
    server_conn.receive_data(first)
    client.receive_data(server_conn.data_to_send())
    server_conn.receive_data(client.data_to_send())       # the client's ACK
    sid = client.open_websocket("/", "example.test")
    with pytest.raises(LocalProtocolError, match="no open WebSocket"):
        client.send_message(sid, "too early")             # strict: messages wait for the 2xx
    events = _to(server_conn, client)
    requested = [e for e in events if isinstance(e, WebSocketRequested)]
    assert not requested[0].speculative and not requested[0].capability_announced
    server_conn.accept_websocket(sid)
    assert any(isinstance(e, WebSocketAccepted) for e in _to(client, server_conn))


def test_no_speculation_once_settings_came_without_the_setting():
    client = H2Connection(client_side=True, config=EARLY)
    client.initiate()
    client.receive_data(build_settings([(SettingCode.ENABLE_CONNECT_PROTOCOL, 0)]))
    with pytest.raises(LocalProtocolError, match="does not support WebSockets over HTTP/2"):
        client.open_websocket("/", "example.test")


def test_early_connect_after_settings_with_the_setting_is_not_speculative():
    client, server_conn = _pair()
    client.receive_data(server_conn.data_to_send())
    sid = client.open_websocket("/", "example.test")
    client.send_message(sid, "m")
    events = _to(server_conn, client)
    requested = [e for e in events if isinstance(e, WebSocketRequested)]
    assert not requested[0].speculative and requested[0].capability_announced
    server_conn.reject_websocket(sid, 403)
    rejected = [e for e in _to(client, server_conn) if isinstance(e, WebSocketRejected)]
    assert rejected[0].status == 403 and not rejected[0].speculative and rejected[0].undelivered == ("m",)


def _window_data(frames: list, sid: int) -> int:
    return sum(len(f.data) for f in frames if isinstance(f, hf.DataFrame) and f.stream_id == sid)


def test_early_messages_stay_within_the_65535_octet_windows_shared_by_early_streams():
    client = H2Connection(client_side=True, config=EARLY)
    client.initiate()
    a = client.open_websocket("/a", "example.test")
    b = client.open_websocket("/b", "example.test")
    for _ in range(3):
        client.send_message(a, b"x" * 20000)
    for _ in range(3):
        client.send_message(b, b"y" * 20000)
    frames = _frames(client.data_to_send())
    sent_a, sent_b = _window_data(frames, a), _window_data(frames, b)
    assert sent_a + sent_b <= 65535                       # the connection's initial window
    assert sent_a == 3 * (20000 + 8) and sent_b == 65535 - sent_a     # (frame headers: 4 + mask 4)
    assert client.outgoing_buffered(b) == 3 * 20008 - sent_b
    # The server's SETTINGS and WINDOW_UPDATE open the windows: the rest follows, in order.
    server_conn = H2Connection(client_side=False)
    server_conn.initiate()
    client.receive_data(server_conn.data_to_send())
    rest = _frames(client.data_to_send())
    assert _window_data(rest, b) == 3 * 20008 - sent_b
    assert client.sent_early(b) == (b"y" * 20000,) * 3


@pytest.mark.parametrize("how", ["status", "rst_stream", "goaway"])
def test_refusal_reports_exactly_the_early_messages_in_order(how):
    client = H2Connection(client_side=True, config=EARLY)
    client.initiate()
    sid = client.open_websocket("/", "example.test")
    sent = ["first", b"\x00second", "third" * 50]
    for message in sent:
        client.send_message(sid, message)
    peer = RawPeer(client)
    peer.read()
    if how == "status":
        events = peer.send(peer.settings(ENABLE_CONNECT_PROTOCOL=1),
                           peer.headers(sid, [(b":status", b"403")], end_stream=True))
    elif how == "rst_stream":
        events = peer.send(peer.settings(), build_rst_stream(sid, ErrorCode.PROTOCOL_ERROR))
    else:
        events = peer.send(peer.settings(), build_goaway(0, ErrorCode.NO_ERROR, b""))
    rejected = [e for e in events if isinstance(e, WebSocketRejected)]
    assert len(rejected) == 1
    r = rejected[0]
    assert r.undelivered == tuple(sent) and r.speculative
    assert (r.status, r.reset_code) == {"status": (403, None), "rst_stream": (0, ErrorCode.PROTOCOL_ERROR),
                                        "goaway": (0, ErrorCode.REFUSED_STREAM)}[how]
    with pytest.raises(LocalProtocolError):
        client.send_message(sid, "after the refusal")
    assert client.sent_early(sid) == ()


def test_server_discards_held_messages_unseen_when_it_rejects_and_releases_their_window():
    client, server_conn = _pair(EARLY, Config(connection_window_size=65535))
    sid = client.open_websocket("/", "example.test")
    client.send_message(sid, b"z" * 40000)
    events = _to(server_conn, client)
    assert any(isinstance(e, WebSocketRequested) for e in events) and not _messages(events)
    server_conn.reject_websocket(sid, 403, body=b"no")
    answer = server_conn.data_to_send()
    # What the server held is given back to the connection at once (the client can send on).
    updates = [f.window_increment for f in _frames(answer)
               if isinstance(f, hf.WindowUpdateFrame) and f.stream_id == 0]
    assert updates == [40008]
    rejected = [e for e in client.receive_data(answer) if isinstance(e, WebSocketRejected)]
    assert [(e.status, e.undelivered) for e in rejected] == [(403, (b"z" * 40000,))]


def test_server_drops_data_arriving_after_it_rejected():
    client, server_conn = _pair()
    sid = client.open_websocket("/", "example.test")
    events = _to(server_conn, client)
    assert any(isinstance(e, WebSocketRequested) for e in events)
    server_conn.reject_websocket(sid, 404)
    client.send_message(sid, "in flight")                 # sent before the 404 arrived
    events = _to(server_conn, client)
    assert not [e for e in events if not isinstance(e, SettingsReceived)], events


def test_unannounced_websocket_status_answers_clients_that_did_not_announce():
    server_config = Config(unannounced_websocket_status=501)
    # A strict client (no announcement): answered 501 without the handler seeing it.
    client, server_conn = _pair(Config(), server_config)
    client.receive_data(server_conn.data_to_send())
    server_conn.receive_data(client.data_to_send())
    client.open_websocket("/", "example.test")
    events = _to(server_conn, client)
    assert not any(isinstance(e, WebSocketRequested) for e in events)
    assert any(isinstance(e, StreamReset) and "did not announce" in e.message for e in events)
    assert [e.status for e in _to(client, server_conn) if isinstance(e, WebSocketRejected)] == [501]
    # A client that announced is served.
    client, server_conn = _pair(Config(announce_websocket_capability=True), server_config)
    client.receive_data(server_conn.data_to_send())
    server_conn.receive_data(client.data_to_send())
    client.open_websocket("/", "example.test")
    events = _to(server_conn, client)
    assert [e.capability_announced for e in events if isinstance(e, WebSocketRequested)] == [True]


def test_early_messages_go_uncompressed_and_later_ones_compressed_when_deflate_is_agreed():
    deflate = Config(early_handshake=True, permessage_deflate=True, compression_threshold=0)
    client, server_conn = _pair(deflate, Config(permessage_deflate=True))
    sid = client.open_websocket("/", "example.test")
    client.send_message(sid, "early " * 40)
    first_write = client.data_to_send()
    early = [f for f in _frames(first_write) if isinstance(f, hf.DataFrame) and f.stream_id == sid]
    assert early and not early[0].data[0] & 0x40           # RSV1 clear: not compressed
    server_conn.receive_data(first_write)
    delivered = server_conn.accept_websocket(sid)
    assert _messages(delivered) == ["early " * 40]
    events = _to(client, server_conn)
    accepted = [e for e in events if isinstance(e, WebSocketAccepted)]
    assert accepted and accepted[0].extensions
    client.send_message(sid, "later " * 40)
    later = client.data_to_send()
    frames = [f for f in _frames(later) if isinstance(f, hf.DataFrame)]
    assert frames[0].data[0] & 0x40                        # RSV1: compressed
    assert _messages(server_conn.receive_data(later)) == ["later " * 40]


def test_config_checks_the_new_options():
    with pytest.raises(ValueError):
        Config(unannounced_websocket_status=200)
    with pytest.raises(TypeError):
        Config(early_handshake=1)
    with pytest.raises(TypeError):
        Config(announce_websocket_capability="yes")
    assert Config(early_handshake=True).announces_websocket_capability
    assert not Config(early_handshake=True, announce_websocket_capability=False).announces_websocket_capability
    assert Config(announce_websocket_capability=True).announces_websocket_capability
    assert not Config().announces_websocket_capability
