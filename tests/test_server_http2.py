"""The asyncio server against a raw HTTP/2 peer over real sockets (cleartext and TLS): the
RFC 9113 rules of the correctness sweep, checked where real clients meet them.

The peer (tests/rawpeer.py ``SocketPeer``) writes exactly the frames a test asks for, including
the violations that the h2 library refuses to send, and records every frame the server answers
and how the connection ended (a FIN, or a reset).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl as ssl_module
import time

import h11
import hpack
import pytest
from hyperframe import frame as hf

import ws2fast
from tests.aio_helpers import run, server_context
from tests.rawpeer import CONNECT, SocketPeer, parse_frames
from ws2fast import Config
from ws2fast._core import PREFACE
from ws2fast.errors import ErrorCode

GET = [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"), (b":authority", b"a.test")]
HEAD = [(b":method", b"HEAD")] + GET[1:]
MODES = ["cleartext", "tls"]


def _tls_client() -> ssl_module.SSLContext:
    context = ssl_module.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl_module.CERT_NONE
    context.set_alpn_protocols(["h2"])
    return context


async def echo(ws):
    async for message in ws:
        await ws.send(message)


def _page(size: int = 5):
    def handler(request):
        return 200, [(b"content-type", b"text/plain")], b"x" * size
    return handler


async def _serve(mode, certificate, **kwargs):
    ssl = server_context(*certificate) if mode == "tls" else None
    return await ws2fast.serve(kwargs.pop("handler", echo), "127.0.0.1", 0, ssl=ssl, **kwargs)


async def _open(server, mode, **settings) -> SocketPeer:
    peer = await SocketPeer.open(server.port, _tls_client() if mode == "tls" else None, **settings)
    await peer.until(lambda frames: any(isinstance(f, hf.SettingsFrame) and "ACK" not in f.flags
                                        for f in frames))
    peer.send(peer.settings(ack=True))
    return peer


@contextlib.asynccontextmanager
async def _h2_session(mode, certificate, settings=None, **serve_kwargs):
    """A server (``serve_kwargs``) and a raw HTTP/2 client past the SETTINGS exchange."""
    async with await _serve(mode, certificate, **serve_kwargs) as server:
        peer = await _open(server, mode, **(settings or {}))
        peer.server = server
        try:
            yield peer
        finally:
            await peer.close()


def _data(frames, sid) -> list[bytes]:
    return [bytes(f.data) for f in frames if isinstance(f, hf.DataFrame) and f.stream_id == sid]


def _goaways(frames) -> list[tuple[int, bytes]]:
    return [(f.error_code, bytes(f.additional_data)) for f in frames if isinstance(f, hf.GoAwayFrame)]


def _status(frames, sid) -> list[bytes]:
    return [dict(f.fields)[b":status"] for f in frames if isinstance(f, hf.HeadersFrame) and f.stream_id == sid]


# RFC 9113 §6.9.2: a raised window resumes what waits behind it ------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_raising_initial_window_from_zero_resumes_a_queued_body(certificate, mode):
    async def main():
        async with _h2_session(mode, certificate, settings={"INITIAL_WINDOW_SIZE": 0},
                               http_handler=_page(5)) as peer:
            peer.send(peer.headers(1, GET, end_stream=True))
            await peer.until(lambda frames: _status(frames, 1))
            assert _data(await peer.quiet(), 1) == []               # the window is shut
            peer.send(peer.settings(INITIAL_WINDOW_SIZE=1))
            frames = await peer.until(lambda frames: _data(frames, 1))
            assert _data(frames, 1) == [b"x"]
            peer.send(peer.settings(INITIAL_WINDOW_SIZE=5))
            frames = await peer.until(lambda frames: len(_data(frames, 1)) == 2)
            assert _data(frames, 1) == [b"x", b"xxxx"]
            assert "END_STREAM" in [f for f in frames if isinstance(f, hf.DataFrame)][-1].flags
    run("asyncio", main())


@pytest.mark.parametrize("mode", MODES)
def test_raising_initial_window_from_zero_resumes_a_websocket_echo(certificate, mode):
    async def main():
        async with _h2_session(mode, certificate, settings={"INITIAL_WINDOW_SIZE": 0}) as peer:
            peer.send(peer.headers(1, CONNECT))
            await peer.until(lambda frames: _status(frames, 1))
            peer.send(peer.ws(1, 1, "hello"))
            assert _data(await peer.quiet(), 1) == []
            peer.send(peer.settings(INITIAL_WINDOW_SIZE=1))
            frames = await peer.until(lambda frames: _data(frames, 1))
            assert _data(frames, 1) == [b"\x81"]
            peer.send(hf.WindowUpdateFrame(1, window_increment=6))
            frames = await peer.until(lambda frames: len(_data(frames, 1)) == 2)
            assert b"".join(_data(frames, 1)) == b"\x81\x05hello"
    run("asyncio", main())


@pytest.mark.parametrize("mode", MODES)
def test_window_update_on_the_connection_resumes_queued_data(certificate, mode):
    async def main():
        async with _h2_session(mode, certificate, settings={"INITIAL_WINDOW_SIZE": 2**20},
                               http_handler=_page(70000)) as peer:
            peer.send(peer.headers(1, GET, end_stream=True))
            frames = await peer.until(lambda frames: sum(map(len, _data(frames, 1))) >= 65535)
            assert sum(map(len, _data(frames, 1))) == 65535          # the connection window
            assert sum(map(len, _data(await peer.quiet(), 1))) == 0
            peer.send(hf.WindowUpdateFrame(0, window_increment=70000 - 65535))
            frames = await peer.until(lambda frames: sum(map(len, _data(frames, 1))) == 70000)
            assert "END_STREAM" in [f for f in frames if isinstance(f, hf.DataFrame)][-1].flags
    run("asyncio", main())


# RFC 9113 §5.1 "closed" ----------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_headers_on_a_stream_both_sides_ended_ends_the_connection_with_stream_closed(certificate, mode):
    async def main():
        async with _h2_session(mode, certificate, http_handler=_page(2)) as peer:
            peer.send(peer.headers(1, GET, end_stream=True))
            await peer.until(lambda frames: any(isinstance(f, hf.DataFrame) and "END_STREAM" in f.flags
                                                for f in frames))
            peer.send(hf.WindowUpdateFrame(1, window_increment=1))      # in flight: ignored
            assert await peer.quiet() == []
            peer.send(peer.headers(1, GET, end_stream=True))             # reopening stream 1
            frames = await peer.until(lambda frames: peer.eof, timeout=10)
            (goaway,) = _goaways(frames)
            assert goaway[0] == ErrorCode.STREAM_CLOSED and b"RFC 9113" in goaway[1]
            assert peer.eof and peer.reset is None                      # FIN, not a reset
    run("asyncio", main())


@pytest.mark.parametrize("mode", MODES)
def test_data_after_the_peers_reset_is_a_stream_error_and_the_connection_lives(certificate, mode):
    async def main():
        async with _h2_session(mode, certificate) as peer:
            for sid in (1, 3):
                peer.send(peer.headers(sid, CONNECT))
            await peer.until(lambda frames: _status(frames, 1) and _status(frames, 3))
            peer.send(hf.RstStreamFrame(1, error_code=ErrorCode.CANCEL), hf.PingFrame(0, b"12345678"))
            await peer.until(lambda frames: any(isinstance(f, hf.PingFrame) for f in frames))
            peer.send(peer.ws(1, 1, "late"))            # (read after the reset, not with it)
            frames = await peer.until(lambda frames: any(isinstance(f, hf.RstStreamFrame) for f in frames))
            assert [(f.stream_id, f.error_code) for f in frames if isinstance(f, hf.RstStreamFrame)] \
                == [(1, ErrorCode.STREAM_CLOSED)]
            peer.send(peer.ws(3, 1, "alive"))
            frames = await peer.until(lambda frames: _data(frames, 3))
            assert _data(frames, 3) == [b"\x81\x05alive"] and _goaways(frames) == []
    run("asyncio", main())


# RFC 9113 §3.4: a bad preface is answered, not dropped ---------------------------------------------

_BAD_PREFACES = {"PRI-XX": b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n", "PRI-1.1": b"PRI * HTTP/1.1\r\n\r\n",
                 "GET": b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"}


# In cleartext a connection that does not start with "PRI " is HTTP/1.1: only TLS that chose h2
# answers any other start with GOAWAY.
@pytest.mark.parametrize("mode, name", [("cleartext", "PRI-XX"), ("cleartext", "PRI-1.1"), ("tls", "PRI-XX"),
                                        ("tls", "PRI-1.1"), ("tls", "GET")])
def test_a_bad_client_preface_gets_goaway_protocol_error_with_a_reason(certificate, mode, name):
    preface = _BAD_PREFACES[name]

    async def main():
        async with await _serve(mode, certificate) as server:
            peer = await SocketPeer.open(server.port, _tls_client() if mode == "tls" else None, preface=None)
            peer.send(preface)
            frames = await peer.until(lambda frames: _goaways(frames), timeout=10)
            assert isinstance(frames[0], hf.SettingsFrame)              # the server's preface
            ((code, debug),) = _goaways(frames)
            assert code == ErrorCode.PROTOCOL_ERROR and b"preface" in debug and b"RFC 9113" in debug
            await peer.until(lambda frames: peer.eof, timeout=10)      # then our side ends: FIN
            assert peer.eof and peer.reset is None
            await peer.close()
    run("asyncio", main())


# HEAD and failing responses, both HTTP versions ---------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_head_over_http2_has_content_length_and_no_data(certificate, mode):
    async def main():
        async with _h2_session(mode, certificate, http_handler=_page(1234)) as peer:
            peer.send(peer.headers(1, HEAD, end_stream=True))
            frames = await peer.until(lambda frames: _status(frames, 1))
            (head,) = [f for f in frames if isinstance(f, hf.HeadersFrame)]
            assert (b"content-length", b"1234") in head.fields and "END_STREAM" in head.flags
            assert _data(frames + await peer.quiet(), 1) == []
    run("asyncio", main())


@pytest.mark.parametrize("mode", MODES)
def test_head_over_http1_answers_without_a_body_and_keeps_the_connection(certificate, mode):
    async def main():
        ssl = None
        if mode == "tls":
            ssl = _tls_client()
            ssl.set_alpn_protocols(["http/1.1"])
        async with await _serve(mode, certificate, http_handler=_page(1234)) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port, ssl=ssl,
                                                           server_hostname="localhost" if ssl else None)
            client = h11.Connection(h11.CLIENT)
            for method in (b"HEAD", b"GET"):
                writer.write(client.send(h11.Request(method=method, target=b"/", headers=[(b"host", b"a")])))
                writer.write(client.send(h11.EndOfMessage()))
                events = []
                while not events or not isinstance(events[-1], h11.EndOfMessage):
                    event = client.next_event()
                    if event is h11.NEED_DATA:
                        client.receive_data(await asyncio.wait_for(reader.read(65536), 5))
                        continue
                    events.append(event)
                response = events[0]
                assert response.status_code == 200 and response.reason == b"OK"
                assert (b"content-length", b"1234") in response.headers
                body = b"".join(bytes(e.data) for e in events if isinstance(e, h11.Data))
                assert body == (b"" if method == b"HEAD" else b"x" * 1234)
                client.start_next_cycle()
            writer.close()
    run("asyncio", main())


BAD_RESPONSES = {
    "str body": lambda request: (200, [], "text, not bytes"),
    "status out of range": lambda request: (1000, [], b""),
    "status not an int": lambda request: ("200", [], b""),
    "bad header": lambda request: (200, [(b"bad name", b"x")], b""),
    "not a triple": lambda request: b"just a body",
    "raises": lambda request: 1 / 0,
}


@pytest.mark.parametrize("bad", sorted(BAD_RESPONSES))
@pytest.mark.parametrize("version", ["HTTP/2", "HTTP/1.1"])
def test_a_response_that_cannot_be_sent_becomes_a_500_and_the_connection_serves_on(bad, version, caplog):
    async def main():
        def handler(request):
            if request.path == "/bad":
                return BAD_RESPONSES[bad](request)
            return 200, [], b"good"

        async with ws2fast.serve(echo, "127.0.0.1", 0, http_handler=handler) as server:
            origin = f"http://127.0.0.1:{server.port}"
            if version == "HTTP/2":
                async with ws2fast.Client(origin) as client:
                    status, _, body = await asyncio.wait_for(client.request("GET", "/bad"), 5)
                    assert (status, body) == (500, b"internal error\n")
                    status, _, body = await asyncio.wait_for(client.request("GET", "/"), 5)
                    assert (status, body) == (200, b"good")
            else:
                reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
                writer.write(b"GET /bad HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")
                out = b""
                while not out.endswith(b"good"):
                    chunk = await asyncio.wait_for(reader.read(65536), 5)
                    assert chunk, out
                    out += chunk
                assert out.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
                assert out.count(b"HTTP/1.1 200 OK\r\n") == 1
                writer.close()
    with caplog.at_level("ERROR", logger="ws2fast"):
        run("asyncio", main())
    failures = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(failures) == 1 and failures[0].exc_info is not None          # logged once


# Stream slots: WebSockets whose peer never ends its side --------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_abandoned_websockets_do_not_hold_stream_slots(certificate, mode):
    # A client like the major browser that never sends END_STREAM after the close handshake:
    # it opens, closes and abandons 2,000 WebSockets on one connection as fast as it can,
    # keeping at most 100 open by its own count (a stream is done for it once the server's
    # Close and END_STREAM arrived).  close_timeout is 600 s, so no timer can free the slots.
    cycles, limit = 2000, 100

    async def main():
        config = Config(max_concurrent_streams=limit, close_timeout=600.0)
        async with _h2_session(mode, certificate, config=config) as peer:
            accepted = refused = done = 0
            next_sid, open_now = 1, set()
            seen = 0
            while done < cycles:
                while len(open_now) < limit and next_sid < 2 * cycles:
                    peer.send(peer.headers(next_sid, CONNECT))
                    open_now.add(next_sid)
                    next_sid += 2
                frames = await peer.until(lambda frames, seen=seen: len(frames) > seen, timeout=20)
                assert not peer.eof and peer.reset is None
                for f in frames[seen:]:
                    if isinstance(f, hf.HeadersFrame) and dict(f.fields)[b":status"] == b"200":
                        accepted += 1
                        peer.send(peer.ws(f.stream_id, 8, b"\x03\xe8"))     # Close, no END_STREAM
                    elif isinstance(f, hf.RstStreamFrame) and f.error_code == ErrorCode.REFUSED_STREAM:
                        refused += 1
                        open_now.discard(f.stream_id)
                        done += 1
                    elif isinstance(f, hf.DataFrame) and "END_STREAM" in f.flags:
                        open_now.discard(f.stream_id)                       # abandoned
                        done += 1
                    elif isinstance(f, hf.DataFrame) and f.flow_controlled_length:
                        peer.send(hf.WindowUpdateFrame(0, window_increment=f.flow_controlled_length))
                seen = len(frames)
            assert (accepted, refused) == (cycles, 0)
            conn = next(iter(peer.server.connections))
            assert conn.engine.closing_streams <= limit
    run("asyncio", main(), timeout=120)


# Lingering close: the peer that is still sending reads our GOAWAY ------------------------------------

def _server_side_ended(sock: socket.socket) -> bool:
    # TCP_INFO's first octet is the connection's state: CLOSE_WAIT (8) once the server's FIN
    # came, whatever is still unread.
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0] == 8


def _write_until_the_server_closes(port: int, first: bytes, more: bytes, seconds: float,
                                   stop_at_fin: bool = True) -> tuple[bytes, str]:
    """A blocking client that writes ``first``, then ``more`` again and again, reading nothing,
    until the server has ended its side (``stop_at_fin``), a write fails, or ``seconds`` pass;
    then it reads all it can.  Returns (what it read, how the writing ended)."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(seconds)
    ended = "timeout"
    try:
        deadline = time.monotonic() + seconds
        sock.sendall(first)
        while time.monotonic() < deadline:
            if stop_at_fin and _server_side_ended(sock):
                ended = "FIN"
                break
            try:
                sock.sendall(more)
            except OSError as exc:
                ended = f"write failed: {exc!r}"
                break
        data = b""
        while True:
            try:
                chunk = sock.recv(1 << 20)
            except OSError as exc:
                return data, f"{ended}; then the read failed: {exc!r}"
            if not chunk:
                return data, ended
            data += chunk
    finally:
        sock.close()


