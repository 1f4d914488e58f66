"""HTTP/2 frames (RFC 9113 §4, §6): an incremental reader and one writer per frame type.

The codec is compiled (``ws2fast._core``); this module is its public name.

>>> from ws2fast.frames import FrameReader, build_ping
>>> reader = FrameReader()
>>> [frame] = reader.feed(build_ping(b"12345678"))
>>> frame.type, bytes(frame.opaque_data)
(6, b'12345678')

A frame that lies whole in one input is returned as a view into that input (no copy); see the
warning on :class:`Frame`.  With ``FrameReader(stream_data=True)`` DATA frames are never
assembled: their data comes as :class:`DataPiece` views as the bytes arrive.

Frame-level violations raise :class:`~ws2fast.exceptions.FrameError` with the RFC 9113 error
code; stream-level ones are reported on the frame (``stream_error``).
"""

from ._core import (
    PREFACE,
    DataPiece,
    Frame,
    FrameReader,
    build_continuation,
    build_data,
    build_frame_header,
    build_goaway,
    build_headers,
    build_ping,
    build_priority,
    build_push_promise,
    build_rst_stream,
    build_settings,
    build_window_update,
)

__all__ = [
    "PREFACE",
    "DataPiece",
    "Frame",
    "FrameReader",
    "build_frame_header",
    "build_data",
    "build_headers",
    "build_priority",
    "build_rst_stream",
    "build_settings",
    "build_push_promise",
    "build_ping",
    "build_goaway",
    "build_window_update",
    "build_continuation",
]
