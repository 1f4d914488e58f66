"""connect(early=True) and Client(early=True) over real sockets on 127.0.0.1: the early
handshake and early messages against our server, refusals with the exact undelivered list, an
open timeout and a lost connection (unconfirmed), and the fallbacks (retry on the same
connection, HTTP/1.1 on a new one), each early message reaching the server's application
exactly once.  The servers that refuse speculation are sans-IO H2Connections over asyncio."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

import ws2fast
from tests.aio_helpers import client_context, make_certificate, run, server_context
from ws2fast import Config, H2Connection
from ws2fast._core import build_goaway
from ws2fast.capabilities import ADVERTISED, EARLY, NONE, STRICT, CapabilityCache, capability_cache
from ws2fast.errors import ErrorCode
from ws2fast.events import TextMessage, WebSocketRequested
from ws2fast.exceptions import HandshakeFailed


@pytest.fixture(autouse=True)
def _fresh_cache():
    capability_cache.clear()
    yield
    capability_cache.clear()


def _echo_server(seen: list, requests: list | None = None, config: Config | None = None, **kwargs: Any):
    async def echo(ws):
        async for message in ws:
            seen.append(message)
            await ws.send(message)

    async def process_request(request):
        if requests is not None:
            requests.append(request)
        return None
    return ws2fast.serve(echo, "127.0.0.1", 0, process_request=process_request, config=config, **kwargs)


def test_early_messages_are_echoed_once_and_the_server_sees_the_speculation(loop_kind):
    async def main():
        seen: list = []
        requests: list = []
        async with _echo_server(seen, requests) as server:
            ws = await ws2fast.connect(f"ws://127.0.0.1:{server.port}/", http2=True, early=True)
            assert repr(ws).endswith("opening>")
            for i in range(5):
                await ws.send(f"m{i}")                   # before the 2xx
            await ws.wait_open()
            assert repr(ws).endswith(" open>")
            got = [await ws.recv() for _ in range(5)]
            await ws.close()
            return got, seen, requests, ws.http_version
    got, seen, requests, version = run(loop_kind, main())
    assert got == seen == [f"m{i}" for i in range(5)]
    assert version == "HTTP/2"
    assert [(r.speculative, r.capability_announced) for r in requests] == [(True, True)]


def test_early_over_tls_with_alpn(tmp_path):
    cert, key = make_certificate(tmp_path)

    async def main():
        seen: list = []
        requests: list = []
        async with _echo_server(seen, requests, ssl=server_context(cert, key)) as server:
            async with ws2fast.connect(f"wss://localhost:{server.port}/x", ssl=client_context(cert),
                                       early=True) as ws:
                await ws.send("hello")
                answer = await ws.recv()
            origin = CapabilityCache.origin("wss", "localhost", server.port)
            return answer, requests, ws.http_version, capability_cache.get(origin)
    answer, requests, version, learnt = run("asyncio", main())
    assert (answer, version, learnt) == ("hello", "HTTP/2", EARLY)
    assert requests[0].speculative


def test_refusal_raises_handshake_failed_with_exactly_the_undelivered_messages():
    async def main():
        seen: list = []

        async def refuse(request):
            return ws2fast.Reject(403, body=b"go away")

        async def handler(ws):
            async for message in ws:
                seen.append(message)
        async with ws2fast.serve(handler, "127.0.0.1", 0, process_request=refuse) as server:
            ws = await ws2fast.connect(f"ws://127.0.0.1:{server.port}/", http2=True, early=True)
            sent = ["a", b"b", "c" * 1000]
            for message in sent:
                await ws.send(message)
            with pytest.raises(HandshakeFailed) as info:
                await ws.recv()
            with pytest.raises(HandshakeFailed):
                await ws.send("after")
            with pytest.raises(HandshakeFailed):
                await ws.wait_open()
            await ws.close()                              # nothing to close: no error
            return info.value, sent, seen
    exc, sent, seen = run("asyncio", main())
    assert exc.status == 403 and exc.body == b"go away"
    assert exc.undelivered == tuple(sent) and exc.unconfirmed == ()
    assert seen == []


async def _silent_h2_server(drop_after: float | None = None):
    """An HTTP/2 server that advertises RFC 8441 and never answers a CONNECT (optionally
    dropping the connection after ``drop_after`` seconds)."""
    async def handle(reader, writer):
        conn = H2Connection(client_side=False)
        conn.initiate()
        writer.write(conn.data_to_send())
        try:
            async def pump():
                while data := await reader.read(65536):
                    conn.receive_data(data)
                    writer.write(conn.data_to_send())
            if drop_after is None:
                await pump()
            else:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(pump(), drop_after)
        finally:
            writer.close()
    return await asyncio.start_server(handle, "127.0.0.1", 0)


@pytest.mark.parametrize("case", ["timeout", "lost"])
def test_no_answer_reports_the_early_messages_as_unconfirmed(case):
    async def main():
        server = await _silent_h2_server(drop_after=0.3 if case == "lost" else None)
        port = server.sockets[0].getsockname()[1]
        try:
            ws = await ws2fast.connect(f"ws://127.0.0.1:{port}/", http2=True, early=True, open_timeout=0.6)
            await ws.send("x")
            await ws.send(b"y")
            with pytest.raises(HandshakeFailed) as info:
                await ws.recv()
            return info.value, ws.closed
        finally:
            server.close()
    exc, closed = run("asyncio", main())
    assert exc.unconfirmed == ("x", b"y") and exc.undelivered == ()
    assert closed
    assert ("open_timeout" in str(exc)) == (case == "timeout")


async def _strict_h2_server(seen: list, resets: list, advertise: bool = True, goaway: bool = False):
    """An HTTP/2 echo server that resets every speculative extended CONNECT (as an HTTP/2 stack
    that applies its SETTINGS only once acknowledged does), or with ``goaway`` ends the
    connection with GOAWAY(PROTOCOL_ERROR), and accepts the others."""
    async def handle(reader, writer):
        conn = H2Connection(client_side=False, config=Config(enable_connect_protocol=advertise))
        conn.initiate()
        writer.write(conn.data_to_send())
        try:
            while data := await reader.read(65536):
                for event in conn.receive_data(data):
                    if isinstance(event, WebSocketRequested):
                        if event.speculative and goaway:
                            resets.append(event.stream_id)
                            writer.write(conn.data_to_send() + build_goaway(0, ErrorCode.PROTOCOL_ERROR,
                                                                            b"speculative CONNECT"))
                            return
                        if event.speculative:
                            resets.append(event.stream_id)
                            conn.reset_stream(event.stream_id, ErrorCode.PROTOCOL_ERROR)
                        else:
                            for held in conn.accept_websocket(event.stream_id):
                                seen.append(held.data)
                                conn.send_message(held.stream_id, held.data)
                    elif isinstance(event, TextMessage):
                        seen.append(event.data)
                        conn.send_message(event.stream_id, event.data)
                writer.write(conn.data_to_send())
        except ConnectionError:
            pass
        finally:
            writer.close()
    return await asyncio.start_server(handle, "127.0.0.1", 0)


def test_refused_speculation_is_retried_on_the_same_connection_and_each_message_arrives_once():
    async def main():
        seen: list = []
        resets: list = []
        server = await _strict_h2_server(seen, resets)
        port = server.sockets[0].getsockname()[1]
        try:
            ws = await ws2fast.connect(f"ws://127.0.0.1:{port}/", http2=True, early=True)
            for i in range(3):
                await ws.send(f"m{i}")
            got = [await ws.recv() for _ in range(3)]
            await ws.send("later")
            got.append(await ws.recv())
            learnt = capability_cache.get(CapabilityCache.origin("ws", "127.0.0.1", port))
            stream = ws.stream_id
            await ws.close()
            # The cache learnt it: "auto" does not speculate there any more.
            ws2 = await ws2fast.connect(f"ws://127.0.0.1:{port}/", http2=True, early="auto")
            await ws2.send("auto")
            got2 = await ws2.recv()
            await ws2.close()
            return got, seen, resets, learnt, stream, got2
        finally:
            server.close()
    got, seen, resets, learnt, stream, got2 = run("asyncio", main())
    assert got == ["m0", "m1", "m2", "later"]
    assert seen == ["m0", "m1", "m2", "later", "auto"]     # exactly once each
    assert resets == [1] and stream == 3 and learnt == STRICT
    assert got2 == "auto"


def test_speculation_answered_with_goaway_is_retried_on_a_new_http2_connection():
    async def main():
        seen: list = []
        resets: list = []
        server = await _strict_h2_server(seen, resets, goaway=True)
        port = server.sockets[0].getsockname()[1]
        try:
            ws = await ws2fast.connect(f"ws://127.0.0.1:{port}/", http2=True, early=True)
            first = ws._connection
            await ws.send("m0")
            await ws.send("m1")
            got = [await ws.recv(), await ws.recv()]
            moved = ws._connection is not first and first.closed.done()
            await ws.close()
            return got, seen, resets, moved, ws.http_version
        finally:
            server.close()
    got, seen, resets, moved, version = run("asyncio", main())
    assert got == seen == ["m0", "m1"] and resets == [1] and moved and version == "HTTP/2"


def test_cleartext_prior_knowledge_without_rfc8441_falls_back_to_http11():
    async def main():
        seen: list = []
        requests: list = []
        async with _echo_server(seen, requests, config=Config(enable_connect_protocol=False)) as server:
            ws = await ws2fast.connect(f"ws://127.0.0.1:{server.port}/", http2=True, early=True)
            await ws.send("m0")
            got = await ws.recv()
            await ws.close()
            return got, seen, ws.http_version
    got, seen, version = run("asyncio", main())
    assert got == "m0" and seen == ["m0"] and version == "HTTP/1.1"


def test_server_without_rfc8441_falls_back_to_http11_and_each_message_arrives_once(tmp_path):
    cert, key = make_certificate(tmp_path)

    async def main():
        seen: list = []
        requests: list = []
        config = Config(enable_connect_protocol=False)
        async with _echo_server(seen, requests, config=config, ssl=server_context(cert, key)) as server:
            ws = await ws2fast.connect(f"wss://localhost:{server.port}/", ssl=client_context(cert), early=True)
            for i in range(3):
                await ws.send(f"m{i}")
            got = [await ws.recv() for _ in range(3)]
            version = ws.http_version
            await ws.close()
            learnt = capability_cache.get(CapabilityCache.origin("wss", "localhost", server.port))
            return got, seen, requests, version, learnt
    got, seen, requests, version, learnt = run("asyncio", main())
    assert got == seen == ["m0", "m1", "m2"]
    assert version == "HTTP/1.1" and learnt == NONE
    assert [r.http_version for r in requests] == ["HTTP/1.1"]


def test_client_early_websockets_on_an_existing_connection():
    async def main():
        seen: list = []
        requests: list = []
        async with _echo_server(seen, requests) as server:
            async with ws2fast.Client(f"http://127.0.0.1:{server.port}", early=True) as client:
                first = await client.websocket("/1")
                await first.send("one")
                assert await first.recv() == "one"
                second = await client.websocket("/2")         # on the same connection
                await second.send("two")
                answer = await second.recv()
                return answer, seen, requests, first._connection is second._connection
    answer, seen, requests, shared = run("asyncio", main())
    assert answer == "two" and seen == ["one", "two"] and shared
    assert [r.speculative for r in requests] == [True, False]


def test_strict_default_is_unchanged():
    async def main():
        seen: list = []
        requests: list = []
        async with _echo_server(seen, requests) as server:
            async with ws2fast.connect(f"ws://127.0.0.1:{server.port}/", http2=True) as ws:
                assert repr(ws).endswith("open>")
                await ws.send("s")
                assert await ws.recv() == "s"
            learnt = capability_cache.get(CapabilityCache.origin("ws", "127.0.0.1", server.port))
            return requests, learnt
    requests, learnt = run("asyncio", main())
    assert [(r.speculative, r.capability_announced) for r in requests] == [(False, False)]
    assert learnt == ADVERTISED


def test_capability_cache_lifetime_size_and_clear():
    now = [0.0]
    cache = CapabilityCache(max_entries=2, lifetime=10, clock=lambda: now[0])
    a, b, c = (CapabilityCache.origin("wss", h, 443) for h in "abc")
    cache.learn(a, ADVERTISED)
    assert cache.should_speculate(a)
    cache.learn(a, STRICT)
    cache.learn(a, ADVERTISED)                       # a later connection does not undo it
    assert cache.get(a) == STRICT and not cache.should_speculate(a)
    cache.learn(b, EARLY)
    cache.learn(c, NONE)
    assert len(cache) == 2 and cache.get(a) is None  # the oldest went
    now[0] = 11
    assert cache.get(b) is None                      # expired
    cache.learn(c, EARLY)
    cache.clear()
    assert len(cache) == 0
    assert CapabilityCache.origin("ws", "Example.test", 80) == CapabilityCache.origin("http", "example.test", 80)
    with pytest.raises(ValueError):
        cache.learn(a, "maybe")
    with pytest.raises(ValueError):
        ws2fast.connect("ws://x/", early="sometimes")


def test_connects_sharing_a_context_get_their_own_alpn(tmp_path):
    # One caller's SSLContext, connects over HTTP/2 and HTTP/1.1-only interleaved: each gets
    # the protocol it asked for (ws2fast never changes the context's ALPN under a handshake).
    cert, key = make_certificate(tmp_path)

    async def main():
        seen: list = []
        context = client_context(cert)
        async with _echo_server(seen, ssl=server_context(cert, key)) as server:
            uri = f"wss://localhost:{server.port}/"

            async def one(http2):
                async with ws2fast.connect(uri, ssl=context, http2=http2) as ws:
                    await ws.send("x")
                    await ws.recv()
                    return ws.http_version
            wanted = [None, False] * 6
            return wanted, await asyncio.gather(*(one(h) for h in wanted))
    wanted, versions = run("asyncio", main())
    assert versions == ["HTTP/2" if h is None else "HTTP/1.1" for h in wanted]


def test_close_nowait_before_the_answer_closes_once_open():
    async def main():
        seen: list = []
        async with _echo_server(seen) as server:
            ws = await ws2fast.connect(f"ws://127.0.0.1:{server.port}/", http2=True, early=True)
            await ws.send("before close")
            ws.close_nowait(4000, "bye")
            await asyncio.wait_for(ws.wait_closed(), 5)
            await asyncio.sleep(0.1)
            return seen, ws.close_code
    seen, code = run("asyncio", main())
    assert seen == ["before close"] and code == 4000          # (the server echoed our code)


def test_unannounced_status_over_asyncio():
    async def main():
        seen: list = []
        requests: list = []
        config = Config(unannounced_websocket_status=501)
        async with _echo_server(seen, requests, config=config) as server:
            uri = f"ws://127.0.0.1:{server.port}/"
            with pytest.raises(HandshakeFailed) as strict:
                await ws2fast.connect(uri, http2=True)          # does not announce: 501
            async with ws2fast.connect(uri, http2=True, early=True) as ws:     # announces
                await ws.send("in")
                answer = await ws.recv()
            return strict.value.status, answer, [r.capability_announced for r in requests]
    status, answer, announced = run("asyncio", main())
    assert (status, answer, announced) == (501, "in", [True])   # the handler saw only the second


def test_early_send_waits_beyond_the_65535_octets_a_client_may_assume():
    async def main():
        received = bytearray()

        async def mute(reader, writer):                         # reads, never answers
            try:
                while data := await reader.read(65536):
                    received.extend(data)
            finally:
                writer.close()
        server = await asyncio.start_server(mute, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            ws = await ws2fast.connect(f"ws://127.0.0.1:{port}/", http2=True, early=True, open_timeout=3)
            await ws.send(b"a" * 60000)                         # within the window: at once
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(ws.send(b"b" * 60000), 0.5)   # past it: waits
            await asyncio.sleep(0.1)
            waiting = ws.buffered_amount
            with pytest.raises(HandshakeFailed) as info:
                await ws.recv()
            return len(received), waiting, info.value.unconfirmed
        finally:
            server.close()
    received, waiting, unconfirmed = run("asyncio", main())
    assert received < 65535 + 1024                          # the window, the preface, headers
    assert waiting > 50000
    assert unconfirmed == (b"a" * 60000, b"b" * 60000)
