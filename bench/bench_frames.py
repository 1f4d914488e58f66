"""HTTP/2 frame reading: ws2fast.frames.FrameReader against hyperframe, same stream, same run.

The stream is DATA frames of one payload size, fed in 64 KiB chunks (so frames straddle
chunk boundaries, as they do off a socket).  hyperframe is driven the way h2 drives it:
``Frame.parse_frame_header`` + ``parse_body`` over a buffer that keeps the unread tail.

``ws2fast stream_data`` is the reader the connection uses for DATA: pieces are views of the
reads, so no payload is ever copied and the cost per frame does not depend on its size.

Run: ``python -m pytest bench/bench_frames.py --benchmark-enable``.
"""

from __future__ import annotations

import hyperframe.frame as hf
import pytest

from ws2fast.frames import FrameReader, build_data

CHUNK = 64 * 1024
STREAM_BYTES = 1024 * 1024


def make_stream(payload_size: int) -> tuple[list[bytes], int]:
    frame = build_data(1, bytes(payload_size))
    count = max(1, STREAM_BYTES // len(frame))
    wire = frame * count
    return [wire[i:i + CHUNK] for i in range(0, len(wire), CHUNK)], count


def read_ws2fast(chunks: list[bytes]) -> int:
    reader = FrameReader()
    n = 0
    for chunk in chunks:
        n += len(reader.feed(chunk))
    return n


def read_ws2fast_streamed(chunks: list[bytes]) -> int:
    # DATA frames as DataPiece views: a frame that straddles two reads is not assembled.
    reader = FrameReader(stream_data=True)
    n = 0
    for chunk in chunks:
        pieces = reader.feed(chunk)
        # Only a batch's last piece can leave its frame unfinished (the read ran out): each
        # frame is counted once, by its last piece, without a Python loop over pieces.
        n += len(pieces) - (1 if pieces and not pieces[-1].last else 0)
    return n


def read_hyperframe(chunks: list[bytes]) -> int:
    buf = bytearray()
    n = 0
    for chunk in chunks:
        buf += chunk
        view = memoryview(buf)
        pos, end = 0, len(buf)
        while end - pos >= 9:
            frame, length = hf.Frame.parse_frame_header(view[pos:pos + 9])
            if end - pos - 9 < length:
                break
            frame.parse_body(view[pos + 9:pos + 9 + length])
            pos += 9 + length
            n += 1
        view.release()
        del buf[:pos]
    return n


READERS = {"ws2fast": read_ws2fast, "ws2fast stream_data": read_ws2fast_streamed,
           "hyperframe": read_hyperframe}


@pytest.mark.parametrize("impl", READERS)
@pytest.mark.parametrize("payload_size", [16, 1024, 16384], ids=["16B", "1KiB", "16KiB"])
def test_read_data_frames(benchmark, impl, payload_size):
    chunks, count = make_stream(payload_size)
    benchmark.group = f"read DATA frames of {payload_size} B, 64 KiB chunks ({count} frames/round)"
    benchmark.extra_info["frames_per_round"] = count
    assert benchmark(READERS[impl], chunks) == count
