"""ws2fast's compiled socket transport (``_core.SocketTransport``, ``Config.native_transport``)
over real TCP sockets on 127.0.0.1, against the rules asyncio's own transports keep: reads in
order into the protocol's buffer, write buffering with pause_writing/resume_writing at the water
marks, pause/resume reading, EOF both ways (eof_received, write_eof), close() flushing, abort()
dropping, errors, and connection_lost exactly once.  The whole asyncio suite runs on it too
(asyncio's loop uses it by default; the "asyncio-transport" loop kind runs asyncio's own)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import struct

import pytest

from tests.aio_helpers import run
from ws2fast import Config
from ws2fast._core import ProtocolCore, SocketTransport
from ws2fast.aio.transport import NativeServer, native_transport_applies, open_native_connection


class Recorder(ProtocolCore):
    """A bare protocol: records what the transport calls (``_sniff`` gets every read, as the
    connection is never decided)."""

    def __init__(self, buffer_size: int = 65536) -> None:
        self.loop = asyncio.get_running_loop()
        self._view = memoryview(bytearray(buffer_size))
        self.calls: list[str] = []
        self.data = bytearray()
        self.lost: list[BaseException | None] = []
        self.keep_open_on_eof = False
        self.fail_on_data = False
        self.arrived = asyncio.Event()
        self.done = self.loop.create_future()

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.calls.append("made")

    def _sniff(self, data) -> None:
        if self.fail_on_data:
            raise RuntimeError("the protocol failed")
        self.data += data
        self.arrived.set()

    def eof_received(self):
        self.calls.append("eof")
        return self.keep_open_on_eof

    def pause_writing(self) -> None:
        self.calls.append("pause")

    def resume_writing(self) -> None:
        self.calls.append("resume")

    def connection_lost(self, exc) -> None:
        self.calls.append("lost")
        self.lost.append(exc)
        if not self.done.done():
            self.done.set_result(exc)


async def _pair(buffer_size: int = 65536) -> tuple[Recorder, SocketTransport, socket.socket]:
    """Our transport on one end of a loopback TCP connection; a plain blocking-free socket on
    the other (the test drives it with the loop's sock_* calls)."""
    loop = asyncio.get_running_loop()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.setblocking(False)
        ours = socket.socket()
        ours.setblocking(False)
        connecting = asyncio.ensure_future(loop.sock_connect(ours, listener.getsockname()))
        theirs, _ = await loop.sock_accept(listener)
        await connecting
    theirs.setblocking(False)
    protocol = Recorder(buffer_size)
    transport = SocketTransport(loop, ours, protocol)
    protocol.connection_made(transport)
    transport.start()
    return protocol, transport, theirs


async def _read_all(sock: socket.socket) -> bytes:
    loop = asyncio.get_running_loop()
    out = bytearray()
    while chunk := await loop.sock_recv(sock, 1 << 20):
        out += chunk
    return bytes(out)


def test_reads_arrive_whole_and_in_order_through_a_small_buffer():
    async def main():
        protocol, transport, theirs = await _pair(buffer_size=1000)
        payload = os.urandom(3 << 20)
        await asyncio.get_running_loop().sock_sendall(theirs, payload)
        while len(protocol.data) < len(payload):
            protocol.arrived.clear()
            await asyncio.wait_for(protocol.arrived.wait(), 10)
        assert bytes(protocol.data) == payload
        assert transport.get_extra_info("peername") == theirs.getsockname()
        assert transport.get_extra_info("sockname") == theirs.getpeername()
        transport.close()
        assert await protocol.done is None
        theirs.close()
    run("asyncio", main())


def test_writes_buffer_with_pause_and_resume_at_the_water_marks_and_arrive_intact():
    async def main():
        protocol, transport, theirs = await _pair()
        transport.set_write_buffer_limits(high=256 * 1024)
        assert transport.get_write_buffer_limits() == (64 * 1024, 256 * 1024)
        payload = os.urandom(16 << 20)              # far more than the kernel buffers take
        for i in range(0, len(payload), 1 << 20):
            transport.write(payload[i:i + (1 << 20)])
        assert transport.get_write_buffer_size() > 256 * 1024
        assert protocol.calls == ["made", "pause"]
        transport.write(memoryview(b"-tail"))       # any bytes-like object
        transport.write_eof()                       # after the buffer is out
        received = await asyncio.wait_for(_read_all(theirs), 20)
        assert received == payload + b"-tail"
        assert transport.get_write_buffer_size() == 0
        assert protocol.calls == ["made", "pause", "resume"]
        with pytest.raises(RuntimeError, match="write_eof"):
            transport.write(b"late")
        await asyncio.get_running_loop().sock_sendall(theirs, b"still reading")
        await asyncio.wait_for(protocol.arrived.wait(), 5)
        assert bytes(protocol.data) == b"still reading"
        theirs.close()                              # EOF: eof_received, then the transport closes
        assert await asyncio.wait_for(protocol.done, 5) is None
        assert protocol.calls == ["made", "pause", "resume", "eof", "lost"]
    run("asyncio", main())


def test_close_sends_what_is_buffered_first_and_abort_drops_it():
    async def main():
        payload = os.urandom(8 << 20)
        protocol, transport, theirs = await _pair()
        transport.write(payload)
        assert transport.get_write_buffer_size() > 0
        transport.close()
        transport.close()                            # twice is harmless
        assert transport.is_closing()
        assert await asyncio.wait_for(_read_all(theirs), 20) == payload
        assert await asyncio.wait_for(protocol.done, 5) is None
        theirs.close()

        protocol, transport, theirs = await _pair()
        transport.write(payload)
        transport.abort()
        assert transport.get_write_buffer_size() == 0
        got = await asyncio.wait_for(_read_all(theirs), 20)
        assert len(got) < len(payload) and payload.startswith(got)
        assert await asyncio.wait_for(protocol.done, 5) is None
        transport.write(b"after abort")              # dropped, as asyncio's transports do
        await asyncio.sleep(0.05)
        assert protocol.lost == [None] and protocol.calls.count("lost") == 1
        theirs.close()
    run("asyncio", main())


def test_connection_lost_runs_once_on_a_later_loop_turn_and_the_socket_closes():
    async def main():
        protocol, transport, theirs = await _pair()
        sock = transport.get_extra_info("socket")
        transport.close()
        transport.abort()
        transport.close()
        assert protocol.calls == ["made"]           # not from inside close()
        await asyncio.wait_for(protocol.done, 5)
        await asyncio.sleep(0.05)
        assert protocol.calls == ["made", "lost"]
        assert sock.fileno() == -1
        assert transport.get_extra_info("socket") is None
        assert transport.get_protocol() is None        # the cycle with the protocol is broken
        theirs.close()
    run("asyncio", main())


def test_eof_received_returning_true_keeps_the_write_side_open():
    async def main():
        protocol, transport, theirs = await _pair()
        protocol.keep_open_on_eof = True
        theirs.shutdown(socket.SHUT_WR)
        for _ in range(100):
            if "eof" in protocol.calls:
                break
            await asyncio.sleep(0.01)
        assert protocol.calls == ["made", "eof"] and not transport.is_closing()
        transport.pause_reading()
        transport.resume_reading()                  # nothing more to read: no second EOF
        await asyncio.sleep(0.05)
        assert protocol.calls == ["made", "eof"] and not transport.is_reading()
        transport.write(b"answer after their EOF")
        transport.close()
        assert await asyncio.wait_for(_read_all(theirs), 5) == b"answer after their EOF"
        assert await asyncio.wait_for(protocol.done, 5) is None
        theirs.close()
    run("asyncio", main())


def test_pause_reading_stops_delivery_until_resumed():
    async def main():
        loop = asyncio.get_running_loop()
        protocol, transport, theirs = await _pair()
        transport.pause_reading()
        assert not transport.is_reading()
        await loop.sock_sendall(theirs, b"held back")
        await asyncio.sleep(0.1)
        assert protocol.data == b""
        transport.resume_reading()
        assert transport.is_reading()
        await asyncio.wait_for(protocol.arrived.wait(), 5)
        assert bytes(protocol.data) == b"held back"
        transport.close()
        await protocol.done
        theirs.close()
    run("asyncio", main())


def test_a_reset_by_the_peer_ends_with_the_error():
    async def main():
        protocol, transport, theirs = await _pair()
        theirs.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        theirs.close()                              # RST, not FIN
        await asyncio.sleep(0.05)
        for _ in range(50):                         # a write notices the reset too
            transport.write(b"x" * 65536)
            if protocol.done.done():
                break
            await asyncio.sleep(0.01)
        exc = await asyncio.wait_for(protocol.done, 5)
        assert isinstance(exc, (ConnectionResetError, BrokenPipeError)) or exc is None
        assert protocol.calls.count("lost") == 1
    run("asyncio", main())


def test_a_failing_protocol_is_logged_and_the_connection_dropped(caplog):
    async def main():
        protocol, transport, theirs = await _pair()
        protocol.fail_on_data = True
        await asyncio.get_running_loop().sock_sendall(theirs, b"boom")
        exc = await asyncio.wait_for(protocol.done, 5)
        assert isinstance(exc, RuntimeError)
        assert await asyncio.wait_for(_read_all(theirs), 5) == b""
        theirs.close()
    with caplog.at_level(logging.ERROR, logger="ws2fast"):
        run("asyncio", main())
    assert "buffer_updated" in caplog.text


def test_native_server_accepts_connects_and_closes():
    async def main():
        accepted: list[Recorder] = []

        def factory():
            accepted.append(Recorder())
            return accepted[-1]

        server = await NativeServer.start(factory, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        clients = [await open_native_connection(Recorder, "127.0.0.1", port) for _ in range(3)]
        for _ in range(100):
            if len(accepted) == 3:
                break
            await asyncio.sleep(0.01)
        assert len(accepted) == 3
        assert all(type(p.transport) is SocketTransport for p in accepted + clients)
        clients[0].transport.write(b"hello server")
        await asyncio.wait_for(accepted[0].arrived.wait(), 5)
        assert bytes(accepted[0].data) == b"hello server"
        server.close()
        assert not server.is_serving()
        await server.wait_closed()
        with pytest.raises(OSError):
            await open_native_connection(Recorder, "127.0.0.1", port)
        for p in accepted + clients:
            p.transport.close()
            await asyncio.wait_for(p.done, 5)
    run("asyncio", main())


def test_native_transport_applies_only_to_cleartext_on_selector_loops(monkeypatch):
    async def main():
        loop = asyncio.get_running_loop()
        monkeypatch.delenv("WS2FAST_NATIVE_TRANSPORT", raising=False)
        assert native_transport_applies(loop, None, None)                # the default
        assert native_transport_applies(loop, Config(), None)
        assert not native_transport_applies(loop, Config(), object())   # TLS
        assert not native_transport_applies(loop, Config(native_transport=False), None)
        monkeypatch.setenv("WS2FAST_NATIVE_TRANSPORT", "0")
        assert not native_transport_applies(loop, None, None)
        assert native_transport_applies(loop, Config(native_transport=True), None)
    run("asyncio", main())
    with pytest.raises(TypeError, match="native_transport"):
        Config(native_transport="yes")


def test_which_transport_each_loop_and_scheme_gets(loop_kind, certificate):
    import ws2fast
    from tests.aio_helpers import client_context, server_context

    async def echo(ws):
        async for message in ws:
            await ws.send(message)

    async def main():
        ours = loop_kind == "asyncio"
        async with ws2fast.serve(echo, "127.0.0.1", 0) as plain, \
                ws2fast.serve(echo, "127.0.0.1", 0, ssl=server_context(*certificate)) as tls:
            assert isinstance(plain._server, NativeServer) is ours
            assert not isinstance(tls._server, NativeServer)
            for http2 in (True, False):
                async with ws2fast.connect(f"ws://127.0.0.1:{plain.port}/", http2=http2) as ws:
                    assert (type(ws._connection.transport) is SocketTransport) is ours
                    await ws.send("through")
                    assert await ws.recv() == "through"
            async with ws2fast.connect(f"wss://127.0.0.1:{tls.port}/", ssl=client_context(certificate[0])) as ws:
                assert type(ws._connection.transport) is not SocketTransport
                assert await ws.send("tls") is None and await ws.recv() == "tls"
    run(loop_kind, main())


def test_native_server_listens_on_several_hosts_and_leaves_other_options_to_asyncio():
    import ws2fast

    async def echo(ws):
        async for message in ws:
            await ws.send(message)

    async def main():
        server = await NativeServer.start(Recorder, ["127.0.0.1", "127.0.0.2", "127.0.0.1"], 0)
        assert sorted(s.getsockname()[0] for s in server.sockets) == ["127.0.0.1", "127.0.0.2"]
        server.close()
        await server.wait_closed()
        async with ws2fast.serve(echo, "127.0.0.1", 0, backlog=10) as native:
            assert isinstance(native._server, NativeServer)
        async with ws2fast.serve(echo, "127.0.0.1", 0, family=socket.AF_INET) as other:
            assert not isinstance(other._server, NativeServer)      # asyncio's, with its option
            async with ws2fast.connect(f"ws://127.0.0.1:{other.port}/") as ws:
                await ws.send("via asyncio's server")
                assert await ws.recv() == "via asyncio's server"
    run("asyncio", main())
