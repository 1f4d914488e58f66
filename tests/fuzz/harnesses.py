"""Fuzz harnesses for atheris (tests/fuzz/run.py runs one; tests/test_fuzz.py runs them all).

Each takes the fuzzer's bytes and drives one parser; it may raise only the exceptions that
parser documents (anything else, a crash, or an AddressSanitizer report is a finding).  The
first octet of the input chooses options (chunking, role), the rest is the wire.
"""

from __future__ import annotations

from collections.abc import Callable

from ws2fast import Config, H1Connection, H2Connection
from ws2fast._core import PREFACE, Decoder, FrameParser, FrameReader, Inflater, build_settings
from ws2fast.events import WebSocketRequested
from ws2fast.exceptions import FrameError, HeaderListTooLarge, HPACKError, WebSocketProtocolError

CONFIG = Config(max_message_size=1 << 16, permessage_deflate=True, max_header_list_size=1 << 14)


def _chunks(data: bytes) -> list[bytes]:
    # the first octet sets the chunk size (1..256): the rest of the input in pieces of it
    if not data:
        return []
    size = data[0] + 1
    body = data[1:]
    return [body[i:i + size] for i in range(0, len(body), size)]


def h2_frame_reader(data: bytes) -> None:
    reader = FrameReader(16384, stream_data=bool(data[:1] and data[0] & 1))
    try:
        for chunk in _chunks(data):
            reader.feed(chunk)
    except FrameError:
        pass


def hpack_decoder(data: bytes) -> None:
    decoder = Decoder(4096, 1 << 14)
    try:
        for chunk in _chunks(data):          # several blocks against one dynamic table
            decoder.decode(chunk)
    except (HPACKError, HeaderListTooLarge):
        pass


def websocket_frame_parser(data: bytes) -> None:
    options = data[0] if data else 0
    deflate = bool(options & 2)
    parser = FrameParser(bool(options & 1), 1 << 16, permessage_deflate=deflate,
                         inflater=Inflater(1 << 16, no_context_takeover=bool(options & 4)) if deflate else None)
    buffer = bytearray(300)
    try:
        for chunk in _chunks(data):
            if options & 8:
                parser.receive_into(buffer)
            parser.feed(chunk)
    except WebSocketProtocolError:
        pass


def _drive(conn, data: bytes, accept: Callable[[object], None]) -> None:
    # A connection never raises for what the peer sent: errors become events and frames.
    for chunk in _chunks(data):
        for event in conn.receive_data(chunk):
            accept(event)
        conn.data_to_send()
        if isinstance(conn, H2Connection):
            conn.handle_timeouts()


def h2_connection_server(data: bytes) -> None:
    conn = H2Connection(client_side=False, config=CONFIG)
    conn.initiate()
    conn.receive_data(PREFACE)

    def accept(event):
        if isinstance(event, WebSocketRequested) and event.stream_id in conn.streams:
            for message in conn.accept_websocket(event.stream_id):
                accept(message)
    _drive(conn, data, accept)


def h2_connection_client(data: bytes) -> None:
    conn = H2Connection(client_side=True, config=CONFIG)
    conn.initiate()
    conn.receive_data(build_settings({8: 1}))
    conn.open_websocket("/", "fuzz.test", scheme="https")
    conn.open_websocket("/two", "fuzz.test", scheme="https")
    _drive(conn, data, lambda event: None)


def h1_handshake_server(data: bytes) -> None:
    conn = H1Connection(client_side=False, config=CONFIG)

    def accept(event):
        if isinstance(event, WebSocketRequested):
            for message in conn.accept_websocket(0):
                accept(message)
    _drive(conn, data, accept)


HARNESSES: dict[str, Callable[[bytes], None]] = {
    "h2_frame_reader": h2_frame_reader,
    "hpack_decoder": hpack_decoder,
    "websocket_frame_parser": websocket_frame_parser,
    "h2_connection_server": h2_connection_server,
    "h2_connection_client": h2_connection_client,
    "h1_handshake_server": h1_handshake_server,
}
