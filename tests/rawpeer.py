"""A hand-driven HTTP/2 peer for rule tests: it writes exactly the frames a test asks for
(hyperframe + hpack, independent of ws2fast) and reads back what ws2fast sent, so a test can
assert the exact GOAWAY / RST_STREAM / WINDOW_UPDATE and error code."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import hpack
from hyperframe import frame as hf

from ws2fast import Config, H2Connection
from ws2fast._core import PREFACE, build_ws_frame

CONNECT = [
    (b":method", b"CONNECT"), (b":protocol", b"websocket"), (b":scheme", b"https"),
    (b":path", b"/chat"), (b":authority", b"example.test"), (b"sec-websocket-version", b"13"),
]


class FrameBuilder:
    """Frames as a test asks for them (hyperframe + an hpack encoder of its own)."""

    encoder: hpack.Encoder

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


class RawPeer(FrameBuilder):
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

    # -- reading ----------------------------------------------------------------------------

    def read(self) -> list[Any]:
        """Frames ws2fast queued since the last read (headers decoded into ``.fields``)."""
        data = self._buffer + self.ours.data_to_send()
        if data.startswith(PREFACE):
            data = data[len(PREFACE):]
        frames, self._buffer = parse_frames(data, self.decoder)
        return frames


def parse_frames(data: bytes, decoder: hpack.Decoder) -> tuple[list[Any], bytes]:
    """The whole frames at the start of ``data`` (header blocks decoded into ``.fields``), and
    the bytes after them."""
    frames = []
    pos = 0
    while len(data) - pos >= 9:
        f, length = hf.Frame.parse_frame_header(memoryview(data[pos:pos + 9]))
        if len(data) - pos - 9 < length:
            break
        f.parse_body(memoryview(data[pos + 9:pos + 9 + length]))
        if isinstance(f, (hf.HeadersFrame, hf.ContinuationFrame)):
            f.fields = decoder.decode(f.data, raw=True)
        frames.append(f)
        pos += 9 + length
    return frames, data[pos:]


class SocketPeer(FrameBuilder):
    """The same raw peer as a client over a real socket (cleartext, or TLS with ALPN h2), for
    rules checked against the asyncio server: it writes exactly the frames a test asks for and
    collects every frame the server sends, with the end of the connection (``eof``: a FIN;
    ``reset``: the error that ended it)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        self.frames: list[Any] = []
        self.eof = False
        self.reset: BaseException | None = None
        self._buffer = b""

    @classmethod
    async def open(cls, port: int, ssl: Any = None, *, preface: bytes | None = PREFACE,
                   **settings: int) -> SocketPeer:
        """Connect; send the preface and SETTINGS (``preface=None``: send nothing yet)."""
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=ssl, server_hostname="localhost" if ssl else None)
        peer = cls(reader, writer)
        if preface is not None:
            peer.send(preface, peer.settings(**settings))
        return peer

    def send(self, *frames: Any) -> None:
        self.writer.write(b"".join(f if isinstance(f, (bytes, bytearray)) else f.serialize() for f in frames))

    async def until(self, done: Any, timeout: float = 5.0) -> list[Any]:
        """Read until ``done(frames)`` holds for the frames read so far, or the connection ends;
        returns the frames (all of them, since the connection opened)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not done(self.frames) and not self.eof and self.reset is None:
            left = deadline - loop.time()
            if left <= 0:
                raise AssertionError(f"timed out; frames so far: {self.frames}")
            try:
                chunk = await asyncio.wait_for(self.reader.read(65536), left)
            except asyncio.TimeoutError:         # (an OSError since Python 3.11: first)
                continue
            except OSError as exc:
                self.reset = exc
                break
            if not chunk:
                self.eof = True
            frames, self._buffer = parse_frames(self._buffer + chunk, self.decoder)
            self.frames += frames
        return self.frames

    async def quiet(self, seconds: float = 0.3) -> list[Any]:
        """Whatever frames come within ``seconds`` (nothing, if the server keeps still)."""
        before = len(self.frames)
        with contextlib.suppress(AssertionError):
            await self.until(lambda frames: False, seconds)
        return self.frames[before:]

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


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
