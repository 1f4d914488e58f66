"""The ASGI WebSocket events (ws2fast/_asgi.py) as ws2fast.uvicorn.WebSocketProtocol runs them,
in process: the protocol is given a transport that records what is written (as uvicorn's own
tests drive theirs), and the client side is the ``websockets`` library's sans-IO client, which
parses every byte the server writes.  Real sockets, Starlette, FastAPI, Chromium and uvicorn's
own suite are in tests/interop/test_uvicorn*.py.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

pytest.importorskip("uvicorn", reason="uvicorn is not installed")

from uvicorn.config import Config  # noqa: E402
from uvicorn.server import ServerState  # noqa: E402
from websockets.client import ClientProtocol  # noqa: E402
from websockets.frames import Frame, Opcode  # noqa: E402
from websockets.http11 import Response  # noqa: E402
from websockets.uri import parse_uri  # noqa: E402

from ws2fast.exceptions import LocalProtocolError  # noqa: E402
from ws2fast.uvicorn import WebSocketProtocol  # noqa: E402


class Transport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False
        self.reading_paused = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 40000)}.get(name, default)

    def write(self, data: bytes) -> None:
        assert not self.closed, "written after close"
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.reading_paused = True

    def resume_reading(self) -> None:
        self.reading_paused = False


class Session:
    """One in-process WebSocket: our protocol, a recording transport, a sans-IO client."""

    def __init__(self, app: Any, subprotocols: list[str] | None = None) -> None:
        config = Config(app=app, lifespan="off", ws_ping_interval=None)
        config.load()
        self.state = ServerState()
        self.protocol = WebSocketProtocol(config=config, server_state=self.state, app_state={})
        self.transport = Transport()
        self.client = ClientProtocol(parse_uri("ws://127.0.0.1/chat?x=1"),
                                     subprotocols=subprotocols)  # type: ignore[arg-type]
        self.read = 0
        self.protocol.connection_made(self.transport)
        request = self.client.connect()
        self.client.send_request(request)
        self.protocol.data_received(b"".join(self.client.data_to_send()))

    def events(self) -> list[Any]:
        data = b"".join(self.transport.writes)[self.read:]
        self.read += len(data)
        self.client.receive_data(data)
        return self.client.events_received()

    def send(self, opcode: Opcode, payload: bytes) -> None:
        self.client.send_frame(Frame(opcode, payload))
        self.protocol.data_received(b"".join(self.client.data_to_send()))

    async def finished(self) -> None:
        await asyncio.wait_for(asyncio.gather(*self.state.tasks), 5)


async def _turns(n: int = 5) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


def test_messages_sent_in_one_loop_turn_go_out_in_one_write():
    async def app(scope, receive, send):
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        for i in range(100):
            await send({"type": "websocket.send", "text": str(i)})
        await receive()

    async def main():
        s = Session(app)
        await _turns()
        events = s.events()
        assert isinstance(events[0], Response) and events[0].status_code == 101
        assert [e.data.decode() for e in events[1:]] == [str(i) for i in range(100)]
        # the 101 (with its own write), then the 100 messages in one write at the turn's end
        assert len(s.transport.writes) == 2
        s.send(Opcode.CLOSE, b"\x03\xe8")
        await s.finished()
    asyncio.run(main())


def test_what_waits_for_the_turns_write_is_bounded():
    # An application that sends without ever waiting: every 64 KiB is written at once.
    sent = asyncio.Event()

    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        for _ in range(64):
            await send({"type": "websocket.send", "bytes": b"x" * 16384})
        sent.set()
        await receive()

    async def main():
        s = Session(app)
        await asyncio.wait_for(sent.wait(), 5)
        sizes = [len(w) for w in s.transport.writes[1:]]
        assert sum(sizes) >= 64 * 16384 - 65536
        assert max(sizes) <= 65536 + 16384 + 14
        assert len(sizes) >= 15
        s.send(Opcode.CLOSE, b"\x03\xe8")
        await s.finished()
    asyncio.run(main())


def test_receive_events_and_disconnect_after_the_queued_messages():
    got: list[Any] = []

    async def app(scope, receive, send):
        got.append(scope)
        got.append(await receive())
        await send({"type": "websocket.accept", "subprotocol": "b", "headers": [(b"x-extra", b"1")]})
        await asyncio.sleep(0.05)           # the client's messages and its Close queue up meanwhile
        for _ in range(3):
            got.append(await receive())
        got.append(await receive())         # asked again after the disconnect: the same answer

    async def main():
        s = Session(app, subprotocols=["a", "b"])
        await _turns()
        response = s.events()[0]
        assert response.headers["sec-websocket-protocol"] == "b" and response.headers["x-extra"] == "1"
        s.send(Opcode.TEXT, "é".encode())
        s.send(Opcode.BINARY, b"\x00\x01")
        s.send(Opcode.CLOSE, b"\x0f\xa1bye")
        await s.finished()
    asyncio.run(main())
    scope = got[0]
    assert scope["type"] == "websocket" and scope["http_version"] == "1.1" and scope["scheme"] == "ws"
    assert scope["path"] == "/chat" and scope["raw_path"] == b"/chat" and scope["query_string"] == b"x=1"
    assert scope["subprotocols"] == ["a", "b"] and scope["client"] == ("127.0.0.1", 40000)
    assert scope["extensions"] == {"websocket.http.response": {}}
    assert got[1:] == [{"type": "websocket.connect"}, {"type": "websocket.receive", "text": "é"},
                       {"type": "websocket.receive", "bytes": b"\x00\x01"},
                       {"type": "websocket.disconnect", "code": 4001, "reason": "bye"},
                       {"type": "websocket.disconnect", "code": 4001, "reason": "bye"}]


@pytest.mark.parametrize(("message", "error", "text"), [
    ({"type": "websocket.send"}, TypeError, "neither"),
    ({"type": "websocket.send", "bytes": b"a", "text": "a"}, TypeError, "both"),
    ({"type": "websocket.close", "code": 1006}, LocalProtocolError, "1006"),
    ({"type": "websocket.close", "code": 0}, LocalProtocolError, "close code 0"),
    ({"type": "websocket.close", "code": 1000, "reason": "x" * 124}, LocalProtocolError, "123"),
    ({"type": "websocket.accept"}, RuntimeError, "websocket.accept"),
])
def test_bad_messages_after_accept_raise_clear_errors(message, error, text):
    raised: list[BaseException] = []

    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        try:
            await send(message)
        except Exception as exc:
            raised.append(exc)
        await send({"type": "websocket.close", "code": 1000})

    async def main():
        s = Session(app)
        await _turns()
        s.send(Opcode.CLOSE, b"\x03\xe8")
        await s.finished()
        closes = [e for e in s.events() if isinstance(e, Frame) and e.opcode is Opcode.CLOSE]
        assert closes and closes[0].data[:2] == b"\x03\xe8"
    asyncio.run(main())
    assert len(raised) == 1 and isinstance(raised[0], error) and text in str(raised[0])


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.text = ""

    def emit(self, record: logging.LogRecord) -> None:
        self.text += self.format(record) + "\n"


def test_subprotocol_not_offered_is_an_application_error_answered_500():
    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept", "subprotocol": "nope"})

    records = _Records()
    logger = logging.getLogger("uvicorn.error")        # (uvicorn's loggers do not propagate)

    async def main():
        s = Session(app, subprotocols=["a"])
        logger.addHandler(records)                      # (after uvicorn's Config set its logging up)
        await s.finished()
        response = s.events()[0]
        assert response.status_code == 500 and response.body == b"Internal Server Error"
        assert s.transport.closed
    try:
        asyncio.run(main())
    finally:
        logger.removeHandler(records)
    assert "Exception in ASGI application" in records.text
    assert "did not offer the subprotocol 'nope'" in records.text


@pytest.mark.parametrize("headers", [[(b"connection", b"close")], [(b"bad name", b"x")], [(b"x", b"a\r\nb")]])
def test_an_accept_with_a_field_that_cannot_be_sent_is_answered_500(headers):
    raised: list[BaseException] = []

    async def app(scope, receive, send):
        await receive()
        try:
            await send({"type": "websocket.accept", "headers": headers})
        except ValueError as exc:
            raised.append(exc)
            raise

    async def main():
        s = Session(app)
        await s.finished()
        response = s.events()[0]
        assert response.status_code == 500 and s.transport.closed
    asyncio.run(main())
    assert len(raised) == 1


@pytest.mark.parametrize(("status", "expected"), [(404, 404), (302, 500), (700, 500)])
def test_denial_response_status(status, expected):
    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.http.response.start", "status": status,
                    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"999")]})
        await send({"type": "websocket.http.response.body", "body": b"ab", "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b"cd"})
        assert await receive() == {"type": "websocket.disconnect", "code": 1006}

    async def main():
        s = Session(app)
        await s.finished()
        response = s.events()[0]
        assert response.status_code == expected
        if expected == status:
            assert response.body == b"abcd" and response.headers["content-length"] == "4"
        assert response.headers["connection"] == "close"
        assert s.transport.closed
    asyncio.run(main())


def test_shutdown_closes_open_websockets_with_1012():
    got: list[Any] = []

    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        got.append(await receive())

    async def main():
        s = Session(app)
        await _turns()
        s.protocol.shutdown()
        await s.finished()
        frames = [e for e in s.events() if isinstance(e, Frame)]
        assert [(f.opcode, f.data) for f in frames] == [(Opcode.CLOSE, b"\x03\xf4")]
        assert s.transport.closed
    asyncio.run(main())
    assert got == [{"type": "websocket.disconnect", "code": 1012}]


def test_nagle_is_off_even_on_a_socket_uvicorn_took_with_fd():
    # uvicorn --fd wraps the listening socket as AF_UNIX, so the loop leaves Nagle on for its
    # TCP connections; the protocol turns it off (the last frames of a burst would otherwise
    # wait for the peer's delayed ACK).  On a real UNIX socket it does nothing, and no harm.
    import socket

    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    accepted, _ = listener.accept()
    as_uvicorn_sees_it = socket.fromfd(accepted.fileno(), socket.AF_UNIX, socket.SOCK_STREAM)
    unix_a, unix_b = socket.socketpair()
    try:
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
        for sock in (as_uvicorn_sees_it, unix_a):
            transport = Transport()
            transport.get_extra_info = lambda name, default=None, sock=sock: sock if name == "socket" else default

            async def app(scope, receive, send):
                pass

            async def main(transport=transport):
                config = Config(app=app, lifespan="off", ws_ping_interval=None)
                config.load()
                WebSocketProtocol(config=config, server_state=ServerState(), app_state={}).connection_made(transport)
            asyncio.run(main())
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    finally:
        for sock in (listener, client, accepted, as_uvicorn_sees_it, unix_a, unix_b):
            sock.close()
