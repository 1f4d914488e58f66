"""HTTP/2 attacks against a real ``ws2fast.serve`` on 127.0.0.1: a raw attacker (hyperframe +
hpack over a plain socket, cleartext HTTP/2 by prior knowledge) sends each flood while a
well-behaved ws2fast client on another connection keeps echoing.  Each test asserts that the
attacker's connection ends with GOAWAY(ENHANCE_YOUR_CALM) within a bounded time, that the
server's traced memory (MEMORY_BOUND) and the process's RSS (RSS_BOUND) stay under stated
bounds, and that the other client's echo never
stopped.
"""

from __future__ import annotations

import asyncio
import time
import tracemalloc
from collections.abc import Callable

import hpack
import pytest
from hyperframe import frame as hf

import ws2fast
from tests.aio_helpers import run
from ws2fast._core import BUILD_PROFILE, PREFACE, build_frame_header, build_ws_frame
from ws2fast.errors import ErrorCode

CONNECT = [(b":method", b"CONNECT"), (b":protocol", b"websocket"), (b":scheme", b"http"),
           (b":path", b"/"), (b":authority", b"127.0.0.1"), (b"sec-websocket-version", b"13")]
ATTACK_SECONDS = 20          # the attacker's connection must be ended well within this
MEMORY_BOUND = 8 << 20       # traced memory the server may gain during an attack (bytes)
RSS_BOUND = 32 << 20         # RSS the test process (server and clients) may gain (bytes)
# Under AddressSanitizer (tests/test_sanitizers.py runs this module so) freed memory waits in
# quarantine and shadow memory is mapped as it goes: RSS says nothing there; tracemalloc does.
CHECK_RSS = BUILD_PROFILE != "sanitize"


def _rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


async def _echo(ws):
    async for message in ws:
        await ws.send(message)


class Attacker:
    """A raw HTTP/2 client: writes what it is told, reads frames until GOAWAY or EOF."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.encoder = hpack.Encoder()
        self.goaway: int | None = None
        self._buffer = b""

    @classmethod
    async def connect(cls, port: int) -> Attacker:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(PREFACE + hf.SettingsFrame(0).serialize())
        return cls(reader, writer)

    def headers(self, sid: int, fields=CONNECT, end_headers: bool = True) -> bytes:
        return hf.HeadersFrame(sid, self.encoder.encode(fields),
                               flags=["END_HEADERS"] if end_headers else []).serialize()

    async def send(self, data: bytes) -> bool:
        """False once the server has closed the connection."""
        try:
            self.writer.write(data)
            await self.writer.drain()
            return True
        except (ConnectionError, OSError):
            return False

    async def read_until_goaway(self, timeout: float) -> int | None:
        deadline = time.monotonic() + timeout
        while self.goaway is None and time.monotonic() < deadline:
            try:
                chunk = await asyncio.wait_for(self.reader.read(65536), deadline - time.monotonic())
            except (asyncio.TimeoutError, ConnectionError):
                break
            if not chunk:
                break
            self._buffer += chunk
            while len(self._buffer) >= 9:
                length = int.from_bytes(self._buffer[:3], "big")
                if len(self._buffer) < 9 + length:
                    break
                if self._buffer[3] == 0x7:                          # GOAWAY
                    self.goaway = int.from_bytes(self._buffer[9 + 4:9 + 8], "big")
                self._buffer = self._buffer[9 + length:]
        return self.goaway

    def close(self) -> None:
        self.writer.close()


async def _attack(flood: Callable[[Attacker], object], rounds: int) -> tuple[int | None, float, int, int]:
    """Serve; run a good client's echo loop and the flood side by side.  Returns the GOAWAY
    code the attacker saw, the seconds it took, and the server's traced memory growth."""
    async with ws2fast.serve(_echo, "127.0.0.1", 0) as server:
        async with ws2fast.connect(f"ws://127.0.0.1:{server.port}/", http2=True) as good:
            echoed = 0
            stop = asyncio.Event()

            async def well_behaved():
                nonlocal echoed
                while not stop.is_set():
                    await good.send(f"still here {echoed}")
                    assert await asyncio.wait_for(good.recv(), 5) == f"still here {echoed}"
                    echoed += 1
                    await asyncio.sleep(0.005)

            keeper = asyncio.create_task(well_behaved())
            await asyncio.sleep(0.05)
            before = echoed
            tracemalloc.start()
            try:
                baseline = tracemalloc.get_traced_memory()[0]
                rss_before = _rss()
                attacker = await Attacker.connect(server.port)
                started = time.monotonic()
                reading = asyncio.create_task(attacker.read_until_goaway(ATTACK_SECONDS))
                for i in range(rounds):
                    if reading.done() or not await attacker.send(flood(attacker, i)):
                        break
                code = await reading
                took = time.monotonic() - started
                grown = tracemalloc.get_traced_memory()[1] - baseline
                rss_grown = _rss() - rss_before
            finally:
                tracemalloc.stop()
            attacker.close()
            await asyncio.sleep(0.1)
            stop.set()
            await keeper                    # raises if an echo failed or stalled
            assert echoed > before, "the well-behaved client's echo stopped"
            return code, took, grown, rss_grown


