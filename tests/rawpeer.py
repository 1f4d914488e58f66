"""A hand-driven HTTP/2 peer for rule tests: it writes exactly the frames a test asks for
(hyperframe + hpack, independent of ws2fast) and reads back what ws2fast sent, so a test can
assert the exact GOAWAY / RST_STREAM / WINDOW_UPDATE and error code."""

from __future__ import annotations

from typing import Any

import hpack
from hyperframe import frame as hf

from ws2fast import Config, H2Connection
from ws2fast._core import PREFACE, build_ws_frame

CONNECT = [
    (b":method", b"CONNECT"), (b":protocol", b"websocket"), (b":scheme", b"https"),
    (b":path", b"/chat"), (b":authority", b"example.test"), (b"sec-websocket-version", b"13"),
]


class RawPeer:
    """Drives an ``H2Connection`` (ours) with raw frames and parses what it answers."""

    def __init__(self, ours: H2Connection) -> None:
        self.ours = ours
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        self.events: list[Any] = []
        self._buffer = b""

    # -- writing ----------------------------------------------------------------------------

    def send(self, *frames: Any) -> list[Any]:
        data = b"".join(f if isinstance(f, (bytes, bytearray)) else f.serialize() for f in frames)
        events = self.ours.receive_data(data)
        self.events += events
        return events

    def settings(self, ack: bool = False, **values: int) -> Any:
        f = hf.SettingsFrame(0, flags=["ACK"] if ack else [])
        f.settings = {getattr(hf.SettingsFrame, k): v for k, v in values.items()}
        return f

    def headers(self, sid: int, fields: list[tuple[bytes, bytes]], end_stream: bool = False,
                end_headers: bool = True) -> Any:
        flags = (["END_STREAM"] if end_stream else []) + (["END_HEADERS"] if end_headers else [])
        return hf.HeadersFrame(sid, self.encoder.encode(fields), flags=flags)

    def data(self, sid: int, payload: bytes, end_stream: bool = False) -> Any:
        return hf.DataFrame(sid, payload, flags=["END_STREAM"] if end_stream else [])

    def ws(self, sid: int, opcode: int, payload: bytes | str, end_stream: bool = False) -> Any:
        return self.data(sid, build_ws_frame(opcode, payload, mask=True), end_stream)

    # -- reading ----------------------------------------------------------------------------

    def read(self) -> list[Any]:
        """Frames ws2fast queued since the last read (headers decoded into ``.fields``)."""
        data = self._buffer + self.ours.data_to_send()
        if data.startswith(PREFACE):
            data = data[len(PREFACE):]
        frames = []
        pos = 0
        while len(data) - pos >= 9:
            f, length = hf.Frame.parse_frame_header(memoryview(data[pos:pos + 9]))
            if len(data) - pos - 9 < length:
                break
            f.parse_body(memoryview(data[pos + 9:pos + 9 + length]))
            if isinstance(f, (hf.HeadersFrame, hf.ContinuationFrame)):
                f.fields = self.decoder.decode(f.data, raw=True)
            frames.append(f)
            pos += 9 + length
        self._buffer = data[pos:]
        return frames


def server_pair(config: Config | None = None, **settings: int) -> RawPeer:
    """Our server after the connection preface and SETTINGS exchange with a raw client."""
    ours = H2Connection(client_side=False, config=config)
    ours.initiate()
    peer = RawPeer(ours)
    peer.send(PREFACE, peer.settings(**settings), peer.settings(ack=True))
    peer.read()
    return peer


def client_pair(config: Config | None = None, **settings: int) -> RawPeer:
    """Our client after the SETTINGS exchange with a raw server."""
    ours = H2Connection(client_side=True, config=config)
    ours.initiate()
    peer = RawPeer(ours)
    peer.read()
    peer.send(peer.settings(**settings), peer.settings(ack=True))
    peer.read()
    return peer


def open_websocket(peer: RawPeer, sid: int, fields: list[tuple[bytes, bytes]] | None = None) -> None:
    """Raw client: extended CONNECT on ``sid``; ours accepts it."""
    peer.send(peer.headers(sid, fields or CONNECT))
    peer.ours.accept_websocket(sid)
    peer.read()


def rst(frames: list[Any]) -> dict[int, int]:
    return {f.stream_id: f.error_code for f in frames if isinstance(f, hf.RstStreamFrame)}


def goaway(frames: list[Any]) -> list[int]:
    return [f.error_code for f in frames if isinstance(f, hf.GoAwayFrame)]


def status(frames: list[Any], sid: int) -> list[bytes]:
    return [dict(f.fields)[b":status"] for f in frames
            if isinstance(f, hf.HeadersFrame) and f.stream_id == sid]
