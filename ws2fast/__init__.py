"""ws2fast: fast, correct WebSockets over HTTP/2 (RFC 8441) and HTTP/1.1 (RFC 6455).

Layers (imports point downward only):

- ``ws2fast.frames``, ``ws2fast.hpack``: the compiled HTTP/2 wire codecs (``ws2fast._core``).
- ``ws2fast.wsframes``: the compiled WebSocket frame codec, mask kernels and message events.
- ``ws2fast.errors``: wire-code enums; ``ws2fast.exceptions``: the exception tree.
- ``ws2fast.H2Connection`` (``h2connection``): the sans-IO HTTP/2 connection carrying
  WebSockets (RFC 8441) and plain requests; ``ws2fast.events``: what it returns;
  ``ws2fast.Config``: every limit; ``ws2fast.handshake``: header validation and handshakes.
- ``ws2fast.connect``, ``ws2fast.Client``, ``ws2fast.serve`` (``ws2fast.aio``): asyncio, loaded
  on first use (importing the sans-IO layer imports no event loop).
- ``ws2fast.H1Connection`` (``h1connection``): the same over HTTP/1.1 (h11 + RFC 6455
  Upgrade), with ``ws2fast.WebSocketSession`` (``websocket``) carrying the WebSocket.
"""

from . import errors, events, exceptions, frames, handshake, hpack, wsframes
from .config import Config, RateLimit
from .h1connection import H1Connection
from .h2connection import H2Connection
from .websocket import WebSocketSession
from .errors import CloseCode, ErrorCode, FrameType, Opcode, SettingCode
from .exceptions import (
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    ConnectionLost,
    ExtensionError,
    FrameError,
    HandshakeFailed,
    HeaderListTooLarge,
    HPACKError,
    InvalidCompressedData,
    InvalidURI,
    LocalProtocolError,
    MalformedHeaders,
    MessageTooBig,
    ProtocolError,
    RemoteProtocolError,
    WebSocketProtocolError,
    Ws2fastError,
)

__version__ = "0.1.0.dev0"

# The asyncio layer loads on first use, so that the sans-IO layer (``ws2fast.H2Connection``,
# ``ws2fast.h2connection``...) imports no event loop.
_ASYNCIO_NAMES = frozenset(["connect", "serve", "Client", "WebSocket", "WebSocketListener", "Request", "Accept",
                            "Reject"])


def __getattr__(name: str) -> object:
    if name in _ASYNCIO_NAMES:
        from . import aio

        value = getattr(aio, name)
        globals()[name] = value                 # found directly from now on
        return value
    if name == "aio":
        import importlib

        return importlib.import_module(".aio", __name__)
    raise AttributeError(f"module 'ws2fast' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _ASYNCIO_NAMES)

__all__ = [
    "connect",
    "serve",
    "Client",
    "WebSocket",
    "WebSocketListener",
    "Request",
    "Accept",
    "Reject",
    "Config",
    "RateLimit",
    "H1Connection",
    "H2Connection",
    "WebSocketSession",
    "events",
    "handshake",
    "errors",
    "exceptions",
    "frames",
    "hpack",
    "wsframes",
    "CloseCode",
    "ErrorCode",
    "FrameType",
    "Opcode",
    "SettingCode",
    "Ws2fastError",
    "ProtocolError",
    "LocalProtocolError",
    "RemoteProtocolError",
    "FrameError",
    "HPACKError",
    "HeaderListTooLarge",
    "WebSocketProtocolError",
    "ConnectionClosed",
    "ConnectionClosedOK",
    "ConnectionClosedError",
    "HandshakeFailed",
    "InvalidURI",
    "ConnectionLost",
    "MalformedHeaders",
    "ExtensionError",
    "InvalidCompressedData",
    "MessageTooBig",
]