def _batch(make: Callable[[Attacker, int], bytes], per_write: int = 100):
    # one write carries `per_write` frames, so the flood is fast
    return lambda attacker, i: b"".join(make(attacker, i * per_write + k) for k in range(per_write))


def _rapid_reset(a: Attacker, n: int) -> bytes:
    sid = 1 + 2 * n
    return a.headers(sid) + hf.RstStreamFrame(sid, error_code=ErrorCode.CANCEL).serialize()


def _made_you_reset(a: Attacker, n: int) -> bytes:
    sid = 1 + 2 * n                         # WINDOW_UPDATE of 0 on an open stream: we must reset it
    return a.headers(sid) + build_frame_header(0x8, 0, sid, 4) + b"\0\0\0\0"


def _ping(a: Attacker, n: int) -> bytes:
    return hf.PingFrame(0, opaque_data=n.to_bytes(8, "big")).serialize()


def _settings(a: Attacker, n: int) -> bytes:
    return build_frame_header(0x4, 0, 0, 0)


def _priority(a: Attacker, n: int) -> bytes:
    f = hf.PriorityFrame(1 + 2 * (n % 1000))
    f.depends_on, f.stream_weight = 0, 16
    return f.serialize()


def _continuation(a: Attacker, n: int) -> bytes:
    # one HEADERS without END_HEADERS, then CONTINUATIONs that never end it (VU#421644)
    head = a.headers(1, end_headers=False) if n == 0 else b""
    return head + build_frame_header(0x9, 0, 1, 16) + b"x-a: " + b"b" * 11


def _empty_data(a: Attacker, n: int) -> bytes:
    return (a.headers(1) if n == 0 else b"") + build_frame_header(0x0, 0, 1, 0)


ATTACKS = {
    "rapid reset (CVE-2023-44487)": (_batch(_rapid_reset), 200),
    "MadeYouReset (CVE-2025-8671)": (_batch(_made_you_reset), 200),
    "ping flood (CVE-2019-9512)": (_batch(_ping), 200),
    "settings flood (CVE-2019-9515)": (_batch(_settings), 200),
    "priority flood (CVE-2019-9513)": (_batch(_priority), 500),
    "CONTINUATION flood (VU#421644)": (_batch(_continuation), 200),
    "empty frames flood (CVE-2019-9518)": (_batch(_empty_data), 500),
}


@pytest.mark.parametrize("attack", ATTACKS)
def test_attack_is_ended_with_enhance_your_calm_and_others_keep_working(attack):
    flood, rounds = ATTACKS[attack]
    code, took, grown, rss_grown = run("asyncio", _attack(flood, rounds), timeout=ATTACK_SECONDS + 30)
    assert code == ErrorCode.ENHANCE_YOUR_CALM, f"{attack}: GOAWAY {code!r}"
    assert took < ATTACK_SECONDS
    assert grown < MEMORY_BOUND, f"{attack}: traced memory grew by {grown} bytes"
    assert not CHECK_RSS or rss_grown < RSS_BOUND, f"{attack}: RSS grew by {rss_grown} bytes"