def _frames_of(data: bytes) -> list:
    return parse_frames(data, hpack.Decoder())[0]


@pytest.mark.parametrize("kind", ["asyncio", "asyncio-transport", "uvloop"])
def test_a_flooding_client_reads_the_goaway_before_the_connection_ends(kind):
    # A CONTINUATION flood: the server ends the connection with GOAWAY(ENHANCE_YOUR_CALM) while
    # the client is still writing.  It must get the GOAWAY and then an orderly end of the
    # server's side (FIN), not a reset that destroys what it has not read yet.
    block = hpack.Encoder().encode(GET)
    first = PREFACE + hf.SettingsFrame(0).serialize() + hf.HeadersFrame(1, block[:1]).serialize()
    more = b"".join(hf.ContinuationFrame(1, block[:1]).serialize() for _ in range(2000))

    async def main():
        # Generous bounds: when the server starts lingering, the flood may already have
        # megabytes queued in the socket buffers, which it reads and drops first.
        config = Config(lingering_time=5.0, lingering_bytes=256 << 20)
        async with ws2fast.serve(echo, "127.0.0.1", 0, config=config) as server:
            loop = asyncio.get_running_loop()
            for _ in range(10):
                data, ended = await loop.run_in_executor(
                    None, _write_until_the_server_closes, server.port, first, more, 10.0)
                assert ended == "FIN", ended
                goaways = _goaways(_frames_of(data))
                assert [code for code, _ in goaways] == [ErrorCode.ENHANCE_YOUR_CALM], ended
                assert b"CONTINUATION" in goaways[0][1]
    run(kind, main(), timeout=240)


