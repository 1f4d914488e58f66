"""The asyncio client and server against each other over real sockets on 127.0.0.1: cleartext
HTTP/1.1 Upgrade, cleartext HTTP/2 by prior knowledge, TLS with ALPN (h2 and http/1.1), many
WebSockets on one connection, plain requests beside them, the hooks, backpressure, shutdown.
Every test runs on asyncio's loop and on uvloop's."""

from __future__ import annotations

import asyncio
import os

import numpy as np
import pytest

import ws2fast
from tests.aio_helpers import client_context, run, server_context
from ws2fast import Accept, Config, Reject
from ws2fast.exceptions import ConnectionClosedError, ConnectionClosedOK, HandshakeFailed

SIZES = [0, 1, 125, 126, 127, 65535, 65536, 65537, 1 << 20]


async def echo(ws):
    async for message in ws:
        await ws.send(message)


def _messages():
    for i, size in enumerate(SIZES):
        yield ("ä" * (size // 2) + "z" * (size % 2)) if i % 2 else os.urandom(size)


@pytest.mark.parametrize("mode", ["h1", "h2c", "tls-h2", "tls-h1"])
def test_echo_every_size_over_each_transport(loop_kind, certificate, mode):
    async def main():
        ssl = server_context(*certificate) if mode.startswith("tls") else None
        async with ws2fast.serve(echo, "127.0.0.1", 0, ssl=ssl) as server:
            scheme = "wss" if ssl else "ws"
            kwargs = {"http2": True} if mode == "h2c" else {"http2": False} if mode == "tls-h1" else {}
            if ssl:
                kwargs["ssl"] = client_context(certificate[0])
            async with ws2fast.connect(f"{scheme}://127.0.0.1:{server.port}/echo", **kwargs) as ws:
                assert ws.http_version == ("HTTP/1.1" if mode in ("h1", "tls-h1") else "HTTP/2")
                for message in _messages():
                    await ws.send(message)
                    assert await ws.recv() == message
            assert ws.close_code == 1000
    run(loop_kind, main())


def test_many_websockets_on_one_http2_connection(loop_kind):
    async def main():
        seen = []

        async def handler(ws):
            seen.append(ws.http_version)
            async for message in ws:
                await ws.send(f"{ws.path}:{message}")

        async with ws2fast.serve(handler, "127.0.0.1", 0) as server:
            async with ws2fast.Client(f"http://127.0.0.1:{server.port}") as client:
                sockets = [await client.websocket(f"/{i}") for i in range(20)]
                assert len({id(ws._connection) for ws in sockets}) == 1
                for i, ws in enumerate(sockets):
                    await ws.send(str(i))
                for i, ws in enumerate(sockets):
                    assert await ws.recv() == f"/{i}:{i}"
                status, headers, body = await client.request("GET", "/plain")
                assert status == 404 and body == b"not found\n"
        assert seen == ["HTTP/2"] * 20
    run(loop_kind, main())


def test_large_messages_on_many_websockets_at_once_over_one_http2_connection(loop_kind):
    # Eight 1 MiB messages interleaved on one connection: with the default windows, the parts
    # of messages in progress on eight streams could once fill the whole connection window,
    # none of them complete, and the connection stalled for good.
    async def main():
        async with ws2fast.serve(echo, "127.0.0.1", 0) as server:
            async with ws2fast.Client(f"http://127.0.0.1:{server.port}") as client:
                sockets = [await client.websocket(f"/{i}") for i in range(8)]
                payloads = [os.urandom(1 << 20) for _ in sockets]

                async def one(ws, payload):
                    for _ in range(3):
                        await ws.send(payload)
                        assert await ws.recv() == payload

                await asyncio.wait_for(asyncio.gather(*map(one, sockets, payloads)), 20)
    run(loop_kind, main(), timeout=40)


def test_plain_requests_beside_websockets_on_both_versions(loop_kind):
    async def main():
        def page(request):
            text = f"<p>{request.method} {request.path} {request.http_version}</p>"
            return 200, [(b"content-type", b"text/html")], text.encode()

        async with ws2fast.serve(echo, "127.0.0.1", 0, http_handler=page) as server:
            async with ws2fast.Client(f"http://127.0.0.1:{server.port}") as client:
                status, _, body = await client.request("GET", "/index.html")
                assert (status, body) == (200, b"<p>GET /index.html HTTP/2</p>")
                ws = await client.websocket("/ws")
                await ws.send("after the page")
                assert await ws.recv() == "after the page"
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"GET /h1 HTTP/1.1\r\nHost: x\r\n\r\n")
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 ")
            writer.close()
    run(loop_kind, main())


def test_origin_allow_list_subprotocols_and_process_request(loop_kind):
    async def main():
        def process_request(request):
            if request.path == "/forbidden":
                return Reject(401, [(b"www-authenticate", b"Bearer")], b"who are you?")
            return Accept(headers=[(b"x-served-by", b"ws2fast")])

        async def handler(ws):
            await ws.send(f"{ws.subprotocol}")

        async with ws2fast.serve(handler, "127.0.0.1", 0, origins=["https://good.test"],
                                 subprotocols=["v2", "v1"], process_request=process_request) as server:
            for http2 in (False, True):
                url = f"ws://127.0.0.1:{server.port}"
                async with ws2fast.connect(url + "/ok", origin="https://good.test", subprotocols=["v1", "v2"],
                                           http2=http2) as ws:
                    assert ws.subprotocol == "v2" and await ws.recv() == "v2"
                    assert (b"x-served-by", b"ws2fast") in ws.headers
                with pytest.raises(HandshakeFailed) as info:
                    await ws2fast.connect(url + "/ok", origin="https://evil.test", http2=http2)
                assert info.value.status == 403
                with pytest.raises(HandshakeFailed) as info:
                    await ws2fast.connect(url + "/forbidden", origin="https://good.test", http2=http2)
                assert info.value.status == 401 and info.value.body == b"who are you?"
    run(loop_kind, main())


def test_recv_into_numpy_without_copy_and_too_small_buffer(loop_kind):
    async def main():
        async def handler(ws):
            await ws.recv()
            await ws.send(np.arange(1000, dtype=np.float64).tobytes())
            await ws.send(b"x" * 100)
            await ws.send("text")
            await ws.recv()

        async with ws2fast.serve(handler, "127.0.0.1", 0) as server:
            for http2 in (True, False):
                async with ws2fast.connect(f"ws://127.0.0.1:{server.port}/", http2=http2) as ws:
                    array = np.zeros(1000, dtype=np.float64)
                    waiting = asyncio.ensure_future(ws.recv_into(array))
                    await asyncio.sleep(0.01)                   # registered before it arrives
                    await ws.send("go")
                    assert await waiting == 8000
                    assert array[999] == 999.0
                    small = bytearray(10)
                    await asyncio.sleep(0.05)
                    with pytest.raises(ValueError):
                        await ws.recv_into(small)
                    assert await ws.recv() == b"x" * 100         # still there
                    with pytest.raises(TypeError):
                        await ws.recv_into(bytearray(100))
                    assert await ws.recv() == "text"
                    await ws.send("done")
    run(loop_kind, main())


def test_fragmented_sends_from_iterables(loop_kind):
    async def main():
        async with ws2fast.serve(echo, "127.0.0.1", 0) as server:
            for http2 in (True, False):
                async with ws2fast.connect(f"ws://127.0.0.1:{server.port}/", http2=http2) as ws:
                    await ws.send([b"ab", b"cd", b"ef"])
                    assert await ws.recv() == b"abcdef"

                    async def parts():
                        for part in ("héllo", " ", "wörld"):
                            yield part

                    await ws.send(parts())
                    assert await ws.recv() == "héllo wörld"
                    with pytest.raises(TypeError):
                        await ws.send(["a", b"b"])
    run(loop_kind, main())


def test_ping_and_close_codes(loop_kind):
    async def main():
        async def handler(ws):
            message = await ws.recv()
            if message == "fail":
                raise RuntimeError("boom")
            await ws.close(4000, "custom")

        async with ws2fast.serve(handler, "127.0.0.1", 0) as server:
            for http2 in (True, False):
                async with ws2fast.connect(f"ws://127.0.0.1:{server.port}/", http2=http2) as ws:
                    pong = await ws.ping(b"abc")
                    await asyncio.wait_for(pong, 5)
                    await ws.send("close please")
                    with pytest.raises(ConnectionClosedError) as info:
                        await ws.recv()
                    assert (info.value.code, info.value.reason) == (4000, "custom")
                async with ws2fast.connect(f"ws://127.0.0.1:{server.port}/", http2=http2) as ws:
                    await ws.send("fail")
                    with pytest.raises(ConnectionClosedError) as info:
                        await ws.recv()
                    assert info.value.code == 1011
    run(loop_kind, main())


def test_slow_consumer_stops_the_sender_through_flow_control(loop_kind):
    async def main():
        received = asyncio.Event()
        sent = []

        async def handler(ws):
            for i in range(200):
                await ws.send(b"z" * 16384)
                sent.append(i)
            received.set()
            await ws.recv()

        config = Config(initial_window_size=65535, connection_window_size=65535)
        async with ws2fast.serve(handler, "127.0.0.1", 0) as server:
            async with ws2fast.connect(f"ws://127.0.0.1:{server.port}/", http2=True, config=config) as ws:
                await asyncio.sleep(0.3)
                # the client has taken nothing: at most its windows' worth got out
                assert len(sent) < 10
                for _ in range(200):
                    assert len(await ws.recv()) == 16384
                await asyncio.wait_for(received.wait(), 5)
                await ws.send("thanks")
    run(loop_kind, main())


def test_graceful_shutdown_closes_websockets_with_1001_and_delivers_accepted_sends(loop_kind):
    async def main():
        started = asyncio.Event()

        async def handler(ws):
            for i in range(50):
                await ws.send(f"m{i}")
            started.set()
            await ws.wait_closed()

        server = await ws2fast.serve(handler, "127.0.0.1", 0)
        clients = [await ws2fast.connect(f"ws://127.0.0.1:{server.port}/", http2=http2) for http2 in (True, False)]
        await started.wait()
        server.close()
        await server.wait_closed()
        for ws in clients:
            got = []
            with pytest.raises(ConnectionClosedOK) as info:
                while True:
                    got.append(await ws.recv())
            assert got == [f"m{i}" for i in range(50)]
            assert info.value.code == 1001
    run(loop_kind, main())


def test_connect_to_a_server_without_http2_websockets_falls_back_to_http1(loop_kind, certificate):
    async def main():
        # ALPN h2 but no SETTINGS_ENABLE_CONNECT_PROTOCOL: the client must reconnect over HTTP/1.1.
        config = Config(enable_connect_protocol=False)
        async with ws2fast.serve(echo, "127.0.0.1", 0, ssl=server_context(*certificate), config=config) as server:
            async with ws2fast.connect(f"wss://127.0.0.1:{server.port}/", ssl=client_context(certificate[0])) as ws:
                assert ws.http_version == "HTTP/1.1"
                await ws.send("fallback")
                assert await ws.recv() == "fallback"
    run(loop_kind, main())


def test_certificates_are_verified_by_default(loop_kind, certificate):
    async def main():
        import ssl

        async with ws2fast.serve(echo, "127.0.0.1", 0, ssl=server_context(*certificate)) as server:
            with pytest.raises(ssl.SSLCertVerificationError):
                await ws2fast.connect(f"wss://127.0.0.1:{server.port}/")
    run(loop_kind, main())


def test_keepalive_pings_keep_a_healthy_websocket_open(loop_kind):
    async def main():
        config = Config(ping_interval=0.05, ping_timeout=1.0)
        pongs = []

        async def handler(ws):
            await asyncio.sleep(0.4)
            await ws.send("still here")

        async with ws2fast.serve(handler, "127.0.0.1", 0, config=config) as server:
            for http2 in (True, False):
                async with ws2fast.connect(f"ws://127.0.0.1:{server.port}/", http2=http2, config=config) as ws:
                    ws._pong = lambda payload, original=ws._pong: (pongs.append(payload), original(payload))
                    assert await ws.recv() == "still here"
        assert len(pongs) >= 4              # our client's pings were answered, on both versions
    run(loop_kind, main())


def test_keepalive_drops_a_peer_that_never_answers(loop_kind):
    async def main():
        config = Config(ping_interval=0.05, ping_timeout=0.2)
        async with ws2fast.serve(echo, "127.0.0.1", 0, config=config) as server:
            # HTTP/1.1: a client that completes the Upgrade, then never reads or answers a ping
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
            await reader.readuntil(b"\r\n\r\n")
            start = asyncio.get_running_loop().time()
            data = await asyncio.wait_for(reader.read(), 5)         # until EOF
            assert b"\x88" in data and b"\x03\xf3" in data           # a Close with 1011 came first
            assert asyncio.get_running_loop().time() - start < 2
            writer.close()
            # HTTP/2: a client that sends its preface and SETTINGS, then never answers a PING
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(ws2fast.frames.PREFACE + ws2fast.frames.build_settings({}))
            start = asyncio.get_running_loop().time()
            data = await asyncio.wait_for(reader.read(), 5)
            assert asyncio.get_running_loop().time() - start < 2
            pings = ws2fast.frames.FrameReader().feed(data)
            assert any(f.type == 6 and not f.ack for f in pings)
            writer.close()
    run(loop_kind, main())


def test_listener_callbacks_on_both_sides(loop_kind):
    async def main():
        log = []

        class Echo(ws2fast.WebSocketListener):
            def on_open(self, ws):
                log.append(("server open", ws.http_version))

            def on_message(self, ws, message):
                ws.send_nowait(message)

            def on_close(self, ws, code, reason):
                log.append(("server close", code))

        async def exchange(port, http2):
            done = asyncio.get_running_loop().create_future()
            got = []

            class Client(ws2fast.WebSocketListener):
                def on_open(self, ws):
                    ws.send_nowait("one")
                    ws.send_nowait(b"two")

                def on_message(self, ws, message):
                    got.append(message)
                    if len(got) == 2:
                        done.set_result(None)

            ws = await ws2fast.connect(f"ws://127.0.0.1:{port}/", http2=http2, listener=Client)
            await asyncio.wait_for(done, 5)
            assert got == ["one", b"two"] and ws.buffered_amount == 0
            await ws.close()
            await asyncio.sleep(0.05)

        async with ws2fast.serve(Echo, "127.0.0.1", 0) as server:
            for http2 in (True, False):
                await exchange(server.port, http2)
        assert ("server open", "HTTP/2") in log and ("server open", "HTTP/1.1") in log
        assert log.count(("server close", 1000)) == 2
    run(loop_kind, main())


def test_permessage_deflate_over_both_versions(loop_kind):
    async def main():
        config = Config(permessage_deflate=True, compression_threshold=0)
        async with ws2fast.serve(echo, "127.0.0.1", 0, config=config) as server:
            for http2 in (True, False):
                async with ws2fast.connect(f"ws://127.0.0.1:{server.port}/", http2=http2, config=config) as ws:
                    assert ws.extensions == ("permessage-deflate",)
                    for message in _messages():
                        await ws.send(message)
                        assert await ws.recv() == message
                # without the setting on the client, nothing is offered and nothing compressed
                async with ws2fast.connect(f"ws://127.0.0.1:{server.port}/", http2=http2) as ws:
                    assert ws.extensions == ()
                    await ws.send("plain")
                    assert await ws.recv() == "plain"
    run(loop_kind, main())


# -- server timeouts: idle connections ---------------------------------------------------------

IDLE = Config(idle_timeout=0.3, ping_interval=None)


def test_idle_connections_are_closed_and_busy_ones_are_not(loop_kind):
    async def slow_page(request):
        await asyncio.sleep(0.6)                 # a handler longer than idle_timeout
        return 200, [(b"content-type", b"text/plain")], b"slow but answered"

    async def main():
        loop = asyncio.get_running_loop()
        async with ws2fast.serve(echo, "127.0.0.1", 0, config=IDLE, http_handler=slow_page) as server:
            # HTTP/1.1 keep-alive: answered, then closed once idle
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            start = loop.time()
            data = await asyncio.wait_for(reader.read(), 5)           # until EOF
            assert b"slow but answered" in data
            assert 0.6 + 0.25 < loop.time() - start < 3
            writer.close()
            # HTTP/2: answered, then GOAWAY(NO_ERROR); the Client opens a new connection
            async with ws2fast.Client(f"http://127.0.0.1:{server.port}") as client:
                status, _, body = await client.request("GET", "/")
                assert (status, body) == (200, b"slow but answered")
                first = client.connection
                await asyncio.wait_for(first.closed, 3)
                assert first.engine.going_away          # the server sent GOAWAY
                # a WebSocket, idle for several idle_timeouts, stays open
                ws = await client.websocket("/quiet")
                assert client.connection is not first
                await asyncio.sleep(1.0)
                await ws.send("still open")
                assert await ws.recv() == "still open"
                await ws.close()
            # HTTP/1.1 WebSocket, idle for several idle_timeouts, stays open too
            async with ws2fast.connect(f"ws://127.0.0.1:{server.port}/", http2=False, config=IDLE) as ws:
                await asyncio.sleep(1.0)
                await ws.send("still open")
                assert await ws.recv() == "still open"
    run(loop_kind, main())


def test_keepalive_is_one_timer_per_connection_not_a_task_per_websocket(loop_kind, monkeypatch):
    pongs = []
    original = ws2fast.WebSocket._pong
    monkeypatch.setattr(ws2fast.WebSocket, "_pong", lambda ws, payload: (pongs.append(ws), original(ws, payload)))

    class Echo(ws2fast.WebSocketListener):
        def on_message(self, ws, message):
            ws.send_nowait(message)

    async def main():
        config = Config(ping_interval=0.05, ping_timeout=1.0)
        async with ws2fast.serve(Echo, "127.0.0.1", 0, config=config) as server:
            async with ws2fast.Client(f"http://127.0.0.1:{server.port}", config=config) as client:
                await (await client.websocket("/0")).close()
                tasks_before = len(asyncio.all_tasks())
                sockets = [await client.websocket(f"/{i}") for i in range(20)]
                await asyncio.sleep(0.3)                  # several keepalive rounds
                assert len(asyncio.all_tasks()) - tasks_before < 5
                for ws in sockets:
                    assert not ws.closed
                    await ws.send("x")
                    assert await ws.recv() == "x"
    run(loop_kind, main())
    # both sides pinged every WebSocket, several times, and every ping was answered
    assert len(pongs) >= 2 * 20 * 3


def test_a_flood_of_tiny_messages_is_bounded_by_count_not_only_by_window(loop_kind):
    # Over HTTP/2 the stream window bounds queued *bytes*; 40,000 one-octet messages fit in
    # it and would cost far more memory as objects.  Past Config.max_queued_messages the
    # connection stops reading; once the application takes them, every one arrives in order.
    config = Config(max_queued_messages=1000)

    async def main():
        seen: dict[str, object] = {}
        go = asyncio.Event()

        async def handler(ws):
            await go.wait()                              # the application is slow to read
            seen["queued"] = len(ws._messages)
            seen["paused"] = ws._connection._reading_paused
            got = [await ws.recv() for _ in range(40_000)]
            seen["in order"] = got == [str(i % 10) for i in range(40_000)]
            await ws.send("done")

        async with ws2fast.serve(handler, "127.0.0.1", 0, config=config) as server:
            async with ws2fast.connect(f"ws://127.0.0.1:{server.port}/", http2=True) as ws:
                for i in range(40_000):
                    ws.send_nowait(str(i % 10))
                await asyncio.sleep(0.5)                 # let the client write what it may
                go.set()
                assert await asyncio.wait_for(ws.recv(), 20) == "done"
        return seen

    seen = run(loop_kind, main(), timeout=60)
    assert seen["paused"] is True
    # at most the limit plus what one 64 KiB read can carry (7-octet frames)
    assert seen["queued"] <= 1000 + 65536 // 7 + 1, seen
    assert seen["in order"] is True


def test_client_opens_another_connection_past_the_servers_stream_limit(loop_kind):
    # The server allows 3 streams per connection; a Client asked for 7 WebSockets opens 3
    # connections (its default: no bound), and every WebSocket works.
    async def main():
        async with ws2fast.serve(echo, "127.0.0.1", 0, config=Config(max_concurrent_streams=3)) as server:
            async with ws2fast.Client(f"http://127.0.0.1:{server.port}") as client:
                sockets = await asyncio.gather(*(client.websocket(f"/{i}") for i in range(7)))
                assert len(client.connections) == 3 and len(server.connections) == 3
                assert sorted(len(c.websockets) for c in client.connections) == [1, 3, 3]
                for i, ws in enumerate(sockets):
                    await ws.send(f"m{i}")
                    assert await ws.recv() == f"m{i}"
                assert (await client.request("GET", "/"))[0] == 404        # a stream on a new connection
                assert len(client.connections) == 3
    run(loop_kind, main())


def test_client_with_max_connections_waits_for_a_free_stream(loop_kind):
    async def main():
        async with ws2fast.serve(echo, "127.0.0.1", 0, config=Config(max_concurrent_streams=2)) as server:
            origin = f"http://127.0.0.1:{server.port}"
            async with ws2fast.Client(origin, max_connections=1, open_timeout=5) as client:
                first, second = [await client.websocket(f"/{i}") for i in range(2)]
                third = asyncio.ensure_future(client.websocket("/third"))
                await asyncio.sleep(0.2)
                assert not third.done() and len(client.connections) == 1
                await first.close()
                ws = await asyncio.wait_for(third, 5)
                await ws.send("through")
                assert await ws.recv() == "through" and len(server.connections) == 1
            async with ws2fast.Client(origin, max_connections=1, open_timeout=0.3) as client:
                await client.websocket("/a")
                await client.websocket("/b")
                with pytest.raises(asyncio.TimeoutError, match="max_connections"):
                    await client.websocket("/c")
    run(loop_kind, main())


def test_client_refuses_bad_max_connections():
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError):
            ws2fast.Client("http://127.0.0.1:1", max_connections=bad)


def test_http2_to_a_server_without_http2_fails_with_a_reason(loop_kind):
    # A ws:// server that speaks only HTTP/1.1 (the websockets library): prior-knowledge HTTP/2
    # must fail with HandshakeFailed saying so, not with a bare "connection lost".
    import websockets

    async def main():
        async with websockets.serve(lambda ws: ws.wait_closed(), "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            with pytest.raises(HandshakeFailed, match="HTTP/2"):
                await ws2fast.connect(f"ws://127.0.0.1:{port}/", http2=True)
            with pytest.raises(HandshakeFailed, match="HTTP/2"):
                async with ws2fast.Client(f"http://127.0.0.1:{port}") as client:
                    await client.websocket("/")
    run(loop_kind, main())
