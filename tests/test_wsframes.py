"""ws2fast.wsframes: mask kernels, the parser's delivery paths, builders and events."""

from __future__ import annotations

import gc
import os
import platform
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ws2fast import wsframes
from ws2fast.exceptions import WebSocketProtocolError
from ws2fast.wsframes import (
    BinaryMessage,
    CloseReceived,
    FrameParser,
    Opcode,
    Ping,
    Pong,
    TextMessage,
    build_close,
    build_frame,
    build_frame_header,
    build_ping,
    build_pong,
    mask,
    mask_kernel,
    mask_kernels,
    new_mask_key,
    set_mask_kernel,
    unmask_into,
)

KEY = b"\xa1\x02\xff\x5c"


def reference_mask(data: bytes, key: bytes, phase: int = 0) -> bytes:
    """Plain-Python masking (RFC 6455 §5.3) for comparison."""
    n = len(data)
    stream = (key[phase % 4:] + key[:phase % 4]) * (n // 4 + 1)
    return (int.from_bytes(data, "big") ^ int.from_bytes(stream[:n], "big")).to_bytes(n, "big")


def cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def kernels_here() -> list[str]:
    return mask_kernels()


# -- mask kernels ----------------------------------------------------------------------------

def test_kernels_match_the_cpu():
    have = mask_kernels()
    assert have[0] == "word"
    if platform.machine() in ("x86_64", "AMD64"):
        flags = cpu_flags()
        expected = ["word", "sse2"] + (["avx2"] if "avx2" in flags else []) + \
            (["avx512"] if "avx512f" in flags else [])
        assert have == expected
        chosen = os.environ.get("WS2FAST_MASK_KERNEL") or ("avx2" if "avx2" in flags else "sse2")
        assert mask_kernel() == chosen


@pytest.mark.parametrize("name", kernels_here())
def test_kernel_forced_at_import(name):
    import subprocess
    import sys
    code = ("from ws2fast.wsframes import *; data = bytes(range(200)); "
            "assert FrameParser(False).feed(build_frame(2, data, mask=True))[0].data == data; "
            "print(mask_kernel())")
    out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, WS2FAST_MASK_KERNEL=name),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == name, out.stderr


@pytest.mark.parametrize("name", kernels_here())
def test_every_length_alignment_and_phase(name):
    set_mask_kernel(name)
    try:
        data = os.urandom(300 + 16)
        for length in range(301):
            for align in range(16):
                src = data[align:align + length]
                for phase in range(4):
                    dst = bytearray(length + 32)
                    out_align = (align * 7 + phase) % 16
                    view = memoryview(dst)[out_align:out_align + length]
                    assert unmask_into(view, src, KEY, phase) == length
                    assert bytes(view) == reference_mask(src, KEY, phase), (name, length, align, phase)
                    assert dst[:out_align] == bytes(out_align)                 # nothing written
                    assert dst[out_align + length:] == bytes(len(dst) - out_align - length)
            assert mask(data[:length], KEY) == reference_mask(data[:length], KEY)
    finally:
        set_mask_kernel(None)


@pytest.mark.parametrize("name", kernels_here())
def test_long_payloads_at_every_destination_alignment(name):
    # From 1 KiB the SIMD kernels first align their stores: check that head at every alignment.
    set_mask_kernel(name)
    try:
        data = os.urandom(1200)
        for length in (1023, 1024, 1025, 1031, 1100, 1153):
            src = data[:length]
            for align in range(64):
                for phase in range(4):
                    dst = bytearray(length + 128)
                    view = memoryview(dst)[align:align + length]
                    unmask_into(view, src, KEY, phase)
                    assert bytes(view) == reference_mask(src, KEY, phase), (name, length, align, phase)
        parser = FrameParser(client_side=False)
        for pos in list(range(70)) + [1000, 1098]:
            text = "a" * pos + "é" + "b" * (1100 - pos - 2)
            [event] = parser.feed(build_frame(1, text, mask_key=KEY))
            assert event.data == text
    finally:
        set_mask_kernel(None)


@pytest.mark.parametrize("name", kernels_here())
def test_large_and_in_place(name):
    set_mask_kernel(name)
    try:
        data = os.urandom(1 << 20)
        buf = bytearray(data)
        unmask_into(buf, buf, KEY, 3)
        assert bytes(buf) == reference_mask(data, KEY, 3)
        unmask_into(buf, memoryview(buf), KEY, 3)
        assert bytes(buf) == data
    finally:
        set_mask_kernel(None)


