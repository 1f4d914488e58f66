"""Reference and memory leaks in the compiled core: every fuzz harness (tests/fuzz/) is run over
its seed corpus and deterministic mutations of it (truncations, flipped octets, every option
octet: the error paths as much as the happy ones), round after round; once warm, the number of
memory blocks Python has allocated must not grow with the rounds.  A missing Py_DECREF in the
core (a Cython ``<object>`` cast kept, a reference stolen twice) leaves one object per call and
shows up here, without a debug build of CPython.
"""

from __future__ import annotations

import ctypes
import gc
import random
import sys
from collections.abc import Callable

import pytest

from tests.fuzz.harnesses import HARNESSES
from tests.helpers import ROOT

ROUNDS = 4


def _inputs(name: str) -> list[bytes]:
    rng = random.Random(f"leaks-{name}")
    seeds = [p.read_bytes() for p in sorted((ROOT / "tests" / "fuzz" / "corpus" / name).iterdir())]
    assert seeds, f"no seed corpus for {name}"
    inputs = []
    for seed in seeds:
        for option in (0, 1, 2, 3, 7, 8, 14, 15, 255):        # chunking / role / deflate octet
            inputs.append(bytes([option]) + seed[1:])
        for _ in range(24):
            data = bytearray(seed)
            for _ in range(rng.randint(1, 4)):
                if data:
                    data[rng.randrange(len(data))] = rng.randrange(256)
            inputs.append(bytes(data[:rng.randint(1, len(data))]) if rng.random() < 0.3 else bytes(data))
    return inputs


def _growth(harness: Callable[[bytes], None], inputs: list[bytes]) -> int:
    """Allocated blocks gained over ROUNDS rounds, after two rounds of warm-up."""
    def one_round():
        for data in inputs:
            harness(data)
    one_round()
    one_round()
    gc.collect()
    before = sys.getallocatedblocks()
    for _ in range(ROUNDS):
        one_round()
    gc.collect()
    return sys.getallocatedblocks() - before


@pytest.mark.parametrize("name", sorted(HARNESSES))
def test_no_reference_leak(name):
    inputs = _inputs(name)
    growth = _growth(HARNESSES[name], inputs)
    # A leak of one object per call would add ROUNDS * len(inputs) blocks.
    assert growth < len(inputs) // 4, f"{name}: {growth} blocks gained over {ROUNDS} x {len(inputs)} calls"


def test_the_check_sees_one_leaked_reference_per_call():
    # The same measurement, with a harness that keeps one extra reference per call (what a
    # missing Py_DECREF in the core would do), must fail.
    inner = HARNESSES["websocket_frame_parser"]

    def leaky(data: bytes) -> None:
        inner(data)
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(bytearray(data)))

    inputs = _inputs("websocket_frame_parser")
    assert _growth(leaky, inputs) >= ROUNDS * len(inputs)