def test_hpack_bomb_gets_431_and_bounded_memory():
    # CVE-2016-6581: one 4 KiB header enters the dynamic table, then one-octet references to it
    # would decode to 16 MiB; the decoder stops at max_header_list_size and answers 431.
    async def main():
        async with ws2fast.serve(_echo, "127.0.0.1", 0) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            encoder = hpack.Encoder()
            block = encoder.encode(CONNECT + [(b"x-bomb", b"b" * 4000)])
            index = bytes([0x80 | 62])                      # the newest dynamic entry
            bomb = encoder.encode(CONNECT) + index * 4096
            tracemalloc.start()
            try:
                baseline = tracemalloc.get_traced_memory()[0]
                rss_before = _rss()
                writer.write(PREFACE + hf.SettingsFrame(0).serialize()
                             + hf.HeadersFrame(1, block, flags=["END_HEADERS"]).serialize()
                             + hf.HeadersFrame(3, bomb, flags=["END_HEADERS"]).serialize())
                await writer.drain()
                decoder, statuses, data = hpack.Decoder(), {}, b""
                deadline = time.monotonic() + 10
                while 3 not in statuses and time.monotonic() < deadline:
                    chunk = await asyncio.wait_for(reader.read(65536), 10)
                    assert chunk, "the server closed the connection"
                    data += chunk
                    while len(data) >= 9 and len(data) >= 9 + int.from_bytes(data[:3], "big"):
                        length, kind, sid = int.from_bytes(data[:3], "big"), data[3], \
                            int.from_bytes(data[5:9], "big")
                        if kind == 0x1:
                            statuses[sid] = dict(decoder.decode(data[9:9 + length], raw=True))[b":status"]
                        data = data[9 + length:]
                grown = tracemalloc.get_traced_memory()[1] - baseline
                rss_grown = _rss() - rss_before
            finally:
                tracemalloc.stop()
            writer.close()
            return statuses, grown, rss_grown

    statuses, grown, rss_grown = run("asyncio", main(), timeout=30)
    assert statuses[3] == b"431"
    assert grown < MEMORY_BOUND, grown
    assert not CHECK_RSS or rss_grown < RSS_BOUND, rss_grown


# -- peers that never read ---------------------------------------------------------------------

STALL = ws2fast.Config(send_stall_timeout=1.0)


def test_http2_peer_that_keeps_its_window_closed_gets_the_stream_reset():
    async def main():
        async with ws2fast.serve(_echo, "127.0.0.1", 0, config=STALL) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            settings = hf.SettingsFrame(0)
            settings.settings = {hf.SettingsFrame.INITIAL_WINDOW_SIZE: 0}
            attacker = Attacker(reader, writer)
            writer.write(PREFACE + settings.serialize() + attacker.headers(1)
                         + hf.DataFrame(1, build_ws_frame(1, "echo me", mask=True)).serialize())
            started = time.monotonic()
            data, reset = b"", None
            while reset is None and time.monotonic() - started < 10:
                chunk = await asyncio.wait_for(reader.read(65536), 10)
                assert chunk
                data += chunk
                while len(data) >= 9 and len(data) >= 9 + int.from_bytes(data[:3], "big"):
                    length = int.from_bytes(data[:3], "big")
                    if data[3] == 0x3:
                        reset = (int.from_bytes(data[5:9], "big"), int.from_bytes(data[9:13], "big"))
                    data = data[9 + length:]
            writer.close()
            return reset, time.monotonic() - started

    reset, took = run("asyncio", main(), timeout=30)
    assert reset == (1, ErrorCode.CANCEL)
    assert 0.9 < took < 5