def test_offset_continues_the_key_phase():
    data = os.urandom(1000)
    whole = mask(data, KEY)
    out = bytearray(1000)
    for start, end in ((0, 3), (3, 10), (10, 517), (517, 1000)):
        unmask_into(memoryview(out)[start:end], data[start:end], KEY, start)
    assert bytes(out) == whole


def test_mask_arguments():
    with pytest.raises(ValueError):
        mask(b"abc", b"123")
    with pytest.raises(ValueError):
        unmask_into(bytearray(2), b"abc", KEY)
    with pytest.raises(ValueError):
        unmask_into(bytearray(3), b"abc", KEY, -1)
    with pytest.raises((TypeError, BufferError)):
        unmask_into(b"immutable", b"abc", KEY)
    with pytest.raises(ValueError):
        set_mask_kernel("mmx")


@pytest.mark.parametrize("name", kernels_here())
def test_non_ascii_detected_at_every_position(name):
    # The kernels report non-ASCII output in the unmasking pass; a miss would hand out a
    # corrupt str.  Put one 2-byte character at every position of every length.
    set_mask_kernel(name)
    try:
        server, client = FrameParser(client_side=False), FrameParser(client_side=True)
        for length in range(2, 160):
            for pos in range(length - 1):
                text = "a" * pos + "é" + "b" * (length - pos - 2)
                [event] = server.feed(build_frame(1, text, mask_key=KEY))
                assert event.data == text
                [event] = client.feed(build_frame(1, text))
                assert event.data == text
    finally:
        set_mask_kernel(None)


# -- parser: chunking ------------------------------------------------------------------------

STREAM_EVENTS = [
    TextMessage("hello"), BinaryMessage(bytes(range(256)) * 3), Ping(b"p"), TextMessage("x" * 70000),
    Pong(b""), TextMessage("frag\u00e9mented"), BinaryMessage(b""), CloseReceived(1000, "done"),
]


def stream_wire(mask_frames: bool) -> bytes:
    kw = {"mask": mask_frames}
    return b"".join([
        build_frame(1, "hello", **kw), build_frame(2, bytes(range(256)) * 3, **kw), build_ping(b"p", **kw),
        build_frame(1, "x" * 70000, **kw), build_pong(b"", **kw),
        build_frame(1, "frag\u00e9".encode()[:5], fin=False, **kw),
        build_frame(0, "frag\u00e9".encode()[5:], fin=False, **kw),
        build_frame(0, "mented", **kw), build_frame(2, b"", **kw), build_close(1000, "done", **kw),
    ])


@pytest.mark.parametrize("client_side", [False, True])
def test_byte_by_byte(client_side):
    wire = stream_wire(mask_frames=not client_side)
    parser = FrameParser(client_side, max_message_size=None)
    got = []
    for i in range(len(wire)):
        got += parser.feed(wire[i:i + 1])
    assert got == STREAM_EVENTS


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 80000), max_size=10), st.booleans())
def test_any_chunking(cuts, client_side):
    wire = stream_wire(mask_frames=not client_side)
    parser = FrameParser(client_side, max_message_size=None)
    got, start = [], 0
    for cut in sorted(c for c in set(cuts) if c < len(wire)) + [len(wire)]:
        got += parser.feed(memoryview(wire)[start:cut])
        start = cut
    assert got == STREAM_EVENTS


def test_payload_objects_have_their_final_types():
    events = FrameParser(False).feed(stream_wire(True)[:800])
    assert type(events[0].data) is str and type(events[1].data) is bytes
    assert events[1].nbytes == 768 and not events[1].into_buffer


# -- parser: receive_into --------------------------------------------------------------------

def test_receive_into_bytearray():
    parser = FrameParser(False)
    buf = bytearray(10)
    parser.receive_into(buf)
    [event] = parser.feed(build_frame(2, b"12345", mask=True))
    assert event.into_buffer and event.data is buf and event.nbytes == 5
    assert buf == b"12345" + bytes(5)
    assert parser.receive_buffer is None                    # used up
    [event] = parser.feed(build_frame(2, b"again", mask=True))
    assert not event.into_buffer and event.data == b"again"


def test_receive_into_keeps_registration_for_text_and_misfits():
    parser = FrameParser(False)
    buf = bytearray(4)
    parser.receive_into(buf)
    events = parser.feed(build_frame(1, "text", mask=True) + build_frame(2, b"too long", mask=True))
    assert events == [TextMessage("text"), BinaryMessage(b"too long")]
    assert parser.receive_buffer is buf and buf == bytes(4)
    [event] = parser.feed(build_frame(2, b"fits", mask=True))
    assert event.into_buffer and buf == b"fits"


