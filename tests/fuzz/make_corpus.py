"""Write the seed corpora kept in tests/fuzz/corpus/<harness>/ (run from the repository root:
``python tests/fuzz/make_corpus.py``).  Seeds are valid conversations, built with independent
encoders (hpack, hyperframe) where they exist; the first octet of each is the harness's option
octet (chunk size and flags)."""

from __future__ import annotations

import zlib
from pathlib import Path

import hpack
from hyperframe import frame as hf

from ws2fast._core import build_ws_close, build_ws_frame

ROOT = Path(__file__).with_name("corpus")
CONNECT = [(b":method", b"CONNECT"), (b":protocol", b"websocket"), (b":scheme", b"https"),
           (b":path", b"/chat"), (b":authority", b"fuzz.test"), (b"sec-websocket-version", b"13"),
           (b"sec-websocket-extensions", b"permessage-deflate")]


def _deflated(text: bytes) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return (c.compress(text) + c.flush(zlib.Z_SYNC_FLUSH))[:-4]


def _ws(mask: bool) -> bytes:
    return (build_ws_frame(1, "hello", mask=mask) + build_ws_frame(2, b"\0" * 200, mask=mask)
            + build_ws_frame(1, "frag", fin=False, mask=mask) + build_ws_frame(9, b"p", mask=mask)
            + build_ws_frame(0, "ment", mask=mask)
            + build_ws_frame(1, _deflated(b"compressed " * 20), rsv1=True, mask=mask)
            + build_ws_close(1000, "bye", mask=mask))


def _frames(*frames) -> bytes:
    return b"".join(f.serialize() for f in frames)


def seeds() -> dict[str, list[bytes]]:
    enc = hpack.Encoder()
    settings = hf.SettingsFrame(0)
    settings.settings = {hf.SettingsFrame.INITIAL_WINDOW_SIZE: 100000, hf.SettingsFrame.ENABLE_CONNECT_PROTOCOL: 1}
    ping = hf.PingFrame(0, opaque_data=b"12345678")
    server_conversation = _frames(settings, hf.SettingsFrame(0, flags=["ACK"]),
                                  hf.WindowUpdateFrame(0, window_increment=1000),
                                  hf.HeadersFrame(1, enc.encode(CONNECT), flags=["END_HEADERS"]),
                                  hf.DataFrame(1, _ws(True)), ping, hf.DataFrame(1, b"", flags=["END_STREAM"]),
                                  hf.HeadersFrame(3, enc.encode(CONNECT), flags=["END_HEADERS"]),
                                  hf.RstStreamFrame(3, error_code=8), hf.GoAwayFrame(0, last_stream_id=3))
    enc2 = hpack.Encoder()
    client_conversation = _frames(
        hf.HeadersFrame(1, enc2.encode([(b":status", b"200"), (b"sec-websocket-extensions", b"permessage-deflate")]),
                        flags=["END_HEADERS"]),
        hf.DataFrame(1, _ws(False)), hf.HeadersFrame(3, enc2.encode([(b":status", b"403")]),
                                                     flags=["END_HEADERS", "END_STREAM"]),
        hf.WindowUpdateFrame(1, window_increment=5), ping)
    blocks = [hpack.Encoder().encode(CONNECT), hpack.Encoder().encode([(b"x" * 40, b"y" * 100)] * 3)]
    upgrade = (b"GET /chat HTTP/1.1\r\nHost: fuzz.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
               b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n")
    return {
        "h2_frame_reader": [bytes([255]) + server_conversation, bytes([8]) + client_conversation],
        "hpack_decoder": [bytes([len(b) - 1]) + b for b in blocks if len(b) <= 256],
        "websocket_frame_parser": [bytes([0 | 2 | 16]) + _ws(True), bytes([1 | 2 | 8]) + _ws(False),
                                   bytes([1]) + build_ws_frame(2, b"\1" * 70000)],
        "h2_connection_server": [bytes([255]) + server_conversation, bytes([3]) + server_conversation],
        "h2_connection_client": [bytes([255]) + client_conversation, bytes([5]) + client_conversation],
        "h1_handshake_server": [bytes([255]) + upgrade + _ws(True), bytes([6]) + upgrade,
                                bytes([255]) + b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"],
    }


def main() -> None:
    for name, items in seeds().items():
        directory = ROOT / name
        directory.mkdir(parents=True, exist_ok=True)
        for i, data in enumerate(items):
            (directory / f"seed-{i}").write_bytes(data)


if __name__ == "__main__":
    main()
