"""RFC 8441 (WebSockets over HTTP/2), one test per requirement of §3-§5, each asserting the
exact answer on the wire and that other WebSockets on the connection keep working."""

from __future__ import annotations

from hyperframe import frame as hf

from tests.rawpeer import CONNECT, RawPeer, client_pair, goaway, open_websocket, rst, server_pair, status
from ws2fast import Config, H2Connection
from ws2fast._core import build_headers, build_settings
from ws2fast.errors import ErrorCode, SettingCode
from ws2fast.events import (
    ConnectionTerminated,
    DataReceived,
    StreamReset,
    TextMessage,
    WebSocketAccepted,
    WebSocketClosed,
    WebSocketRejected,
    WebSocketRequested,
)
from ws2fast.exceptions import LocalProtocolError


def _without(fields, name):
    return [(n, v) for n, v in fields if n != name]


def _echo_works(peer: RawPeer, sid: int) -> None:
    """The WebSocket on ``sid`` still carries messages both ways."""
    events = peer.send(peer.ws(sid, 1, "ping?"))
    assert TextMessage("ping?", sid) in events
    peer.ours.send_message(sid, "pong!")
    data = [f for f in peer.read() if isinstance(f, hf.DataFrame) and f.stream_id == sid]
    assert data and data[-1].data.endswith(b"pong!")


# -- §3 SETTINGS_ENABLE_CONNECT_PROTOCOL --------------------------------------------------------

def test_s3_server_sends_enable_connect_protocol_1_in_its_first_settings():
    ours = H2Connection(client_side=False)
    ours.initiate()
    first = RawPeer(ours).read()[0]
    assert isinstance(first, hf.SettingsFrame)
    assert first.settings[hf.SettingsFrame.ENABLE_CONNECT_PROTOCOL] == 1


def test_s3_value_other_than_0_or_1_is_a_connection_protocol_error():
    peer = client_pair()
    events = peer.send(build_settings([(SettingCode.ENABLE_CONNECT_PROTOCOL, 2)]))
    assert goaway(peer.read()) == [ErrorCode.PROTOCOL_ERROR]
    assert isinstance(events[-1], ConnectionTerminated) and not events[-1].remote


def test_s3_sender_must_not_send_0_after_1():
    peer = client_pair(ENABLE_CONNECT_PROTOCOL=1)
    peer.send(peer.settings(ENABLE_CONNECT_PROTOCOL=0))
    assert goaway(peer.read()) == [ErrorCode.PROTOCOL_ERROR]


def test_s3_client_uses_extended_connect_only_after_the_setting():
    ours = H2Connection(client_side=True)
    ours.initiate()
    peer = RawPeer(ours)
    try:
        ours.open_websocket("/", "example.test")
        raise AssertionError("extended CONNECT before the server's SETTINGS")
    except LocalProtocolError as exc:
        assert "ENABLE_CONNECT_PROTOCOL" in str(exc)
    peer.send(peer.settings(ENABLE_CONNECT_PROTOCOL=0))
    try:
        ours.open_websocket("/", "example.test")
        raise AssertionError("extended CONNECT although the server sent 0")
    except LocalProtocolError:
        pass
    peer.send(peer.settings(ENABLE_CONNECT_PROTOCOL=1))
    sid = ours.open_websocket("/", "example.test")
    assert any(isinstance(f, hf.HeadersFrame) and f.stream_id == sid for f in peer.read())


def test_s3_receipt_by_a_server_has_no_impact():
    peer = server_pair(ENABLE_CONNECT_PROTOCOL=1)
    open_websocket(peer, 1)
    _echo_works(peer, 1)


# -- §4 the extended CONNECT method -------------------------------------------------------------

def test_s4_scheme_path_and_authority_are_required_with_protocol():
    peer = server_pair()
    open_websocket(peer, 1)
    for sid, name in ((3, b":scheme"), (5, b":path"), (7, b":authority")):
        events = peer.send(peer.headers(sid, _without(CONNECT, name)))
        assert rst(peer.read()) == {sid: ErrorCode.PROTOCOL_ERROR}, name
        assert [type(e) for e in events] == [StreamReset]
    _echo_works(peer, 1)


def test_s4_protocol_only_on_connect():
    peer = server_pair()
    open_websocket(peer, 1)
    get = [(b":method", b"GET")] + [f for f in CONNECT if f[0] != b":method"]
    peer.send(peer.headers(3, get))
    assert rst(peer.read()) == {3: ErrorCode.PROTOCOL_ERROR}
    _echo_works(peer, 1)


