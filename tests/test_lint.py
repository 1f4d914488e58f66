"""The project's own checks, run by the test command: ruff (the rules in pyproject.toml) over
the whole tree, and mypy over the package (with the compiled core's stubs, ws2fast/_core.pyi).
Both are pinned in requirements-test.txt, so a new release of either cannot turn main red."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from tests.helpers import ROOT


def _run(tool: str, *args: str) -> None:
    if importlib.util.find_spec(tool) is None:
        pytest.skip(f"{tool} is not installed (pip install -r requirements-test.txt)")
    proc = subprocess.run([sys.executable, "-m", tool, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]


def test_ruff():
    _run("ruff", "check", ".")


def test_mypy():
    _run("mypy", "ws2fast")
