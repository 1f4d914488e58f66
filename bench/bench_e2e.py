"""End-to-end echo over loopback: each implementation's client against its own server, the
server in a separate process, both pinned to the same CPU (taskset / sched_setaffinity), all on
asyncio's event loop, in the same run so the ratios can be read.

- request-response: send one message, wait for its echo, repeat (ROUND_TRIPS per round);
- pipelined: 100 messages in flight (MESSAGES per round).

ws2fast runs over cleartext HTTP/2 (prior knowledge, RFC 8441) and over HTTP/1.1, with its
coroutine API (``await ws.recv()``) and with its callback API (``WebSocketListener``, the
same style as picows's); picows,
websockets and aiohttp over HTTP/1.1; hypercorn serves WebSockets over cleartext HTTP/2 to an
h2 + wsproto client (there is no other Python HTTP/2 WebSocket client).

Run: ``python -m pytest bench/bench_e2e.py --benchmark-enable``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

CPU = (max(os.sched_getaffinity(0)),) if hasattr(os, "sched_getaffinity") else (0,)
ROUND_TRIPS = 500
MESSAGES = 2000
IN_FLIGHT = 100
SIZES = {"64B": 64, "4KiB": 4096}
SERVER_OF = {"ws2fast-h2": "ws2fast", "ws2fast-h1": "ws2fast", "ws2fast-h2-listener": "ws2fast-listener",
             "ws2fast-h1-listener": "ws2fast-listener", "picows": "picows", "websockets": "websockets",
             "aiohttp": "aiohttp", "hypercorn-h2": "hypercorn"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def servers():
    """Start each server once (pinned), yield {impl: port}, stop them by PID."""
    started: dict[str, tuple[subprocess.Popen, int]] = {}
    script = str(Path(__file__).with_name("e2e_servers.py"))
    taskset = shutil.which("taskset")

    def get(impl: str) -> int:
        if impl not in started:
            port = _free_port()
            command = [sys.executable, script, impl, str(port)]
            if taskset:
                command = [taskset, "-c", ",".join(map(str, CPU))] + command
            # the checkout's ws2fast, whatever is installed
            env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
            started[impl] = (process, port)
            line = process.stdout.readline()
            if line.strip() != "ready":
                process.kill()
                raise AssertionError(f"the {impl} server did not start: {process.communicate()[1][-2000:]}")
        return started[impl][1]

    yield get
    for process, _ in started.values():
        process.kill()
        process.communicate()


class Client:
    """A connected client with burst methods; each implementation fills in send/recv."""

    async def request_response(self, payload: bytes, n: int) -> int:
        for _ in range(n):
            await self.send(payload)
            assert len(await self.recv()) == len(payload)
        return n

    async def pipelined(self, payload: bytes, n: int) -> int:
        for _ in range(min(IN_FLIGHT, n)):
            await self.send(payload)
        sent = min(IN_FLIGHT, n)
        for _ in range(n):
            assert len(await self.recv()) == len(payload)
            if sent < n:
                await self.send(payload)
                sent += 1
        return n


class Ws2fastClient(Client):
    async def connect(self, port: int, http2: bool) -> None:
        import ws2fast
        self.ws = await ws2fast.connect(f"ws://127.0.0.1:{port}/", http2=http2,
                                        config=ws2fast.Config(ping_interval=None))
        self.send, self.recv = self.ws.send, self.ws.recv

    async def close(self) -> None:
        await self.ws.close()


class WebsocketsClient(Client):
    async def connect(self, port: int) -> None:
        from websockets.asyncio.client import connect
        self.ws = await connect(f"ws://127.0.0.1:{port}/", compression=None, max_size=None, ping_interval=None)
        self.send, self.recv = self.ws.send, self.ws.recv

    async def close(self) -> None:
        await self.ws.close()


class AiohttpClient(Client):
    async def connect(self, port: int) -> None:
        import aiohttp
        self.session = aiohttp.ClientSession()
        self.ws = await self.session.ws_connect(f"http://127.0.0.1:{port}/", autoping=True)

    async def send(self, payload: bytes) -> None:
        await self.ws.send_bytes(payload)

    async def recv(self) -> bytes:
        return (await self.ws.receive()).data

    async def close(self) -> None:
        await self.ws.close()
        await self.session.close()


class PicowsClient(Client):
    """picows is callback-based: the bursts run inside its listener."""

    async def connect(self, port: int) -> None:
        from picows import WSListener, WSMsgType, ws_connect
        client = self

        class Listener(WSListener):
            def on_ws_frame(self, transport, frame):
                if frame.msg_type != WSMsgType.BINARY:
                    return
                client.received += 1
                if client.received == client.target:
                    client.done.set_result(None)
                elif client.sent < client.target:
                    transport.send(WSMsgType.BINARY, client.payload)
                    client.sent += 1

        self.binary = WSMsgType.BINARY
        self.transport, _ = await ws_connect(Listener, f"ws://127.0.0.1:{port}/")

    async def _burst(self, payload: bytes, n: int, window: int) -> int:
        self.payload, self.target, self.received, self.sent = payload, n, 0, 0
        self.done = asyncio.get_running_loop().create_future()
        for _ in range(min(window, n)):
            self.transport.send(self.binary, payload)
            self.sent += 1
        await self.done
        return n

    async def request_response(self, payload: bytes, n: int) -> int:
        return await self._burst(payload, n, 1)

    async def pipelined(self, payload: bytes, n: int) -> int:
        return await self._burst(payload, n, IN_FLIGHT)

    async def close(self) -> None:
        self.transport.send_close()
        self.transport.disconnect()


class Ws2fastListenerClient(PicowsClient):
    """ws2fast's callback API, driven the way the picows client is."""

    async def connect(self, port: int, http2: bool) -> None:
        import ws2fast
        client = self

        class Listener(ws2fast.WebSocketListener):
            def on_message(self, ws, message):
                client.received += 1
                if client.received == client.target:
                    client.done.set_result(None)
                elif client.sent < client.target:
                    ws.send_nowait(client.payload)
                    client.sent += 1

        self.ws = await ws2fast.connect(f"ws://127.0.0.1:{port}/", http2=http2, listener=Listener,
                                        config=ws2fast.Config(ping_interval=None))

    async def _burst(self, payload: bytes, n: int, window: int) -> int:
        self.payload, self.target, self.received, self.sent = payload, n, 0, 0
        self.done = asyncio.get_running_loop().create_future()
        for _ in range(min(window, n)):
            self.ws.send_nowait(payload)
            self.sent += 1
        await self.done
        return n

    async def close(self) -> None:
        await self.ws.close()


