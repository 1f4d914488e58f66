"""python -m ws2fast."""

from __future__ import annotations

import subprocess
import sys


def test_info_runs_the_self_check():
    out = subprocess.run([sys.executable, "-m", "ws2fast", "info"], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert "round trip ok" in out
    assert "build profile: release" in out or "build profile: debug" in out


def test_unknown_command_fails():
    proc = subprocess.run([sys.executable, "-m", "ws2fast", "no-such-command"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode != 0 and "invalid choice" in proc.stderr