def test_s4_protocol_without_our_setting_is_malformed():
    peer = server_pair(Config(enable_connect_protocol=False))
    peer.send(peer.headers(1, CONNECT))
    assert rst(peer.read()) == {1: ErrorCode.PROTOCOL_ERROR}
    assert not [e for e in peer.events if isinstance(e, WebSocketRequested)]


def test_s4_server_does_not_tunnel_to_authority():
    # :authority names the WebSocket's host (RFC 7540 §8.1.2.3), not a tunnel target.
    peer = server_pair()
    events = peer.send(peer.headers(1, CONNECT))
    (request,) = events
    assert isinstance(request, WebSocketRequested)
    assert (request.authority, request.path, request.scheme) == ("example.test", "/chat", "https")


# -- §5 bootstrapping WebSockets ----------------------------------------------------------------

def test_s5_protocol_must_be_websocket_else_501():
    peer = server_pair()
    open_websocket(peer, 1)
    other = [(n, b"not-websocket" if n == b":protocol" else v) for n, v in CONNECT]
    peer.send(peer.headers(3, other))
    frames = peer.read()
    assert status(frames, 3) == [b"501"]
    assert rst(frames) == {3: ErrorCode.NO_ERROR}
    _echo_works(peer, 1)


def test_s5_connection_and_upgrade_headers_must_not_be_included():
    peer = server_pair()
    open_websocket(peer, 1)
    peer.send(peer.headers(3, CONNECT + [(b"connection", b"upgrade")]))
    peer.send(peer.headers(5, CONNECT + [(b"upgrade", b"websocket")]))
    assert rst(peer.read()) == {3: ErrorCode.PROTOCOL_ERROR, 5: ErrorCode.PROTOCOL_ERROR}
    _echo_works(peer, 1)


def test_s5_content_length_is_malformed_on_connect():
    peer = server_pair()
    peer.send(peer.headers(1, CONNECT + [(b"content-length", b"0")]))
    assert rst(peer.read()) == {1: ErrorCode.PROTOCOL_ERROR}