def test_http1_peer_that_never_reads_is_dropped():
    async def main():
        async with ws2fast.serve(_echo, "127.0.0.1", 0, config=STALL) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
            frame = build_ws_frame(2, b"z" * 65536, mask=True)
            sent = 0
            tracemalloc.start()
            try:
                baseline = tracemalloc.get_traced_memory()[0]
                rss_before = _rss()
                started = time.monotonic()
                try:
                    while sent < 64 << 20 and time.monotonic() - started < 10:     # never reading
                        writer.write(frame)
                        await asyncio.wait_for(writer.drain(), 2)
                        sent += len(frame)
                except (asyncio.TimeoutError, ConnectionError):
                    pass                        # the server stopped reading us, or dropped us
                closed = False
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    try:
                        if not await asyncio.wait_for(reader.read(1 << 20), deadline - time.monotonic()):
                            closed = True
                            break
                    except ConnectionError:
                        closed = True
                        break
                    except asyncio.TimeoutError:
                        break
                grown = tracemalloc.get_traced_memory()[1] - baseline
                rss_grown = _rss() - rss_before
            finally:
                tracemalloc.stop()
            writer.close()
            return closed, sent, grown, rss_grown

    closed, sent, grown, rss_grown = run("asyncio", main(), timeout=40)
    assert closed, "the connection of a peer that never reads was not dropped"
    assert sent < 64 << 20                      # the server stopped reading it long before
    assert grown < MEMORY_BOUND, grown
    assert not CHECK_RSS or rss_grown < RSS_BOUND, rss_grown


# -- slowloris: connections that drip their request ----------------------------------------------

SLOW = ws2fast.Config(handshake_timeout=1.0, idle_timeout=1.0)
SLOW_CLIENTS = 200


async def _drip(port: int, first: bytes, drip: bytes, seconds: float) -> float | None:
    """Open a connection, send ``first``, then one byte of ``drip`` every 50 ms (cycling) for
    at most ``seconds``; the seconds until the server closed it, or None if it never did."""
    # The clock starts before the connect: the server's starts when it accepts, which may be well
    # before this coroutine resumes on a loaded machine (then an early close would look early).
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(first)
        i = 0
        while time.monotonic() - started < seconds:
            try:
                data = await asyncio.wait_for(reader.read(65536), 0.05)
                if not data:
                    return time.monotonic() - started
                continue                    # an answer to an earlier request: keep reading
            except asyncio.TimeoutError:
                pass
            except ConnectionError:
                return time.monotonic() - started
            writer.write(drip[i % len(drip):i % len(drip) + 1])
            i += 1
        return None
    finally:
        writer.close()


GET = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n"
KINDS = {
    # HTTP/1.1 request head that never ends
    "head": (GET, b"X-Slow: " + b"a" * 100),
    # a complete head, then a body that never ends
    "body": (b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n", b"b"),
    # one request answered, then the next one dripped (keep-alive: idle_timeout)
    "keep-alive": (GET + b"\r\n", GET + b"X-Slow: " + b"a" * 100),
    # the HTTP/2 preface, a byte at a time
    "http2-preface": (b"", PREFACE),
}


def test_slowloris_connections_are_closed_and_others_keep_working():
    async def main():
        async with ws2fast.serve(_echo, "127.0.0.1", 0, config=SLOW) as server:
            async with ws2fast.connect(f"ws://127.0.0.1:{server.port}/", http2=False) as good:
                tracemalloc.start()
                try:
                    baseline = tracemalloc.get_traced_memory()[0]
                    rss_before = _rss()
                    kinds = list(KINDS.values())
                    drips = [asyncio.create_task(_drip(server.port, *kinds[i % len(kinds)], 8.0))
                             for i in range(SLOW_CLIENTS)]
                    echoed = 0
                    while not all(d.done() for d in drips):
                        await good.send(f"still here {echoed}")
                        assert await asyncio.wait_for(good.recv(), 5) == f"still here {echoed}"
                        echoed += 1
                        await asyncio.sleep(0.02)
                    grown = tracemalloc.get_traced_memory()[1] - baseline
                    rss_grown = _rss() - rss_before
                finally:
                    tracemalloc.stop()
                closed_after = [d.result() for d in drips]
                await asyncio.sleep(0.1)
                left = len(server.connections)
            return closed_after, echoed, grown, rss_grown, left

    closed_after, echoed, grown, rss_grown, left = run("asyncio", main(), timeout=60)
    names = list(KINDS)
    for i, took in enumerate(closed_after):
        kind = names[i % len(names)]
        assert took is not None, f"{kind} slowloris connection {i} was never closed"
        assert 0.9 < took < 4, f"{kind}: closed after {took:.2f} s (timeouts are 1 s)"
    assert echoed > 20                      # the good client echoed throughout
    assert grown < MEMORY_BOUND, grown
    assert not CHECK_RSS or rss_grown < RSS_BOUND, rss_grown
    assert left == 1                        # only the good client's connection remains