class H2WsprotoClient(Client):
    """An RFC 8441 client built on h2 + wsproto (for hypercorn)."""

    async def connect(self, port: int) -> None:
        import h2.config
        import h2.connection
        import h2.events
        from wsproto.connection import Connection, ConnectionType

        self.h2events = h2.events
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", port)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
        self.conn.initiate_connection()
        self.conn.increment_flow_control_window(2**30)
        self.writer.write(self.conn.data_to_send())
        self.queue: list[bytes] = []
        self.partial: list[bytes] = []
        while not self.conn.remote_settings.enable_connect_protocol:
            await self._read()
        self.conn.send_headers(1, [(b":method", b"CONNECT"), (b":protocol", b"websocket"), (b":scheme", b"http"),
                                   (b":path", b"/"), (b":authority", f"127.0.0.1:{port}".encode()),
                                   (b"sec-websocket-version", b"13")])
        self.writer.write(self.conn.data_to_send())
        self.ws = Connection(ConnectionType.CLIENT)
        self.accepted = False
        while not self.accepted:
            await self._read()

    async def _read(self) -> None:
        from wsproto.events import BytesMessage
        data = await self.reader.read(65536)
        assert data, "hypercorn closed the connection"
        for event in self.conn.receive_data(data):
            if isinstance(event, self.h2events.ResponseReceived):
                self.accepted = dict(event.headers)[b":status"] == b"200"
            elif isinstance(event, self.h2events.DataReceived):
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                self.ws.receive_data(event.data)
                for message in self.ws.events():
                    if isinstance(message, BytesMessage):       # wsproto hands out pieces
                        self.partial.append(message.data)
                        if message.message_finished:
                            self.queue.append(b"".join(self.partial))
                            self.partial.clear()
        out = self.conn.data_to_send()
        if out:
            self.writer.write(out)

    async def send(self, payload: bytes) -> None:
        from wsproto.events import BytesMessage
        data = self.ws.send(BytesMessage(data=payload))
        while self.conn.local_flow_control_window(1) < len(data):
            await self._read()                          # wait for hypercorn's WINDOW_UPDATE
        self.conn.send_data(1, data)
        self.writer.write(self.conn.data_to_send())

    async def recv(self) -> bytes:
        while not self.queue:
            await self._read()
        return self.queue.pop(0)

    async def close(self) -> None:
        self.writer.close()


async def _client(impl: str, port: int) -> Client:
    if impl.startswith("ws2fast"):
        client: Client = Ws2fastListenerClient() if impl.endswith("listener") else Ws2fastClient()
        await client.connect(port, http2="-h2" in impl)
    else:
        client = {"picows": PicowsClient, "websockets": WebsocketsClient, "aiohttp": AiohttpClient,
                  "hypercorn-h2": H2WsprotoClient}[impl]()
        await client.connect(port)
    return client


@contextlib.contextmanager
def _pinned_loop():
    """A fresh event loop, this process pinned to the servers' CPU, and the test process's
    heap frozen out of the collector's way while the caller measures."""
    loop = asyncio.new_event_loop()
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    if affinity is not None:
        os.sched_setaffinity(0, set(CPU))
    try:
        yield loop
    finally:
        if affinity is not None:
            os.sched_setaffinity(0, affinity)
        loop.close()