def test_s5_sec_websocket_key_is_not_processed_but_tolerated():
    # HAProxy sends one; RFC 8441 §5 says the key/accept processing is superseded.
    peer = server_pair()
    events = peer.send(peer.headers(1, CONNECT + [(b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ==")]))
    assert isinstance(events[0], WebSocketRequested)
    peer.ours.accept_websocket(1)
    (response,) = [f for f in peer.read() if isinstance(f, hf.HeadersFrame)]
    assert dict(response.fields)[b":status"] == b"200"
    assert b"sec-websocket-accept" not in dict(response.fields)


def test_s5_scheme_http_for_ws_and_https_for_wss():
    peer = server_pair()
    http = [(n, b"http" if n == b":scheme" else v) for n, v in CONNECT]
    (request,) = peer.send(peer.headers(1, http))
    assert request.scheme == "http"
    client = client_pair(ENABLE_CONNECT_PROTOCOL=1)
    sid = client.ours.open_websocket("/x", "h.test", scheme="http")
    (headers,) = [f for f in client.read() if isinstance(f, hf.HeadersFrame)]
    assert dict(headers.fields)[b":scheme"] == b"http"
    assert headers.stream_id == sid


def test_s5_client_request_carries_the_handshake_fields_and_nothing_of_http1():
    client = client_pair(ENABLE_CONNECT_PROTOCOL=1)
    client.ours.open_websocket("/chat?x=1", "example.test", subprotocols=["a", "b"],
                               extensions=["permessage-deflate"], origin="https://o.test")
    (headers,) = [f for f in client.read() if isinstance(f, hf.HeadersFrame)]
    fields = headers.fields
    assert fields[:5] == [(b":method", b"CONNECT"), (b":protocol", b"websocket"), (b":scheme", b"https"),
                          (b":path", b"/chat?x=1"), (b":authority", b"example.test")]
    regular = dict(fields[5:])
    assert regular == {b"sec-websocket-version": b"13", b"sec-websocket-protocol": b"a, b",
                       b"sec-websocket-extensions": b"permessage-deflate", b"origin": b"https://o.test"}
    assert "END_STREAM" not in headers.flags


def test_s5_client_accepts_any_2xx():
    client = client_pair(ENABLE_CONNECT_PROTOCOL=1)
    sid = client.ours.open_websocket("/", "example.test")
    client.read()
    events = client.send(build_headers(sid, client.encoder.encode([(b":status", b"202")])))
    assert events == [WebSocketAccepted(sid, 202, None, (), ())]
    client.ours.send_message(sid, "hi")
    assert any(isinstance(f, hf.DataFrame) for f in client.read())


def test_s5_4xx_rejects_and_its_body_is_delivered():
    client = client_pair(ENABLE_CONNECT_PROTOCOL=1)
    sid = client.ours.open_websocket("/", "example.test")
    client.read()
    events = client.send(client.headers(sid, [(b":status", b"403")]),
                         client.data(sid, b"go away", end_stream=True))
    assert events[0] == WebSocketRejected(sid, 403, ())
    assert events[1] == DataReceived(sid, b"go away", 7)
    frames = client.read()
    assert any(isinstance(f, hf.DataFrame) and "END_STREAM" in f.flags for f in frames)
    assert sid not in client.ours.streams


def test_s5_server_rejects_with_status_and_body():
    peer = server_pair()
    peer.send(peer.headers(1, CONNECT))
    peer.ours.reject_websocket(1, 403, [(b"content-type", b"text/plain")], b"no")
    frames = peer.read()
    assert status(frames, 1) == [b"403"]
    assert [f.data for f in frames if isinstance(f, hf.DataFrame)] == [b"no"]
    assert rst(frames) == {1: ErrorCode.NO_ERROR}


def test_s5_version_other_than_13_is_refused_with_426():
    peer = server_pair()
    bad = [(n, b"8" if n == b"sec-websocket-version" else v) for n, v in CONNECT]
    peer.send(peer.headers(1, bad))
    frames = peer.read()
    assert status(frames, 1) == [b"426"]


def test_s5_end_stream_on_the_connect_is_malformed():
    peer = server_pair()
    peer.send(peer.headers(1, CONNECT, end_stream=True))
    assert rst(peer.read()) == {1: ErrorCode.PROTOCOL_ERROR}


def test_s5_after_the_handshake_only_data_rst_window_update_and_priority():
    peer = server_pair()
    open_websocket(peer, 1)
    open_websocket(peer, 3)
    peer.send(hf.PriorityFrame(1, depends_on=0, stream_weight=16),
              hf.WindowUpdateFrame(1, window_increment=10))
    assert rst(peer.read()) == {}
    _echo_works(peer, 1)
    events = peer.send(peer.headers(1, [(b"x-late", b"1")], end_stream=True))
    assert rst(peer.read()) == {1: ErrorCode.PROTOCOL_ERROR}
    assert [e for e in events if isinstance(e, WebSocketClosed)][0].reset_code == ErrorCode.PROTOCOL_ERROR
    _echo_works(peer, 3)


def test_s5_orderly_close_is_close_handshake_then_end_stream_both_ways():
    peer = server_pair()
    open_websocket(peer, 1)
    events = peer.send(peer.ws(1, 8, b"\x03\xe8"))
    assert WebSocketClosed(1, 1000, "", None) in events
    frames = peer.read()
    (echo,) = [f for f in frames if isinstance(f, hf.DataFrame)]
    assert echo.data == b"\x88\x02\x03\xe8" and "END_STREAM" in echo.flags
    assert rst(frames) == {}
    # The handshake is complete both ways and our side is ended: the stream waits for the
    # client's END_STREAM, but it no longer holds a concurrency slot.
    assert 1 in peer.ours.streams and peer.ours.closing_streams == 1
    assert peer.send(peer.data(1, b"", end_stream=True)) == []
    assert 1 not in peer.ours.streams and peer.ours.closing_streams == 0
    assert rst(peer.read()) == {}
    # A client that ends its side with its Close leaves nothing waiting.
    open_websocket(peer, 3)
    peer.send(peer.ws(3, 8, b"\x03\xe8", end_stream=True))
    frames = peer.read()
    assert rst(frames) == {} and 3 not in peer.ours.streams
    assert ["END_STREAM" in f.flags for f in frames if isinstance(f, hf.DataFrame)] == [True]


def test_s5_server_initiated_close_frees_the_slot_when_the_client_answers():
    peer = server_pair(Config(max_concurrent_streams=1))
    open_websocket(peer, 1)
    peer.ours.close_websocket(1, 1001, "going away")
    (close,) = [f for f in peer.read() if isinstance(f, hf.DataFrame)]
    assert "END_STREAM" not in close.flags and peer.ours.closing_streams == 0
    events = peer.send(peer.ws(1, 8, b"\x03\xe9"))                  # the client's Close only
    assert [e for e in events if isinstance(e, WebSocketClosed)] == [WebSocketClosed(1, 1001, "", None)]
    frames = peer.read()
    assert ["END_STREAM" in f.flags for f in frames if isinstance(f, hf.DataFrame)] == [True]
    assert peer.ours.closing_streams == 1
    open_websocket(peer, 3)                           # the only slot is free again
    _echo_works(peer, 3)


def test_s5_abort_is_rst_stream_cancel():
    peer = server_pair()
    open_websocket(peer, 1)
    open_websocket(peer, 3)
    peer.ours.abort_websocket(1)
    assert rst(peer.read()) == {1: ErrorCode.CANCEL}
    events = peer.send(hf.RstStreamFrame(3, error_code=ErrorCode.CANCEL))
    assert events == [WebSocketClosed(3, 1006, "", ErrorCode.CANCEL)]
    assert peer.ours.streams == {}


def test_s5_data_on_a_closed_websocket_stream_is_answered_and_affects_nothing_else():
    # hypercorn's bug: this DATA killed the whole connection.
    peer = server_pair()
    open_websocket(peer, 1)
    open_websocket(peer, 3)
    peer.send(peer.ws(1, 8, b"\x03\xe8", end_stream=True))
    assert 1 not in peer.ours.streams
    peer.read()
    events = peer.send(peer.ws(1, 1, "late"))
    frames = peer.read()
    assert rst(frames) == {1: ErrorCode.STREAM_CLOSED}
    assert goaway(frames) == []
    assert [e.stream_id for e in events] == [1] and isinstance(events[0], StreamReset)
    _echo_works(peer, 3)
    # The connection window still counts the late DATA: it was given back.
    assert peer.ours.local_window(0) > 0


def test_s5_browser_that_never_ends_its_side_does_not_exhaust_streams():
    # One major browser sends its Close without END_STREAM and then nothing.  Such a stream
    # stops holding a slot as soon as the server's Close and END_STREAM are out, not after the
    # close timeout (never reached here: the clock stands still), so 3,000 fit through 10
    # slots; past 10 of them waiting, the oldest is reset with NO_ERROR (RFC 9113 §8.1).
    now = [0.0]
    config = Config(max_concurrent_streams=10, close_timeout=600.0, clock=lambda: now[0])
    peer = server_pair(config)
    refused = 0
    resets: dict[int, int] = {}
    for i in range(3000):
        sid = 1 + 2 * i
        peer.send(peer.headers(sid, CONNECT))
        if sid not in peer.ours.streams:
            refused += 1
            continue
        peer.ours.accept_websocket(sid)
        events = peer.send(peer.ws(sid, 8, b"\x03\xe8"))
        assert WebSocketClosed(sid, 1000, "", None) in events
        frames = peer.read()
        assert goaway(frames) == []
        resets.update(rst(frames))
    assert refused == 0
    assert peer.ours.closing_streams == 10 and len(peer.ours.streams) == 10
    assert peer.ours.handle_timeouts() == []
    assert len(resets) == 2990 and set(resets.values()) == {ErrorCode.NO_ERROR}
    now[0] += 600.0                                   # the close timeout frees the rest
    assert peer.ours.handle_timeouts() == []
    resets.update(rst(peer.read()))
    assert len(resets) == 3000 and set(resets.values()) == {ErrorCode.NO_ERROR}
    assert peer.ours.streams == {} and peer.ours.streams_reset_after_close == 3000


def test_s5_unanswered_close_holds_its_slot_until_the_timeout():
    # A server-initiated close that the client never answers is not complete: the stream keeps
    # its slot until Config.close_timeout, then it is reset (CANCEL).
    now = [0.0]
    peer = server_pair(Config(max_concurrent_streams=2, close_timeout=1.0, clock=lambda: now[0]))
    for sid in (1, 3):
        open_websocket(peer, sid)
        peer.ours.close_websocket(sid, 1001)
    peer.send(peer.headers(5, CONNECT))
    assert rst(peer.read()) == {5: ErrorCode.REFUSED_STREAM}
    now[0] += 0.5
    assert peer.ours.handle_timeouts() == []
    now[0] += 0.6
    events = peer.ours.handle_timeouts()
    assert [(e.stream_id, e.code, e.reset_code) for e in events] == [(1, 1006, ErrorCode.CANCEL),
                                                                      (3, 1006, ErrorCode.CANCEL)]
    assert rst(peer.read()) == {1: ErrorCode.CANCEL, 3: ErrorCode.CANCEL}
    open_websocket(peer, 7)
    _echo_works(peer, 7)
