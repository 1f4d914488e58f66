"""ws2fast.H1Connection: RFC 6455 over HTTP/1.1 against the `websockets` sans-IO client and
server (an independent implementation), both directions, plus the opening-handshake rules."""

from __future__ import annotations

import os

import h11
import pytest
from websockets.client import ClientProtocol
from websockets.frames import Close, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

from ws2fast import H1Connection
from ws2fast.events import (
    BinaryMessage,
    CloseReceived,
    DataReceived,
    Pong,
    RequestReceived,
    StreamEnded,
    TextMessage,
    WebSocketAccepted,
    WebSocketClosed,
    WebSocketRejected,
    WebSocketRequested,
)
from ws2fast.exceptions import LocalProtocolError
from ws2fast.handshake import accept_key

SIZES = [0, 1, 125, 126, 65535, 65536, 1 << 20]


def _payloads():
    for i, size in enumerate(SIZES):
        yield ("ü" * (size // 2) + "a" * (size % 2)) if i % 2 else os.urandom(size)


def _pump_to_websockets(ours: H1Connection, theirs) -> list:
    """Move bytes both ways until quiet; returns our events."""
    events = []
    for _ in range(1000):
        a = ours.data_to_send()
        if a:
            theirs.receive_data(a)
        b = b"".join(theirs.data_to_send())
        if b:
            events += ours.receive_data(b)
        if not a and not b:
            return events
    raise AssertionError("never quiet")


def _frames(theirs) -> list:
    return list(theirs.events_received())


def _server_with_websockets_client(subprotocols=("chat",)):
    ours = H1Connection(client_side=False)
    client = ClientProtocol(parse_uri("ws://example.test/chat?x=1"), origin="http://example.test",
                            subprotocols=[Subprotocol(s) for s in subprotocols])
    client.send_request(client.connect())
    events = _pump_to_websockets(ours, client)
    (request,) = events
    assert isinstance(request, WebSocketRequested)
    assert (request.path, request.authority, request.origin) == ("/chat?x=1", "example.test",
                                                                 "http://example.test")
    assert request.subprotocols == tuple(subprotocols)
    assert ours.accept_websocket(0, subprotocol=subprotocols[0] if subprotocols else None) == []
    _pump_to_websockets(ours, client)
    (response,) = _frames(client)
    assert response.status_code == 101 and client.state is State.OPEN
    return ours, client


def _client_with_websockets_server():
    ours = H1Connection(client_side=True)
    server = ServerProtocol(subprotocols=[Subprotocol("chat")])
    ours.open_websocket("/path", "example.test", subprotocols=["chat", "other"], origin="http://o.test")
    server.receive_data(ours.data_to_send())
    (request,) = _frames(server)
    assert isinstance(request, Request) and request.path == "/path"
    server.send_response(server.accept(request))
    events = ours.receive_data(b"".join(server.data_to_send()))
    assert [type(e) for e in events] == [WebSocketAccepted]
    assert events[0].subprotocol == "chat"
    return ours, server


def test_websockets_client_to_our_server_every_size_both_ways():
    ours, client = _server_with_websockets_client()
    sent = list(_payloads())
    received = []
    for payload in sent:
        (client.send_text if isinstance(payload, str) else client.send_binary)(
            payload.encode() if isinstance(payload, str) else payload)
        received += _pump_to_websockets(ours, client)
    assert [e.data for e in received] == sent
    assert [type(e) for e in received] == [TextMessage if isinstance(p, str) else BinaryMessage for p in sent]
    assert all(e.stream_id == 0 for e in received)
    for payload in sent:
        ours.send_message(0, payload)
    _pump_to_websockets(ours, client)
    frames = _frames(client)
    assert [f.data.decode() if f.opcode == Opcode.TEXT else f.data for f in frames] == sent


def test_our_client_to_websockets_server_every_size_both_ways():
    ours, server = _client_with_websockets_server()
    sent = list(_payloads())
    for payload in sent:
        ours.send_message(0, payload)
    server.receive_data(ours.data_to_send())
    frames = _frames(server)
    assert [f.data.decode() if f.opcode == Opcode.TEXT else f.data for f in frames] == sent
    for payload in sent:
        if isinstance(payload, str):
            server.send_text(payload.encode())
        else:
            server.send_binary(payload)
    events = ours.receive_data(b"".join(server.data_to_send()))
    assert [e.data for e in events] == sent


def test_ping_pong_and_close_handshake_with_websockets_client():
    ours, client = _server_with_websockets_client()
    client.send_ping(b"hello")
    events = _pump_to_websockets(ours, client)
    assert [(type(e).__name__, e.payload) for e in events] == [("Ping", b"hello")]
    assert [(f.opcode, f.data) for f in _frames(client)] == [(Opcode.PONG, b"hello")]
    ours.ping(0, b"back")
    events = _pump_to_websockets(ours, client)          # websockets answers pings itself
    assert events == [Pong(b"back")]
    client.send_close(1000, "done")
    events = _pump_to_websockets(ours, client)
    assert events == [CloseReceived(1000, "done"), WebSocketClosed(0, 1000, "done")]
    assert ours.closed                                   # server closes TCP first (RFC 6455 §7.1.1)
    assert client.state is State.CLOSING and Close.parse(_frames(client)[-1].data).code == 1000


def test_close_initiated_by_our_client():
    ours, server = _client_with_websockets_server()
    assert ours.close_websocket(0, 1001, "bye") == []
    server.receive_data(ours.data_to_send())
    assert (server.close_rcvd.code, server.close_rcvd.reason) == (1001, "bye")
    events = ours.receive_data(b"".join(server.data_to_send()))
    assert events == [CloseReceived(1001, "bye"), WebSocketClosed(0, 1001, "bye")]
    assert ours.closed
    with pytest.raises(LocalProtocolError):
        ours.send_message(0, "too late")


def test_protocol_error_fails_with_1002_and_invalid_utf8_with_1007():
    for bad, code in ((b"\x81\x05hello", 1002), (b"\x81\x82abcd" + bytes([0xFF ^ 0x61, 0xFE ^ 0x62]), 1007)):
        ours, client = _server_with_websockets_client()
        events = ours.receive_data(bad)
        assert events == [WebSocketClosed(0, code, events[0].reason)]
        client.receive_data(ours.data_to_send())
        assert client.close_rcvd.code == code
        assert ours.closed


def test_frames_right_behind_the_upgrade_request_are_not_lost():
    ours = H1Connection(client_side=False)
    key = b"dGhlIHNhbXBsZSBub25jZQ=="
    request = (b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
    frame = b"\x81\x82\x00\x00\x00\x00hi"
    (event,) = ours.receive_data(request + frame)
    assert isinstance(event, WebSocketRequested)
    assert ours.accept_websocket(0) == [TextMessage("hi")]
    response = ours.data_to_send()
    assert response.startswith(b"HTTP/1.1 101 ")
    assert b"sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in response
    assert accept_key(key) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="       # RFC 6455 §1.3's example


def _upgrade(method=b"GET", connection=b"Connection: Upgrade\r\n", key=b"dGhlIHNhbXBsZSBub25jZQ==",
             version=b"13", extra=b""):
    return (method + b" / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n" + connection
            + b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: " + version + b"\r\n" + extra + b"\r\n")


@pytest.mark.parametrize("request_bytes, status", [
    (_upgrade(method=b"POST", extra=b"Content-Length: 0\r\n"), 400),
    (_upgrade(connection=b""), 400),
    (_upgrade(key=b"c2hvcnQ="), 400),
    (_upgrade(version=b"8"), 426),
], ids=["post", "no-connection-upgrade", "short-key", "version-8"])
def test_bad_upgrade_requests_are_answered_and_the_connection_lives(request_bytes, status):
    ours = H1Connection(client_side=False)
    assert ours.receive_data(request_bytes) == []
    response = ours.data_to_send()
    assert response.startswith(b"HTTP/1.1 %d " % status)
    if status == 426:
        assert b"sec-websocket-version: 13" in response.lower()
    events = ours.receive_data(b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n")
    assert isinstance(events[0], RequestReceived) and events[0].path == "/next"


def test_plain_requests_with_keep_alive_then_a_websocket():
    ours = H1Connection(client_side=False)
    events = ours.receive_data(b"POST /form HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
                               b"GET /page HTTP/1.1\r\nHost: a\r\n\r\n")
    assert events == [RequestReceived(0, "POST", "/form", "a", "http", ((b"host", b"a"), (b"content-length", b"3")),
                                      False), DataReceived(0, b"abc", 3), StreamEnded(0)]
    pipelined = ours.send_response(0, 200, [(b"content-type", b"text/plain")], b"ok")
    assert [type(e) for e in pipelined] == [RequestReceived, StreamEnded] and pipelined[0].path == "/page"
    assert ours.send_response(0, 404, body=b"no") == []
    out = ours.data_to_send()
    assert out.count(b"HTTP/1.1 ") == 2 and not ours.closed
    client = ClientProtocol(parse_uri("ws://a/ws"))
    client.send_request(client.connect())
    (request,) = _pump_to_websockets(ours, client)
    ours.accept_websocket(0)
    _pump_to_websockets(ours, client)
    assert client.state is State.OPEN


@pytest.mark.parametrize("ending", [b"Connection: close\r\n\r\n", b"\r\n"])
def test_a_request_that_ends_the_connection_is_answered_first(ending):
    # "Connection: close" (or the client's EOF right behind its request): the connection ends
    # once the answer is out, not before it.
    ours = H1Connection(client_side=False)
    events = ours.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n" + ending)
    if ending == b"\r\n":
        events += ours.receive_eof()
    assert isinstance(events[0], RequestReceived) and isinstance(events[-1], StreamEnded)
    assert not ours.closed and ours.response_pending(0)
    ours.send_response(0, 200, [], b"answer")
    assert ours.data_to_send().endswith(b"\r\n\r\nanswer") and ours.closed


def test_our_client_rejected_by_a_server():
    ours = H1Connection(client_side=True)
    ours.open_websocket("/", "a.test")
    ours.data_to_send()
    events = ours.receive_data(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno")
    assert events == [WebSocketRejected(0, 403, ((b"content-length", b"2"),)), DataReceived(0, b"no", 2),
                      StreamEnded(0)]


_SWITCH = b"HTTP/1.1 101 Switching Protocols\r\n"


@pytest.mark.parametrize("response", [
    _SWITCH + b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: wrong\r\n\r\n",
    _SWITCH + b"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n",
    (_SWITCH + b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n"
     b"Sec-WebSocket-Protocol: unoffered\r\n\r\n"),
], ids=["bad-accept", "no-upgrade", "unoffered-subprotocol"])
def test_our_client_fails_a_bad_101(response):
    ours = H1Connection(client_side=True)
    ours.open_websocket("/", "a.test")
    request = ours.data_to_send()
    key = [line.split(b": ")[1] for line in request.split(b"\r\n") if line.lower().startswith(b"sec-websocket-key")][0]
    events = ours.receive_data(response.replace(b"{accept}", accept_key(key).encode()))
    assert [type(e) for e in events] == [WebSocketRejected] and events[0].status == 101
    assert ours.closed and ours.session is None


def test_malformed_http_is_answered_400_and_closed():
    ours = H1Connection(client_side=False)
    events = ours.receive_data(b"GET / HTTP/1.1\r\nHost a\r\n\r\n")
    assert events[0].error_code == 1 and ours.closed
    assert ours.data_to_send().startswith(b"HTTP/1.1 400 ")


def test_eof_mid_websocket_is_abnormal_closure():
    ours, client = _server_with_websockets_client()
    assert ours.receive_eof() == [WebSocketClosed(0, 1006, "")]


def _h11_client_reading(request: bytes, response: bytes) -> list:
    """h11 (an independent parser) as the client that sent ``request``: what it makes of
    ``response``."""
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method=request.split(b" ")[0], target=b"/", headers=[(b"host", b"a")]))
    client.send(h11.EndOfMessage())
    client.receive_data(response)
    events = []
    while True:
        event = client.next_event()
        if event in (h11.NEED_DATA, h11.PAUSED):
            return events
        events.append(event)
        if isinstance(event, h11.EndOfMessage):
            return events


def test_response_to_head_has_the_content_length_and_no_body_and_keeps_the_connection():
    ours = H1Connection(client_side=False)
    events = ours.receive_data(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert [(type(e), getattr(e, "method", None)) for e in events] == [(RequestReceived, "HEAD"), (StreamEnded, None)]
    ours.send_response(0, 200, [(b"content-type", b"text/html")], b"<p>page</p>")
    out = ours.data_to_send()
    assert out.endswith(b"\r\n\r\n")                                 # nothing after the head
    response, end = _h11_client_reading(b"HEAD", out)
    assert response.status_code == 200 and (b"content-length", b"11") in response.headers
    assert isinstance(end, h11.EndOfMessage) and not ours.closed
    events = ours.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert [type(e) for e in events] == [RequestReceived, StreamEnded]
    ours.send_response(0, 200, [], b"<p>page</p>")
    assert ours.data_to_send().endswith(b"\r\n\r\n<p>page</p>")


def test_status_lines_carry_the_standard_reason_phrase():
    ours = H1Connection(client_side=False)
    for status, phrase in [(200, b"OK"), (404, b"Not Found"), (599, b"")]:
        ours.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        ours.send_response(0, status, [], b"")
        assert ours.data_to_send().startswith(b"HTTP/1.1 %d %s\r\n" % (status, phrase))
    ours.receive_data(_upgrade(version=b"8"))
    assert ours.data_to_send().startswith(b"HTTP/1.1 426 Upgrade Required\r\n")
    bad = H1Connection(client_side=False)
    bad.receive_data(b"GET / HTTP/1.1\r\nHost a\r\n\r\n")
    assert bad.data_to_send().startswith(b"HTTP/1.1 400 Bad Request\r\n")


def test_switching_protocols_has_its_reason_phrase():
    ours = H1Connection(client_side=False)
    ours.receive_data(_upgrade())
    ours.accept_websocket(0)
    assert ours.data_to_send().startswith(b"HTTP/1.1 101 Switching Protocols\r\n")


def test_a_refused_response_writes_nothing_and_the_request_still_waits():
    ours = H1Connection(client_side=False)
    ours.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    for status, headers, body in [(1000, [], b""), (101, [], b""), ("200", [], b""),
                                  (200, [(b"bad name", b"x")], b""), (200, [], "text")]:
        with pytest.raises((LocalProtocolError, ValueError, TypeError)):
            ours.send_response(0, status, headers, body)
        assert ours.data_to_send() == b"" and ours.response_pending(0)
    ours.send_response(0, 200, [], b"fine")
    assert ours.data_to_send().endswith(b"\r\n\r\nfine") and not ours.response_pending(0)


@pytest.mark.parametrize("value", [b"close", "Close", b" close "])
def test_connection_close_is_the_one_connection_field_a_response_may_carry(value):
    # The connection ends after that response (RFC 9112 §9.6): for plain responses and refusals.
    ours = H1Connection(client_side=False)
    ours.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    ours.send_response(0, 200, [(b"connection", value)], b"bye")
    response, data, end = _h11_client_reading(b"GET", ours.data_to_send())
    assert (b"connection", b"close") in response.headers and data.data == b"bye"
    assert isinstance(end, h11.EndOfMessage)
    assert ours.closed
    refused = H1Connection(client_side=False)
    refused.receive_data(_upgrade())
    refused.reject_websocket(0, 403, [("Connection", value)], b"no")
    assert refused.data_to_send().startswith(b"HTTP/1.1 403 ") and refused.closed
    for other in (b"keep-alive", b"upgrade"):
        again = H1Connection(client_side=False)
        again.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        with pytest.raises(ValueError):
            again.send_response(0, 200, [(b"connection", other)], b"")
        assert again.response_pending(0)
