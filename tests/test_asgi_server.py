"""ws2fast's ASGI server (ws2fast/asgi.py), in process on 127.0.0.1, driven by independent
clients over real sockets: httpx (HTTP/1.1, and HTTP/2 with its h2 extra), the ``h2`` library
(RST_STREAM mid-request), the ``websockets`` client (RFC 6455) and ws2fast's own client over
HTTP/2 (RFC 8441).  The scope keys, the event rules, the errors of the spec, lifespan, limits
and shutdown.  The command line, workers, Starlette and FastAPI in processes of their own, Node
and Chromium: tests/interop/test_asgi_server.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

httpx = pytest.importorskip("httpx", reason="httpx is not installed")
pytest.importorskip("h2", reason="h2 is not installed (httpx's http2 extra)")

import h2.config  # noqa: E402
import h2.connection  # noqa: E402
import h2.events  # noqa: E402
import websockets  # noqa: E402
from websockets.asyncio.client import connect as ws_connect  # noqa: E402

from tests.aio_helpers import LOOPS, run  # noqa: E402
from ws2fast import asgi  # noqa: E402
from ws2fast.aio import connect as ws2fast_connect  # noqa: E402
from ws2fast.exceptions import HandshakeFailed  # noqa: E402

VERSIONS = ["1.1", "2"]


@asynccontextmanager
async def serving(app: Any, **settings: Any) -> AsyncIterator[asgi.ASGIServer]:
    settings.setdefault("lifespan", "off")       # (the lifespan tests ask for it)
    async with asgi.serve(app, "127.0.0.1", 0, settings=asgi.Settings(**settings)) as server:
        yield server


def client(version: str) -> Any:
    # HTTP/2 in cleartext: prior knowledge (http1=False)
    return httpx.AsyncClient(http1=version == "1.1", http2=version == "2", timeout=10)


async def scope_app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                scope["state"]["started"] = "yes"
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b""
    if scope["type"] == "http":
        while True:
            message = await receive()
            body += message["body"]
            if not message["more_body"]:
                break
    report = {k: v for k, v in scope.items() if k not in ("headers", "raw_path", "query_string", "state")}
    report.update(headers=[[n.decode(), v.decode()] for n, v in scope["headers"]],
                  raw_path=scope["raw_path"].decode(), query_string=scope["query_string"].decode(),
                  state=dict(scope["state"]), body=body.decode())
    data = json.dumps(report).encode()
    if scope["type"] == "websocket":
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": data.decode()})
        await send({"type": "websocket.close"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": data})


async def _body_length(receive: Any) -> int:
    """Read a request body to its end; its length."""
    total = 0
    while True:
        message = await receive()
        total += len(message["body"])
        if not message["more_body"]:
            return total


# -- the http scope -------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_http_scope_keys(version: str) -> None:
    async def main() -> None:
        async with serving(scope_app, root_path="/mount", lifespan="on") as server, client(version) as c:
            r = await c.post(f"http://127.0.0.1:{server.port}/a%20b/c?x=1&y=%20", content=b"hello",
                             headers={"X-Custom": "One", "x-custom": "two"})
            assert r.status_code == 200 and r.http_version == f"HTTP/{version}".replace("HTTP/2", "HTTP/2")
            assert r.headers["server"] == "ws2fast"
            scope = r.json()
            assert scope["type"] == "http" and scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}
            assert scope["http_version"] == version and scope["scheme"] == "http" and scope["method"] == "POST"
            assert scope["root_path"] == "/mount"
            assert scope["path"] == "/mount/a b/c" and scope["raw_path"] == "/mount/a%20b/c"
            assert scope["query_string"] == "x=1&y=%20"
            assert scope["client"][0] == "127.0.0.1" and isinstance(scope["client"][1], int)
            assert scope["server"] == ["127.0.0.1", server.port]
            assert scope["state"] == {"started": "yes"}
            headers = scope["headers"]
            assert all(n == n.lower() and not n.startswith(":") for n, _ in headers)
            assert [v for n, v in headers if n == "x-custom"] == ["One", "two"]      # both, in order
            assert ["host", f"127.0.0.1:{server.port}"] in headers
            assert scope["body"] == "hello"

    run("asyncio", main())


@pytest.mark.parametrize("version", VERSIONS)
def test_websocket_scope_keys(version: str) -> None:
    async def main() -> None:
        async with serving(scope_app, lifespan="on") as server:
            url = f"ws://127.0.0.1:{server.port}/w%2Fs?q=1"
            if version == "2":
                async with ws2fast_connect(url, http2=True, subprotocols=["a", "b"]) as ws:
                    scope = json.loads(await ws.recv())
            else:
                async with ws_connect(url, subprotocols=["a", "b"]) as ws:   # type: ignore[list-item]
                    scope = json.loads(await ws.recv())
            assert scope["type"] == "websocket" and scope["http_version"] == version
            assert scope["scheme"] == "ws" and scope["path"] == "/w/s" and scope["raw_path"] == "/w%2Fs"
            assert scope["query_string"] == "q=1" and scope["subprotocols"] == ["a", "b"]
            assert scope["state"] == {"started": "yes"}
            names = [n for n, _ in scope["headers"]]
            assert "host" in names and not any(n.startswith(":") for n in names)

    run("asyncio", main())


@pytest.mark.parametrize("version", VERSIONS)
def test_request_body_streamed_and_response_streamed(version: str) -> None:
    chunks_seen: list[int] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        total = 0
        while True:
            message = await receive()
            assert message["type"] == "http.request"
            total += len(message["body"])
            chunks_seen.append(len(message["body"]))
            if not message["more_body"]:
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i in range(20):
            await send({"type": "http.response.body", "body": b"%d:" % i + b"x" * 100_000, "more_body": True})
        await send({"type": "http.response.body", "body": str(total).encode()})

    async def body() -> AsyncIterator[bytes]:
        for _ in range(50):
            yield b"y" * 100_000

    async def main() -> None:
        async with serving(app) as server, client(version) as c:
            async with c.stream("POST", f"http://127.0.0.1:{server.port}/", content=body()) as r:
                if version == "1.1":
                    assert r.headers["transfer-encoding"] == "chunked"
                data = b"".join([part async for part in r.aiter_bytes()])
            assert r.status_code == 200
            assert data.endswith(b"5000000") and len(data) == 20 * 100_000 + sum(len(b"%d:" % i) for i in range(20)) + 7
            assert re.findall(rb"(\d+):", data) == [b"%d" % i for i in range(20)]      # in order
            assert len(chunks_seen) > 1                        # streamed, not gathered whole

    run("asyncio", main())


@pytest.mark.parametrize("loop", LOOPS)
def test_request_body_backpressure(loop: str) -> None:
    # The application does not read: the connection stops reading once BODY_BUFFER octets wait.
    reading = asyncio.Event

    async def main() -> None:
        go = reading()
        held: list[int] = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            await go.wait()
            total = await _body_length(receive)
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": str(total).encode()})

        async with serving(app) as server:
            size = 64 * 1024 * 1024 - 1
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
            writer.write(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n" % size)
            chunk = b"z" * 65536
            sent = 0

            async def push() -> None:
                nonlocal sent
                while sent < size:
                    n = min(len(chunk), size - sent)
                    writer.write(chunk[:n])
                    sent += n
                    await writer.drain()

            pusher = asyncio.ensure_future(push())
            await asyncio.sleep(1.0)
            (conn,) = server.connections
            held.append(conn._body_buffered)  # type: ignore[attr-defined]
            assert not pusher.done(), "the whole body went in while the application read nothing"
            assert conn._reading_paused
            go.set()
            await pusher
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200")
            assert (await reader.read(100)).endswith(str(size).encode())
            writer.close()
        assert held[0] <= asgi.BODY_BUFFER + 256 * 1024, held

    run(loop, main(), timeout=60)


@pytest.mark.parametrize("version", VERSIONS)
def test_head_and_status_only(version: str) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 204 if scope["path"] == "/none" else 200,
                    "headers": [(b"content-length", b"5")] if scope["method"] == "HEAD" else []})
        await send({"type": "http.response.body", "body": b"" if scope["path"] == "/none" else b"hello"})

    async def main() -> None:
        async with serving(app) as server, client(version) as c:
            r = await c.head(f"http://127.0.0.1:{server.port}/")
            assert r.status_code == 200 and r.content == b"" and r.headers["content-length"] == "5"
            r = await c.get(f"http://127.0.0.1:{server.port}/none")
            assert r.status_code == 204 and r.content == b""
            r = await c.get(f"http://127.0.0.1:{server.port}/")        # the connection is still good
            assert r.content == b"hello"

    run("asyncio", main())


# -- disconnects ----------------------------------------------------------------------------------


async def _h2_open(port: int) -> tuple[Any, Any, Any]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    h2c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
    h2c.initiate_connection()
    writer.write(h2c.data_to_send())
    return reader, writer, h2c


async def _get(version: str, port: int, path: str) -> tuple[int, bytes]:
    """A GET by httpx (HTTP/1.1) or by the h2 library (HTTP/2), reading on past a GOAWAY."""
    if version == "1.1":
        async with client(version) as c:
            r = await c.get(f"http://127.0.0.1:{port}{path}")
            return r.status_code, r.content
    reader, writer, h2c = await _h2_open(port)
    h2c.send_headers(1, [(b":method", b"GET"), (b":scheme", b"http"), (b":path", path.encode()),
                         (b":authority", b"x")], end_stream=True)
    writer.write(h2c.data_to_send())
    status, body = 0, b""
    try:
        while True:
            data = await reader.read(65536)
            assert data, "the connection ended before the response"
            for event in h2c.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    status = int(dict(event.headers)[b":status"])
                elif isinstance(event, h2.events.DataReceived):
                    body += event.data
                    h2c.acknowledge_received_data(event.flow_controlled_length, 1)
                elif isinstance(event, h2.events.StreamEnded):
                    return status, body
                elif isinstance(event, h2.events.StreamReset):
                    raise AssertionError(f"stream reset: {event}")
            writer.write(h2c.data_to_send())
    finally:
        writer.close()


def test_http_disconnect_on_rst_stream() -> None:
    got: asyncio.Queue[Any] = asyncio.Queue()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        first = await receive()
        await got.put(first)
        await got.put(await receive())
        try:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"late"})
        except OSError as exc:
            await got.put(exc)

    async def main() -> None:
        async with serving(app) as server:
            reader, writer, h2c = await _h2_open(server.port)
            h2c.send_headers(1, [(b":method", b"POST"), (b":scheme", b"http"), (b":path", b"/"),
                                 (b":authority", b"x")])
            h2c.send_data(1, b"part")
            writer.write(h2c.data_to_send())
            first = await asyncio.wait_for(got.get(), 5)
            assert first == {"type": "http.request", "body": b"part", "more_body": True}
            h2c.reset_stream(1, 8)                              # CANCEL
            writer.write(h2c.data_to_send())
            assert await asyncio.wait_for(got.get(), 5) == {"type": "http.disconnect"}
            error = await asyncio.wait_for(got.get(), 5)
            assert isinstance(error, asgi.ClientDisconnected) and isinstance(error, OSError)
            writer.close()

    run("asyncio", main())


def test_http_disconnect_when_the_connection_is_lost() -> None:
    got: asyncio.Queue[Any] = asyncio.Queue()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await got.put(await receive())
        await got.put(await receive())

    async def main() -> None:
        async with serving(app) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\n12345")
            assert (await asyncio.wait_for(got.get(), 5))["body"] == b"12345"
            writer.close()
            assert await asyncio.wait_for(got.get(), 5) == {"type": "http.disconnect"}

    run("asyncio", main())


@pytest.mark.parametrize("version", VERSIONS)
def test_disconnect_after_the_response(version: str) -> None:
    # Once the response is complete, receive() says http.disconnect (not a hang).
    got: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
        got.append(await asyncio.wait_for(receive(), 5))

    async def main() -> None:
        async with serving(app) as server, client(version) as c:
            assert (await c.get(f"http://127.0.0.1:{server.port}/")).content == b"ok"
            for _ in range(50):
                if got:
                    break
                await asyncio.sleep(0.02)
        assert got == [{"type": "http.disconnect"}]

    run("asyncio", main())


# -- errors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_http_app_errors(version: str, caplog: pytest.LogCaptureFixture) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["path"] == "/raise-before":
            raise ValueError("before")
        if scope["path"] == "/return-before":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        if scope["path"] == "/raise-after":
            await send({"type": "http.response.body", "body": b"partial", "more_body": True})
            raise ValueError("after")
        if scope["path"] == "/start-only":
            return
        await send({"type": "http.response.body", "body": b"fine"})

    async def main() -> None:
        async with serving(app) as server, client(version) as c:
            base = f"http://127.0.0.1:{server.port}"
            with caplog.at_level(logging.ERROR, "ws2fast.asgi"):
                r = await c.get(base + "/raise-before")
                assert r.status_code == 500
                assert sum("Exception in ASGI application" in m for m in caplog.messages) == 1
                r = await c.get(base + "/return-before")
                assert r.status_code == 500
                assert any("without starting response" in m for m in caplog.messages)
                with pytest.raises(httpx.HTTPError):
                    await c.get(base + "/raise-after")             # ended, not left hanging
                assert sum("Exception in ASGI application" in m for m in caplog.messages) == 2
                # The head waits for the first body message, so nothing went out: a 500 still can.
                assert (await c.get(base + "/start-only")).status_code == 500
                assert any("without completing response" in m for m in caplog.messages)
            async with client(version) as c2:
                assert (await c2.get(base + "/fine")).content == b"fine"       # still serving

    run("asyncio", main())


def test_http_send_rules() -> None:
    errors: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        for bad in ({"type": "http.response.body", "body": b"x"},
                    {"type": "http.response.start", "status": 1000},
                    {"type": "websocket.send", "text": "x"}):
            try:
                await send(bad)
            except RuntimeError as exc:
                errors.append(str(exc))
        await send({"type": "http.response.start", "status": 201, "headers": [(b"X-Mixed-Case", b"v")]})
        try:
            await send({"type": "http.response.start", "status": 200})
        except RuntimeError as exc:
            errors.append(str(exc))
        await send({"type": "http.response.body", "body": b"done"})
        try:
            await send({"type": "http.response.body", "body": b"again"})
        except RuntimeError as exc:
            errors.append(str(exc))

    async def main() -> None:
        async with serving(app) as server, client("2") as c:
            r = await c.get(f"http://127.0.0.1:{server.port}/")
            assert r.status_code == 201 and r.content == b"done" and r.headers["x-mixed-case"] == "v"
            for _ in range(50):
                if len(errors) == 5:
                    break
                await asyncio.sleep(0.02)
        assert len(errors) == 5, errors
        assert "before http.response.start" in errors[0] and "1000" in errors[1]
        assert "websocket.send" in errors[2] and "already started" in errors[3] and "completed" in errors[4]

    run("asyncio", main())


@pytest.mark.parametrize("version", VERSIONS)
def test_websocket_app_errors(version: str, caplog: pytest.LogCaptureFixture) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        path = scope["path"]
        await receive()
        if path == "/close":
            await send({"type": "websocket.close"})
        elif path == "/raise-before":
            raise ValueError("before")
        elif path == "/return-before":
            return
        elif path == "/deny":
            await send({"type": "websocket.http.response.start", "status": 401,
                        "headers": [(b"content-type", b"text/plain"), (b"www-authenticate", b"Basic")]})
            await send({"type": "websocket.http.response.body", "body": b"who", "more_body": True})
            await send({"type": "websocket.http.response.body", "body": b" are you"})
        else:
            await send({"type": "websocket.accept", "subprotocol": "b", "headers": [(b"x-extra", b"1")]})
            await receive()
            if path == "/raise-after":
                raise ValueError("after")
            # /return-after: the application ends with the WebSocket open

    async def status(path: str) -> tuple[int, bytes, dict[str, str]]:
        url = f"ws://127.0.0.1:{server_port}{path}"
        try:
            if version == "2":
                async with ws2fast_connect(url, http2=True):
                    pass
            else:
                async with ws_connect(url):
                    pass
        except HandshakeFailed as exc:
            return exc.status, exc.body, {n.decode(): v.decode() for n, v in exc.headers}
        except websockets.InvalidStatus as exc:
            return exc.response.status_code, exc.response.body or b"", dict(exc.response.headers)
        raise AssertionError(f"{path} was accepted")

    async def close_code(path: str) -> tuple[int | None, Any, Any]:
        url = f"ws://127.0.0.1:{server_port}{path}"
        if version == "2":
            async with ws2fast_connect(url, http2=True, subprotocols=["a", "b"]) as ws:
                await ws.send("go")
                await ws.wait_closed()
                return ws.close_code, ws.subprotocol, {n.decode(): v.decode() for n, v in ws.headers}
        async with ws_connect(url, subprotocols=["a", "b"]) as ws:   # type: ignore[list-item]
            await ws.send("go")
            await ws.wait_closed()
            return ws.close_code, ws.subprotocol, ws.response.headers

    server_port = 0

    async def main() -> None:
        nonlocal server_port
        async with serving(app) as server:
            server_port = server.port
            with caplog.at_level(logging.ERROR, "ws2fast.asgi"):
                assert (await status("/close"))[0] == 403
                assert (await status("/raise-before"))[0] == 500
                assert (await status("/return-before"))[0] == 500
                code, body, headers = await status("/deny")
                assert (code, body, headers["www-authenticate"]) == (401, b"who are you", "Basic")
                code, subprotocol, headers = await close_code("/raise-after")
                assert code == 1011 and subprotocol == "b" and headers["x-extra"] == "1"
                assert headers["server"] == "ws2fast"
                code, _, headers = await close_code("/return-after")
                assert code == 1000
            assert sum("Exception in ASGI application" in m for m in caplog.messages) == 2

    run("asyncio", main())


# -- lifespan --------------------------------------------------------------------------------------


def test_lifespan_startup_failure_stops_the_server() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "lifespan"
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "no database"})

    async def main() -> None:
        with pytest.raises(asgi.LifespanFailure, match="no database"):
            async with serving(app, lifespan="auto"):
                raise AssertionError("served after a failed startup")

    run("asyncio", main())


def test_lifespan_modes() -> None:
    events: list[str] = []

    async def http_only(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"unsupported {scope['type']}")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def with_lifespan(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                events.append(message["type"])
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        await http_only(scope, receive, send)

    async def main() -> None:
        async with serving(http_only, lifespan="auto") as server, client("1.1") as c:       # auto: unsupported is fine
            assert (await c.get(f"http://127.0.0.1:{server.port}/")).content == b"ok"
        with pytest.raises(asgi.LifespanFailure):
            async with serving(http_only, lifespan="on"):
                pass
        async with serving(with_lifespan, lifespan="off") as server:
            pass
        assert events == []
        async with serving(with_lifespan, lifespan="auto") as server:
            assert events == ["lifespan.startup"]
        assert events == ["lifespan.startup", "lifespan.shutdown"]

    run("asyncio", main())


# -- limits and shutdown -----------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_limit_request_body(version: str) -> None:
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            seen.append(message["type"])
            if message["type"] == "http.disconnect" or not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"read it all"})

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"q" * 1000

    async def main() -> None:
        async with serving(app, limit_request_body=5000) as server, client(version) as c:
            base = f"http://127.0.0.1:{server.port}/"
            r = await c.post(base, content=b"p" * 6000)                  # content-length says it
            assert r.status_code == 413
            assert seen == []                                           # the application never ran
            try:
                r = await c.post(base, content=chunks())                  # no length: found on the way
                assert r.status_code == 413
            except httpx.HTTPError:
                pass        # (HTTP/1.1 may see the connection end as it still sends)
            for _ in range(50):
                if "http.disconnect" in seen:
                    break
                await asyncio.sleep(0.02)
            assert "http.disconnect" in seen
        async with serving(app, limit_request_body=5000) as server, client(version) as c:
            r = await c.post(f"http://127.0.0.1:{server.port}/", content=b"p" * 5000)
            assert r.content == b"read it all"

    run("asyncio", main())


@pytest.mark.parametrize("version", VERSIONS)
def test_shutdown_closes_websockets_with_1012_and_finishes_requests(version: str) -> None:
    disconnect: list[Any] = []
    in_request = asyncio.Event

    async def main() -> None:
        started = in_request()

        async def app(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "websocket":
                await receive()
                await send({"type": "websocket.accept"})
                disconnect.append(await receive())
                return
            started.set()
            await asyncio.sleep(0.5)
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"finished"})

        async with serving(app) as server:
            url = f"ws://127.0.0.1:{server.port}/"
            if version == "2":
                ws: Any = await ws2fast_connect(url, http2=True)
            else:
                ws = await ws_connect(url)
            # (over HTTP/2 the h2 library: httpcore fails a request in flight on any GOAWAY, even
            # a graceful one whose last_stream_id covers it)
            request = asyncio.ensure_future(_get(version, server.port, "/slow"))
            await started.wait()
            server.close()
            await ws.wait_closed()
            assert ws.close_code == 1012
            assert await request == (200, b"finished")
        assert disconnect == [{"type": "websocket.disconnect", "code": 1012}]

    run("asyncio", main())


def test_limit_concurrency_and_proxy_headers() -> None:
    release = asyncio.Event

    async def main() -> None:
        gate = release()

        async def app(scope: Any, receive: Any, send: Any) -> None:
            if scope["path"] == "/hold":
                await gate.wait()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body",
                        "body": f"{scope['client'][0]} {scope['scheme']}".encode()})

        async with serving(app, limit_concurrency=1, proxy_headers=True) as server, client("2") as c:
            base = f"http://127.0.0.1:{server.port}"
            held = asyncio.ensure_future(c.get(base + "/hold"))
            await asyncio.sleep(0.2)
            r = await c.get(base + "/")
            assert r.status_code == 503 and r.headers["retry-after"] == "1"
            gate.set()
            assert (await held).status_code == 200
            r = await c.get(base + "/", headers={"x-forwarded-for": "203.0.113.7, 10.0.0.1",
                                                 "x-forwarded-proto": "https"})
            assert r.content == b"10.0.0.1 https"
        async with serving(app, proxy_headers=True, forwarded_allow_ips=("10.9.9.9",)) as server, client("2") as c:
            r = await c.get(f"http://127.0.0.1:{server.port}/", headers={"x-forwarded-for": "203.0.113.7"})
            assert r.content == b"127.0.0.1 http"           # not a trusted proxy: ignored

    run("asyncio", main())


def test_import_app_errors() -> None:
    with pytest.raises(ValueError, match="module:attribute"):
        asgi.import_app("nocolon")
    with pytest.raises(ValueError, match="cannot import"):
        asgi.import_app("no_such_module_here:app")
    with pytest.raises(ValueError, match="no attribute"):
        asgi.import_app("tests.test_asgi_server:nothing")
    assert asgi.import_app("tests.test_asgi_server:scope_app") is scope_app
    with pytest.raises(ValueError, match="lifespan"):
        asgi.Settings(lifespan="sometimes")


@pytest.mark.parametrize("version", VERSIONS)
def test_client_gone_mid_response(version: str) -> None:
    # The application streams; the client goes away after the first part (HTTP/2: RST_STREAM,
    # HTTP/1.1: the connection closes): send() raises ClientDisconnected, receive() says
    # http.disconnect.
    outcome: asyncio.Queue[Any] = asyncio.Queue()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            for _ in range(10_000):
                await send({"type": "http.response.body", "body": b"s" * 16384, "more_body": True})
                await asyncio.sleep(0.001)
        except OSError as exc:
            await outcome.put(exc)
            await outcome.put(await receive())
            return
        await outcome.put("sent everything")

    async def main() -> None:
        async with serving(app) as server:
            if version == "1.1":
                reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
                writer.write(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
                assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
                await reader.read(1000)
                writer.transport.abort()
            else:
                reader, writer, h2c = await _h2_open(server.port)
                h2c.send_headers(1, [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"),
                                     (b":authority", b"x")], end_stream=True)
                writer.write(h2c.data_to_send())
                got_data = False
                while not got_data:
                    for event in h2c.receive_data(await reader.read(65536)):
                        got_data = got_data or isinstance(event, h2.events.DataReceived)
                h2c.reset_stream(1, 8)
                writer.write(h2c.data_to_send())
            error = await asyncio.wait_for(outcome.get(), 10)
            assert isinstance(error, asgi.ClientDisconnected), error
            assert await asyncio.wait_for(outcome.get(), 5) == {"type": "http.disconnect"}
            writer.close()

    run("asyncio", main())


@pytest.mark.parametrize("version", VERSIONS)
def test_keep_alive_and_header_timeouts(version: str) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def main() -> None:
        async with serving(app, timeout_keep_alive=0.3, timeout_header=0.3) as server:
            # an idle connection is closed after timeout_keep_alive
            if version == "1.1":
                reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
                writer.write(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
                assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
                assert await reader.readexactly(2) == b"ok"
                start = time.monotonic()
                assert await asyncio.wait_for(reader.read(), 5) == b""
                writer.close()
            else:
                assert await _get("2", server.port, "/") == (200, b"ok")
                reader, writer, h2c = await _h2_open(server.port)
                start = time.monotonic()
                closing = []
                while data := await asyncio.wait_for(reader.read(65536), 5):
                    closing += [e for e in h2c.receive_data(data) if isinstance(e, h2.events.ConnectionTerminated)]
                assert closing and closing[0].error_code == 0       # GOAWAY(NO_ERROR), then the close
                writer.close()
            assert 0.2 < time.monotonic() - start < 3
            # a request head that does not come whole within timeout_header: dropped
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"GET / HTTP/1.1\r\nhost: x\r\n")
            start = time.monotonic()
            assert await asyncio.wait_for(reader.read(), 5) == b""
            assert time.monotonic() - start < 3
            writer.close()

    run("asyncio", main())


@pytest.mark.parametrize("version", VERSIONS)
def test_ws_max_size(version: str) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        while (await receive())["type"] != "websocket.disconnect":
            pass

    async def main() -> None:
        async with serving(app, ws_max_size=1000) as server:
            url = f"ws://127.0.0.1:{server.port}/"
            if version == "2":
                async with ws2fast_connect(url, http2=True) as ws:
                    await ws.send(b"x" * 1001)
                    await ws.wait_closed()
                    assert ws.close_code == 1009
            else:
                async with ws_connect(url) as ws:
                    await ws.send(b"x" * 1001)
                    await ws.wait_closed()
                    assert ws.close_code == 1009

    run("asyncio", main())


def test_expect_100_continue() -> None:
    # HTTP/1.1: "100 Continue" once the application asks for the body; none if it answers
    # without reading it.
    async def app(scope: Any, receive: Any, send: Any) -> None:
        body = b""
        if scope["path"] == "/read":
            while True:
                message = await receive()
                body += message["body"]
                if not message["more_body"]:
                    break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"got %d" % len(body)})

    async def main() -> None:
        async with serving(app) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"POST /read HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\nexpect: 100-continue\r\n\r\n")
            assert await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5) == b"HTTP/1.1 100 Continue\r\n\r\n"
            writer.write(b"hello")
            assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
            assert await reader.readexactly(5) == b"got 5"
            writer.close()
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"POST /skip HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\nexpect: 100-continue\r\n\r\n")
            assert (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)).startswith(b"HTTP/1.1 200")
            writer.close()

    run("asyncio", main())


def test_http2_body_backpressure_is_per_stream() -> None:
    # A stream whose application does not read is held by its own window (the client cannot
    # send past it), while another stream of the same connection is answered; once the
    # application reads, the window comes back and the whole body arrives.
    async def main() -> None:
        go = asyncio.Event()

        async def app(scope: Any, receive: Any, send: Any) -> None:
            total = 0
            if scope["path"] == "/upload":
                await go.wait()
                total = await _body_length(receive)
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": str(total).encode()})

        async with serving(app) as server:
            reader, writer, h2c = await _h2_open(server.port)
            size = 3 * 1024 * 1024
            h2c.send_headers(1, [(b":method", b"POST"), (b":scheme", b"http"), (b":path", b"/upload"),
                                 (b":authority", b"x")])
            sent = 0
            bodies: dict[int, bytes] = {}
            ended: set[int] = set()

            def push() -> None:
                nonlocal sent
                while sent < size:
                    n = min(h2c.local_flow_control_window(1), h2c.max_outbound_frame_size, size - sent)
                    if n <= 0:
                        return
                    sent += n
                    h2c.send_data(1, b"u" * n, end_stream=sent == size)

            async def pump(until: Any) -> None:
                while True:
                    push()
                    writer.write(h2c.data_to_send())
                    if until():
                        return
                    data = await asyncio.wait_for(reader.read(65536), 5)
                    assert data, "the connection ended"
                    for event in h2c.receive_data(data):
                        if isinstance(event, h2.events.DataReceived):
                            bodies[event.stream_id] = bodies.get(event.stream_id, b"") + event.data
                            h2c.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                        elif isinstance(event, h2.events.StreamEnded):
                            ended.add(event.stream_id)

            # (the server's SETTINGS raise the stream window to 256 KiB: read them first)
            await pump(lambda: h2c.remote_settings.initial_window_size == 262144
                       and h2c.local_flow_control_window(1) == 0)
            with contextlib.suppress(asyncio.TimeoutError):      # a WINDOW_UPDATE would come now
                h2c.receive_data(await asyncio.wait_for(reader.read(65536), 0.5))
            push()
            held_at = sent
            assert held_at == 262144, held_at               # the stream's window, nothing more
            h2c.send_headers(3, [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/other"),
                                 (b":authority", b"x")], end_stream=True)
            await pump(lambda: 3 in ended)
            assert bodies[3] == b"0" and sent == held_at     # answered while stream 1 stays held
            go.set()
            await pump(lambda: 1 in ended)
            assert bodies[1] == str(size).encode()
            writer.close()

    run("asyncio", main(), timeout=60)