@pytest.mark.parametrize("kind", ["asyncio", "asyncio-transport"])
def test_lingering_close_is_bounded_in_octets_and_in_time(kind):
    bad = PREFACE + b"\x00\x00\x00\x07\x00\x00\x00\x00\x00"        # a GOAWAY too short: FRAME_SIZE_ERROR

    async def main():
        config = Config(lingering_time=1.5, lingering_bytes=100_000)
        async with ws2fast.serve(echo, "127.0.0.1", 0, config=config) as server:
            loop = asyncio.get_running_loop()
            # A client that ignores the FIN and writes on: cut off after ~100,000 octets.
            start = loop.time()
            data, ended = await loop.run_in_executor(
                None, _write_until_the_server_closes, server.port, bad, b"\0" * 65536, 10.0, False)
            assert ended.startswith("write failed") and loop.time() - start < 1.5, ended
            assert [code for code, _ in _goaways(_frames_of(data))] == [ErrorCode.FRAME_SIZE_ERROR]
            # A client that neither writes nor closes: cut off after lingering_time.
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(bad)
            start = loop.time()
            data = await asyncio.wait_for(reader.read(), 5)             # GOAWAY, then FIN
            assert [code for code, _ in _goaways(_frames_of(data))] == [ErrorCode.FRAME_SIZE_ERROR]
            assert server.connections
            while server.connections and loop.time() - start < 5:
                await asyncio.sleep(0.02)
            assert not server.connections and 1.4 < loop.time() - start < 3.0
            writer.close()
            # A client that closes when it sees the GOAWAY: the server is done at once.
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(bad)
            await asyncio.wait_for(reader.read(), 5)
            start = loop.time()
            writer.close()
            while server.connections and loop.time() - start < 5:
                await asyncio.sleep(0.02)
            assert not server.connections and loop.time() - start < 0.5
    run(kind, main(), timeout=60)