def _payload(size: str) -> bytes:
    return bytes(range(256)) * (SIZES[size] // 256) or b"p" * SIZES[size]


@contextlib.contextmanager
def _frozen_heap():
    # The test process holds every imported test module: move that heap out of the collector's
    # way, for every implementation alike, so that a collection triggered by one client's
    # allocations does not scan pytest's objects.
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def measure_echo(benchmark, loop, client, mode: str, size: str, group: str) -> None:
    """Benchmark ``client``'s bursts (request-response or 100 in flight) on ``loop``, then close
    it: the measuring part shared by bench_uvicorn.py and bench_asgi.py."""
    payload = _payload(size)
    n = ROUND_TRIPS if mode == "request-response" else MESSAGES
    burst = client.request_response if mode == "request-response" else client.pipelined
    benchmark.group = f"{group} {size} {mode} ({n} msgs/round, one CPU)"
    benchmark.extra_info["messages_per_round"] = n
    benchmark.extra_info["in_flight"] = 1 if mode == "request-response" else IN_FLIGHT

    def run_burst() -> int:
        return loop.run_until_complete(asyncio.wait_for(burst(payload, n), 60))

    with _frozen_heap():
        assert benchmark(run_burst) == n
    loop.run_until_complete(asyncio.wait_for(client.close(), 10))


@pytest.mark.parametrize("impl", list(SERVER_OF))
@pytest.mark.parametrize("mode", ["request-response", "pipelined"])
@pytest.mark.parametrize("size", SIZES)
def test_echo_end_to_end(benchmark, servers, impl, mode, size):
    if impl == "picows":
        pytest.importorskip("picows", reason="picows is not installed")
    if impl == "hypercorn-h2":
        pytest.importorskip("hypercorn", reason="hypercorn is not installed")
    port = servers(SERVER_OF[impl])
    with _pinned_loop() as loop:
        client = loop.run_until_complete(asyncio.wait_for(_client(impl, port), 30))
        payload = _payload(size)
        n = ROUND_TRIPS if mode == "request-response" else MESSAGES
        burst = client.request_response if mode == "request-response" else client.pipelined
        benchmark.group = f"echo {size} {mode} over loopback ({n} msgs/round, one CPU)"
        benchmark.extra_info["messages_per_round"] = n

        def run_burst() -> int:
            return loop.run_until_complete(asyncio.wait_for(burst(payload, n), 60))

        with _frozen_heap():
            assert benchmark(run_burst) == n
        loop.run_until_complete(asyncio.wait_for(client.close(), 10))


INTERLEAVED = ("picows", "ws2fast-h2-listener", "ws2fast-h1-listener")
INTERLEAVED_ROUNDS = 30


@pytest.mark.parametrize("size", SIZES)
def test_request_response_interleaved(benchmark, servers, size):
    """The request-response target read the way the machine's noise disturbs least: picows and
    ws2fast's listener clients (HTTP/2 and HTTP/1.1) take turns, burst by burst, on one loop, in
    an order that alternates; each ws2fast burst is compared with the picows burst of its own
    round, and the median of those ratios goes to ``extra_info`` (and is printed).  The
    benchmark's own time is one round of all three."""
    pytest.importorskip("picows", reason="picows is not installed")
    ports = {impl: servers(SERVER_OF[impl]) for impl in INTERLEAVED}
    with _pinned_loop() as loop:
        clients = {impl: loop.run_until_complete(asyncio.wait_for(_client(impl, ports[impl]), 30))
                   for impl in INTERLEAVED}
        payload = _payload(size)
        seconds: dict[str, list[float]] = {impl: [] for impl in INTERLEAVED}
        benchmark.group = f"echo {size} request-response, interleaved ({ROUND_TRIPS} msgs/burst, one CPU)"

        def one_round() -> int:
            order = INTERLEAVED if len(seconds["picows"]) % 2 == 0 else INTERLEAVED[::-1]
            done = 0
            for impl in order:
                start = time.perf_counter()
                done += loop.run_until_complete(asyncio.wait_for(
                    clients[impl].request_response(payload, ROUND_TRIPS), 60))
                seconds[impl].append(time.perf_counter() - start)
            return done

        with _frozen_heap():
            assert benchmark.pedantic(one_round, rounds=INTERLEAVED_ROUNDS, warmup_rounds=1) \
                % (len(INTERLEAVED) * ROUND_TRIPS) == 0
        for impl in INTERLEAVED[1:]:
            ratios = [p / w for p, w in zip(seconds["picows"], seconds[impl], strict=True)]
            assert ratios and all(r > 0 for r in ratios)
            ratios = ratios[1:] or ratios                   # the first round warmed up
            ratio = statistics.median(ratios)
            benchmark.extra_info[f"{impl} / picows"] = round(ratio, 3)
            print(f"\n{size} request-response, {impl}: {ratio:.3f}x picows "
                  f"(median of {len(ratios)} interleaved rounds)")
        for client in clients.values():
            loop.run_until_complete(asyncio.wait_for(client.close(), 10))
