"""The unit tests once more, against a build of the core with AddressSanitizer and
UndefinedBehaviorSanitizer (``WS2FAST_BUILD=sanitize``: gcc, Cython's bounds checks on, any
undefined behaviour aborts).  The suites that drive the core hardest run in a child pytest with
libasan preloaded; a sanitizer report, a crash or a failing test fails the group here, with the
report in the output."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT, build_profile

GROUPS = {
    "http2": ["test_frames", "test_hpack", "test_h2connection", "test_rfc9113", "test_rfc8441", "test_floods"],
    "websocket": ["test_wsframes", "test_wsframes_differential", "test_rfc6455", "test_deflate",
                  "test_h1connection", "test_exceptions", "test_leaks"],
    "asyncio": ["test_aio", "test_interacting_stacks", "test_faults", "test_attacks", "test_transport"],
}


def _runtime(name: str) -> str | None:
    compiler = shutil.which("gcc")
    if compiler is None:
        return None
    path = subprocess.run([compiler, f"-print-file-name={name}"], capture_output=True, text=True).stdout.strip()
    return path if os.path.isabs(path) and os.path.exists(path) else None


@pytest.fixture(scope="module")
def sanitize_build(tmp_path_factory) -> tuple[Path, str]:
    libasan = _runtime("libasan.so")
    if libasan is None or _runtime("libubsan.so") is None:
        pytest.skip("gcc's libasan/libubsan are not installed (Debian: gcc)")
    return build_profile("sanitize", tmp_path_factory.mktemp("sanitize-build")), libasan


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_unit_tests_pass_under_asan_and_ubsan(sanitize_build, group, tmp_path):
    path, libasan = sanitize_build
    env = {**os.environ, "PYTHONPATH": str(path), "LD_PRELOAD": libasan, "WS2FAST_EXPECT_BUILD": "sanitize",
           # CPython itself frees little at exit: leaks are checked by tests/test_leaks.py instead
           "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1", "UBSAN_OPTIONS": "print_stacktrace=1"}
    files = [str(ROOT / "tests" / f"{name}.py") for name in GROUPS[group]]
    # --import-mode=append keeps the repository after PYTHONPATH, so `import ws2fast` loads the
    # sanitizer build (conftest.py checks); -s lets a sanitizer's report reach our output.
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider",
                           "--import-mode=append", "--rootdir", str(ROOT), *files],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800)
    log = proc.stdout + proc.stderr
    assert "runtime error:" not in log and "AddressSanitizer" not in log, log[-8000:]
    assert proc.returncode == 0, log[-8000:]
    assert " passed" in log.splitlines()[-1], log[-3000:]