def test_receive_into_fragmented_message():
    parser = FrameParser(False)
    buf = bytearray(16)
    parser.receive_into(buf)
    wire = build_frame(2, b"abc", fin=False, mask=True) + build_ping(b"!", mask=True) + \
        build_frame(0, b"def", mask=True)
    assert parser.feed(wire) == [Ping(b"!"), BinaryMessage(buf, 6, True)]
    assert buf[:6] == b"abcdef"


def test_receive_into_fragmented_message_that_stops_fitting():
    parser = FrameParser(False)
    buf = bytearray(5)
    parser.receive_into(buf)
    wire = build_frame(2, b"abc", fin=False, mask=True) + build_frame(0, b"defgh", mask=True)
    [event] = parser.feed(wire)
    assert event == BinaryMessage(b"abcdefgh") and not event.into_buffer
    assert parser.receive_buffer is buf                     # the registration stays


@pytest.mark.parametrize("action", ["cancel", "replace"])
def test_registration_changed_mid_message(action):
    parser = FrameParser(False)
    first = bytearray(100)
    parser.receive_into(first)
    wire = build_frame(2, b"0123456789", fin=False, mask=True) + build_frame(0, b"abcdefghij", mask=True)
    parser.feed(wire[:30])                                  # first frame, and part of the second
    second = bytearray(100)
    if action == "cancel":
        parser.cancel_receive_into()
    else:
        parser.receive_into(second)
    [event] = parser.feed(wire[30:])
    assert event == BinaryMessage(b"0123456789abcdefghij") and not event.into_buffer
    assert parser.receive_buffer is (None if action == "cancel" else second)


def test_receive_into_numpy_without_payload_allocation():
    n = 1 << 20
    payload = os.urandom(n)
    wire = build_frame(2, payload, mask=True)
    target = np.zeros(n // 4, dtype=np.float32)
    parser = FrameParser(False, max_message_size=None)
    parser.receive_into(target)
    gc.collect()
    tracemalloc.start()
    try:
        events = []
        for start in range(0, len(wire), 65536):                # as off a socket, 64 KiB reads
            events += parser.feed(memoryview(wire)[start:start + 65536])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    [event] = events
    assert event.into_buffer and event.data is target and event.nbytes == n
    assert target.tobytes() == payload
    assert peak < 16 * 1024, f"{peak} bytes allocated while receiving {n} into a numpy array"


def test_receive_into_refuses_read_only_and_strided_buffers():
    parser = FrameParser(False)
    with pytest.raises((TypeError, BufferError)):
        parser.receive_into(b"read only")
    with pytest.raises((TypeError, BufferError, ValueError)):
        parser.receive_into(np.zeros(10)[::2])


def test_fragment_buffer_is_released_after_a_large_message():
    parser = FrameParser(False, max_message_size=None)
    big = os.urandom(1 << 20)
    wire = build_frame(2, big[:1000], fin=False, mask=True) + build_frame(0, big[1000:], mask=True)
    tracemalloc.start()
    try:
        [event] = parser.feed(wire)
        del event
        current, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert current < 64 * 1024          # the 1 MiB fragment buffer did not stay with the parser


def test_memory_allocated_with_pymem_is_traced():
    parser = FrameParser(False, max_message_size=None)
    wire = build_frame(2, b"x" * 300000, fin=False, mask=True)
    tracemalloc.start()
    try:
        parser.feed(wire)
        current, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert current >= 300000             # the fragment buffer shows up in tracemalloc


# -- builders --------------------------------------------------------------------------------

def test_build_frame_layouts():
    assert build_frame(Opcode.TEXT, "hi") == b"\x81\x02hi"
    assert build_frame(Opcode.BINARY, b"x", fin=False, rsv1=True) == b"\x42\x01x"
    assert build_frame(2, bytes(126))[:4] == b"\x82\x7e\x00\x7e"
    assert build_frame(2, bytes(65536))[:10] == b"\x82\x7f" + (65536).to_bytes(8, "big")
    masked = build_frame(1, "hi", mask_key=KEY)
    assert masked == b"\x81\x82" + KEY + reference_mask(b"hi", KEY)


def test_build_frame_header_for_writelines():
    payload = os.urandom(70000)
    assert build_frame_header(2, len(payload)) + payload == build_frame(2, payload)
    assert build_frame_header(1, 5, fin=False, mask_key=KEY) == b"\x01\x85" + KEY


def test_random_mask_keys():
    keys = {new_mask_key() for _ in range(3000)}             # crosses a batch refill
    assert len(keys) > 2990 and all(len(k) == 4 for k in keys)
    a, b = build_frame(1, "same", mask=True), build_frame(1, "same", mask=True)
    assert a[2:6] != b[2:6]
    assert FrameParser(False).feed(a + b) == [TextMessage("same")] * 2


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_mask_keys_differ_after_fork():
    r, w = os.pipe()
    new_mask_key()                                           # the pool is filled before the fork
    pid = os.fork()
    if pid == 0:
        os.write(w, new_mask_key())
        os._exit(0)
    os.waitpid(pid, 0)
    child_key = os.read(r, 4)
    os.close(r)
    os.close(w)
    assert child_key != new_mask_key()


@pytest.mark.parametrize("call", [
    lambda: build_frame(3, b""),
    lambda: build_frame(9, b"x" * 126),
    lambda: build_frame(8, b"", fin=False),
    lambda: build_frame(9, b"", rsv1=True),
    lambda: build_frame(1, b"", mask_key=b"abc"),
    lambda: build_close(1005),
    lambda: build_close(999),
    lambda: build_close(1000, "r" * 124),
    lambda: build_close(None, "reason"),
    lambda: build_close(1000, b"\xff"),
    lambda: build_frame_header(2, -1),
    lambda: build_frame_header(2, 2**63),
])
def test_builder_argument_checks(call):
    with pytest.raises((ValueError, UnicodeDecodeError)):
        call()


def test_build_close_forms():
    assert build_close(None) == b"\x88\x00"
    assert build_close(1000, "r" * 123)[:2] == b"\x88\x7d"
    assert FrameParser(True).feed(build_close(4999, "ü")) == [CloseReceived(4999, "ü")]


# -- events ----------------------------------------------------------------------------------

def test_events_are_immutable_values():
    event = TextMessage("a")
    with pytest.raises(AttributeError):
        event.data = "b"
    assert event == TextMessage("a") and event != TextMessage("b") and event != BinaryMessage(b"a")
    assert hash(event) == hash(TextMessage("a"))
    assert Ping(b"x").response() == Pong(b"x")
    assert "TextMessage" in repr(event) and "CloseReceived" in repr(CloseReceived(1000, ""))
    assert len({Ping(b"1"), Ping(b"1"), Pong(b"1")}) == 2


def test_parser_properties():
    parser = FrameParser(True, max_message_size=None)
    assert parser.client_side and parser.max_message_size is None
    assert FrameParser(False).max_message_size == 1 << 20


def test_failure_is_final():
    parser = FrameParser(False)
    with pytest.raises(WebSocketProtocolError):
        parser.feed(b"\x83\x80" + KEY)
    with pytest.raises(WebSocketProtocolError) as info:
        parser.feed(build_frame(1, "ok", mask=True))
    assert info.value.close_code == 1002


def test_public_names():
    for name in wsframes.__all__:
        assert hasattr(wsframes, name)


@settings(max_examples=3000, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(0, 300), max_size=4), st.booleans(), st.booleans(),
       st.sampled_from([None, 0, 10, 1000]))
