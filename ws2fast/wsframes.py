"""WebSocket frames (RFC 6455 §5-§7), compiled: masking, parsing, building.

>>> from ws2fast.wsframes import FrameParser, build_frame, Opcode
>>> parser = FrameParser(client_side=False)           # a server reads masked client frames
>>> parser.feed(build_frame(Opcode.TEXT, "hello", mask=True))
[TextMessage(data='hello')]

The parser unmasks each payload straight into the object it hands out (one pass) and
validates text as it arrives; ``receive_into(buffer)`` registers a buffer (bytearray, numpy
array...) that the next binary message is unmasked into.  Violations raise
:class:`~ws2fast.exceptions.WebSocketProtocolError` with the close code to send.

The mask kernels (wide words, SSE2, AVX2, AVX-512) are chosen once at import from what the
CPU supports; :func:`mask_kernels`, :func:`mask_kernel` and :func:`set_mask_kernel` show and
force the choice (``WS2FAST_MASK_KERNEL=<name>`` forces it for a whole process).
"""

from ._core import (
    MASK_KERNELS,
    BinaryMessage,
    CloseReceived,
    CompressedMessage,
    FrameParser,
    Ping,
    Pong,
    TextMessage,
    is_valid_close_code,
    mask,
    mask_kernel,
    mask_kernels,
    new_mask_key,
    set_mask_kernel,
    unmask_into,
)
from ._core import build_ws_close as build_close
from ._core import build_ws_frame as build_frame
from ._core import build_ws_frame_header as build_frame_header
from ._core import build_ws_ping as build_ping
from ._core import build_ws_pong as build_pong
from .errors import CloseCode, Opcode

__all__ = [
    "FrameParser",
    "TextMessage",
    "BinaryMessage",
    "CompressedMessage",
    "Ping",
    "Pong",
    "CloseReceived",
    "build_frame",
    "build_frame_header",
    "build_close",
    "build_ping",
    "build_pong",
    "new_mask_key",
    "mask",
    "unmask_into",
    "mask_kernels",
    "mask_kernel",
    "set_mask_kernel",
    "MASK_KERNELS",
    "is_valid_close_code",
    "Opcode",
    "CloseCode",
]
