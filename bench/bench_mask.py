"""Unmasking: ws2fast against a plain copy and the compiled mask functions of websockets and
aiohttp, same data, same run.

``unmask_into`` writes into a preallocated buffer, as the parser does; the plain copy
(memoryview slice assignment) is the floor any one-pass unmask is measured against.
websockets' ``apply_mask`` returns new bytes, so it is paired with our ``mask`` (which does
too); aiohttp's works in place on a bytearray.

Run: ``python -m pytest bench/bench_mask.py --benchmark-enable``.
"""

from __future__ import annotations

import os

import pytest
from aiohttp._websocket.mask import _websocket_mask_cython as aiohttp_mask
from websockets.speedups import apply_mask as websockets_mask

from ws2fast.wsframes import mask, mask_kernels, set_mask_kernel, unmask_into

KEY = b"\x12\x34\x56\x78"
SIZES = {"125B": 125, "4KiB": 4096, "64KiB": 65536, "1MiB": 1 << 20}


def _expected(data: bytes) -> bytes:
    n = len(data)
    return (int.from_bytes(data, "big") ^ int.from_bytes((KEY * (n // 4 + 1))[:n], "big")).to_bytes(n, "big")


@pytest.fixture(scope="module")
def payloads():
    return {name: os.urandom(n) for name, n in SIZES.items()}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("impl", ["ws2fast.unmask_into", "plain copy", "aiohttp (in place)"])
def test_unmask_into_buffer(benchmark, payloads, size, impl):
    benchmark.group = f"unmask {size} into an existing buffer"
    data = payloads[size]
    dst = bytearray(len(data))
    # Write the destination once before measuring.  A fresh bytearray's pages fault in on the
    # first write, and pytest-benchmark calibrates on that first call: the slow one made it
    # time ws2fast (measured first) one call per round, timer overhead included, while the
    # others, whose buffers reuse that memory, got ~20 calls per round.  That alone showed
    # unmask_into at 0.53-0.69x a plain copy at 4 KiB instead of ~0.95x.
    dst[:] = data
    # Each candidate is one Python function around one statement, so each pays the same call.
    if impl == "ws2fast.unmask_into":
        def unmask():
            unmask_into(dst, data, KEY)
        _fixed(benchmark, size, unmask)
        assert dst == _expected(data)
    elif impl == "plain copy":
        view = memoryview(dst)

        def copy():
            view[:] = data
        _fixed(benchmark, size, copy)
        assert dst == data
    else:
        def in_place():
            dst[:] = data                   # aiohttp masks in place: restore the input first
            aiohttp_mask(KEY, dst)
        # The restore is a plain copy: subtract the "plain copy" row to see aiohttp alone.
        _fixed(benchmark, size, in_place)
        assert dst == _expected(data)


# Calls per timed round, the same for every implementation of a size (enough for a round of
# several microseconds, so the timer's own cost does not count), instead of pytest-benchmark's
# calibration, which can settle on one call per round for one implementation and many for
# another (see above) and so compare a call plus a timer reading with a call alone.
_CALLS = {"125B": 200, "4KiB": 50, "64KiB": 5, "1MiB": 1}


def _fixed(benchmark, size, fn, *args):
    benchmark.pedantic(fn, args, iterations=_CALLS[size], rounds=max(20, 2000 // _CALLS[size]),
                       warmup_rounds=1)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("impl", ["ws2fast.mask", "websockets.apply_mask"])
def test_mask_to_new_bytes(benchmark, payloads, size, impl):
    benchmark.group = f"mask {size} into new bytes"
    data = payloads[size]
    fn = (lambda: mask(data, KEY)) if impl == "ws2fast.mask" else (lambda: websockets_mask(data, KEY))
    assert benchmark(fn) == _expected(data)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("kernel", mask_kernels())
def test_kernels(benchmark, payloads, size, kernel):
    """Each kernel forced, to check the choice made at import."""
    benchmark.group = f"mask kernels, {size}"
    data = payloads[size]
    dst = bytearray(len(data))
    dst[:] = data                               # paged in before measuring (see above)
    set_mask_kernel(kernel)
    try:
        _fixed(benchmark, size, unmask_into, dst, data, KEY)
    finally:
        set_mask_kernel(None)
    assert dst == _expected(data)