def test_arbitrary_bytes_raise_only_protocol_errors(wire, cuts, client_side, deflate, limit):
    parser = FrameParser(client_side, max_message_size=limit, permessage_deflate=deflate)
    buf = bytearray(64)
    if deflate:
        parser.receive_into(buf)
    start = 0
    try:
        for cut in sorted(c for c in set(cuts) if c <= len(wire)) + [len(wire)]:
            for event in parser.feed(wire[start:cut]):
                if isinstance(event, TextMessage):
                    event.data.encode("utf-8")          # a valid str, never a corrupt one
                elif isinstance(event, BinaryMessage) and limit is not None:
                    assert event.nbytes <= limit
            start = cut
    except WebSocketProtocolError as error:
        assert error.close_code in (1002, 1007, 1009)


@pytest.mark.parametrize("limit", [0, 1000, 65535, 65536])
def test_message_size_limit_and_its_reason(limit):
    # limit-1 and limit pass; limit+1 fails with 1009 and a reason that names the true size,
    # and "at least" while more fragments could follow.
    for size in (max(limit - 1, 0), limit):
        assert FrameParser(False, max_message_size=limit).feed(build_frame(2, bytes(size), mask=True))
    with pytest.raises(WebSocketProtocolError) as info:
        FrameParser(False, max_message_size=limit).feed(build_frame(2, bytes(limit + 1), mask=True))
    assert info.value.close_code == 1009
    assert str(info.value) == f"message of {limit + 1} bytes exceeds max_message_size {limit}"
    parser = FrameParser(False, max_message_size=limit)
    parser.feed(build_frame(2, bytes(limit), fin=False, mask=True))
    with pytest.raises(WebSocketProtocolError) as info:
        parser.feed(build_frame(0, b"x", fin=False, mask=True))
    assert str(info.value) == f"message of at least {limit + 1} bytes exceeds max_message_size {limit}"
