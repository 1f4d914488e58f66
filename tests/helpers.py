"""Helpers shared by the test modules."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
# The public test vectors the suite needs are carried in tests/vectors/ (with their source and
# licence); $WS2FAST_VECTORS points the suite at another copy.
VECTORS = pathlib.Path(os.environ.get("WS2FAST_VECTORS", ROOT / "tests" / "vectors"))


def vectors_dir(*parts: str) -> pathlib.Path:
    """A folder of the test vectors, or a skip (a failure in CI) when it is missing."""
    path = VECTORS.joinpath(*parts)
    if not path.is_dir():
        pytest.skip(f"test vectors not found at {path} (unset WS2FAST_VECTORS to use tests/vectors)")
    return path


def story_files(name: str) -> list[str]:
    """Story file names of one HPACK vector set, for parametrizing (empty if missing)."""
    path = VECTORS / "hpack" / name
    return sorted(p.name for p in path.glob("story_*.json")) if path.is_dir() else ["<missing>"]


def load_story(name: str, story: str) -> dict:
    with open(vectors_dir("hpack", name) / story, encoding="utf-8") as f:
        return json.load(f)


def story_headers(case: dict) -> list[tuple[bytes, bytes]]:
    return [
        (k.encode("utf-8"), v.encode("utf-8")) for field in case["headers"] for k, v in field.items()
    ]


def build_profile(profile: str, out: pathlib.Path) -> pathlib.Path:
    """Build the core with ``WS2FAST_BUILD=profile`` into ``out`` and return a folder holding a
    ``ws2fast`` package with that build, for a child process's PYTHONPATH."""
    proc = subprocess.run([sys.executable, "setup.py", "build_ext", "--build-lib", str(out / "lib"),
                           "--build-temp", str(out / "tmp")], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "WS2FAST_BUILD": profile}, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    package = out / "pkg" / "ws2fast"
    shutil.copytree(ROOT / "ws2fast", package, ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    (built,) = (out / "lib" / "ws2fast").glob("_core*.so")
    shutil.copy(built, package)
    return package.parent
