"""WebSocket messages over HTTP/2: ws2fast.H2Connection against the h2 + wsproto stack that
Python servers use today (hypercorn's), on the same bytes in the same run.

The wire is what a client sends on one accepted WebSocket stream: masked single-frame binary
messages, one per DATA frame, ~1 MiB per round (at least 16 messages), fed in 64 KiB chunks as
reads from a socket would come.  Each side keeps its connection across rounds and gives the flow
control window back as it goes (ws2fast: as parsed; h2: acknowledge_received_data per DATA).

- receive: bytes in -> message events out (and the WINDOW_UPDATEs taken from the output);
- echo: receive, send every message back on its stream, and take the output bytes.

Run: ``python -m pytest bench/bench_h2connection.py --benchmark-enable``.
"""

from __future__ import annotations

import h2.config
import h2.connection
import h2.events
import pytest
from wsproto.connection import Connection as WsConnection
from wsproto.connection import ConnectionType
from wsproto.events import BytesMessage

from ws2fast import Config, H2Connection
from ws2fast.frames import PREFACE, build_data, build_headers, build_settings, build_window_update
from ws2fast.hpack import Encoder
from ws2fast.wsframes import build_frame

CHUNK = 64 * 1024
STREAM_BYTES = 1 << 20
SIZES = {"16B": 16, "125B": 125, "4KiB": 4096}
CONNECT = [(b":method", b"CONNECT"), (b":protocol", b"websocket"), (b":scheme", b"https"),
           (b":path", b"/"), (b":authority", b"bench.test"), (b"sec-websocket-version", b"13")]


def make_wire(size: int, echo: bool = False) -> tuple[bytes, list[bytes], int]:
    """(client preamble, message chunks, messages per round).

    For the echo, each round begins with the client's WINDOW_UPDATEs for what the server will
    send back in it, as a reading client would send them, so neither side ever waits.
    """
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    data = build_data(1, build_frame(2, payload, mask_key=b"\x9a\x01\x7e\x33"))
    count = max(16, STREAM_BYTES // len(data))
    wire = data * count
    if echo:
        back = count * len(build_frame(2, payload))
        wire = build_window_update(0, back) + build_window_update(1, back) + wire
    # the client's SETTINGS, its ACK of the server's, and the extended CONNECT
    preamble = (PREFACE + build_settings({}) + build_settings(ack=True)
                + build_headers(1, Encoder().encode(CONNECT)))
    return preamble, [wire[i:i + CHUNK] for i in range(0, len(wire), CHUNK)], count


class Ws2fastServer:
    def __init__(self, preamble: bytes) -> None:
        # A connection window that does not bound a 1 MiB round (both stacks refill theirs).
        self.conn = H2Connection(client_side=False, config=Config(connection_window_size=1 << 24))
        self.conn.initiate()
        self.conn.receive_data(preamble)
        self.conn.accept_websocket(1)
        self.conn.data_to_send()

    def receive(self, chunks: list[bytes]) -> int:
        conn = self.conn
        n = 0
        for chunk in chunks:
            n += len(conn.receive_data(chunk))
        conn.data_to_send()
        return n

    def echo(self, chunks: list[bytes]) -> int:
        conn = self.conn
        send = conn.send_message
        n = 0
        for chunk in chunks:
            for event in conn.receive_data(chunk):
                send(event.stream_id, event.data)
                n += 1
            conn.data_to_send()
        assert conn.outgoing_buffered(1) == 0       # all of it went out, none waits
        return n


class H2WsprotoServer:
    """hypercorn's stack: h2 for HTTP/2, a wsproto Connection per WebSocket stream."""

    def __init__(self, preamble: bytes) -> None:
        config = h2.config.H2Configuration(client_side=False, header_encoding=None)
        self.conn = h2.connection.H2Connection(config)
        self.conn.initiate_connection()
        self.conn.update_settings({0x8: 1, 0x4: 1 << 24})
        self.conn.increment_flow_control_window((1 << 24) - 65535)
        for event in self.conn.receive_data(preamble):
            if isinstance(event, h2.events.RequestReceived):
                self.conn.send_headers(event.stream_id, [(b":status", b"200")])
        self.ws = {1: WsConnection(ConnectionType.SERVER)}
        self.conn.data_to_send()

    def _messages(self, chunk: bytes):
        conn = self.conn
        for event in conn.receive_data(chunk):
            if isinstance(event, h2.events.DataReceived):
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                ws = self.ws[event.stream_id]
                ws.receive_data(event.data)
                for message in ws.events():
                    yield event.stream_id, message

    def receive(self, chunks: list[bytes]) -> int:
        n = 0
        for chunk in chunks:
            for _ in self._messages(chunk):
                n += 1
        self.conn.data_to_send()
        return n

    def echo(self, chunks: list[bytes]) -> int:
        conn = self.conn
        n = 0
        for chunk in chunks:
            for sid, message in self._messages(chunk):
                conn.send_data(sid, self.ws[sid].send(BytesMessage(data=message.data)))
                n += 1
            conn.data_to_send()
        return n


SERVERS = {"ws2fast": Ws2fastServer, "h2+wsproto": H2WsprotoServer}


@pytest.mark.parametrize("impl", SERVERS)
@pytest.mark.parametrize("size", SIZES)
def test_receive_messages_over_h2(benchmark, impl, size):
    preamble, chunks, count = make_wire(SIZES[size])
    server = SERVERS[impl](preamble)
    benchmark.group = f"receive {size} binary messages over HTTP/2 ({count} msgs/round)"
    benchmark.extra_info["messages_per_round"] = count
    assert benchmark(server.receive, chunks) == count


@pytest.mark.parametrize("impl", SERVERS)
@pytest.mark.parametrize("size", SIZES)
def test_echo_messages_over_h2(benchmark, impl, size):
    preamble, chunks, count = make_wire(SIZES[size], echo=True)
    server = SERVERS[impl](preamble)
    benchmark.group = f"echo {size} binary messages over HTTP/2 ({count} msgs/round)"
    benchmark.extra_info["messages_per_round"] = count
    assert benchmark(server.echo, chunks) == count