def test_an_idle_connection_with_only_abandoned_websockets_is_closed():
    # The client abandons its WebSocket after the close handshake (no END_STREAM) and then
    # sends nothing: the idle timeout sends GOAWAY, and the connection closes once the stream
    # winding down could have ended (close_timeout), not never.
    async def main():
        config = Config(idle_timeout=0.3, close_timeout=0.5)
        async with ws2fast.serve(echo, "127.0.0.1", 0, config=config) as server:
            peer = await _open(server, "cleartext")
            peer.send(peer.headers(1, CONNECT))
            await peer.until(lambda frames: _status(frames, 1))
            peer.send(peer.ws(1, 8, b"\x03\xe8"))
            start = asyncio.get_running_loop().time()
            frames = await peer.until(lambda frames: peer.eof, timeout=10)
            assert [code for code, _ in _goaways(frames)] == [ErrorCode.NO_ERROR]
            assert peer.eof and asyncio.get_running_loop().time() - start < 0.3 + 0.5 + 1 + 1
            await peer.close()
    run("asyncio", main())


def test_an_abandoned_websocket_is_reset_after_the_close_timeout():
    # The server's timer covers streams whose close handshake is done: the abandoned stream is
    # reset (NO_ERROR) after close_timeout, and the connection lives on.
    async def main():
        async with _h2_session("cleartext", None, config=Config(close_timeout=0.5)) as peer:
            peer.send(peer.headers(1, CONNECT))
            await peer.until(lambda frames: _status(frames, 1))
            peer.send(peer.ws(1, 8, b"\x03\xe8"))                   # Close, never END_STREAM
            start = asyncio.get_running_loop().time()
            frames = await peer.until(lambda frames: any(isinstance(f, hf.RstStreamFrame) for f in frames))
            assert [(f.stream_id, f.error_code) for f in frames if isinstance(f, hf.RstStreamFrame)] \
                == [(1, ErrorCode.NO_ERROR)]
            assert 0.4 < asyncio.get_running_loop().time() - start < 2.0
            assert not peer.eof and _goaways(frames) == []
    run("asyncio", main())


@pytest.mark.parametrize("kind", ["asyncio", "asyncio-transport"])
def test_an_http1_client_still_sending_reads_the_400_before_the_connection_ends(kind):
    # The same lingering close after an HTTP/1.1 error answer: the 400 arrives, then a FIN.
    async def main():
        config = Config(lingering_time=5.0, lingering_bytes=256 << 20)
        async with ws2fast.serve(echo, "127.0.0.1", 0, config=config) as server:
            loop = asyncio.get_running_loop()
            for _ in range(5):
                data, ended = await loop.run_in_executor(
                    None, _write_until_the_server_closes, server.port, b"GET / HTTP/1.1\r\nHost a\r\n\r\n",
                    b"x" * 20000, 10.0)
                assert ended == "FIN" and data.startswith(b"HTTP/1.1 400 Bad Request\r\n"), (ended, data[:80])
    run(kind, main(), timeout=120)
