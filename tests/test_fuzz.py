"""The fuzz harnesses (tests/fuzz/) under atheris, each for WS2FAST_FUZZ_SECONDS (60 by
default), against a build of the core made with clang, libFuzzer coverage and
AddressSanitizer (``WS2FAST_BUILD=fuzz``), starting from the seed corpora kept in the repo.
A harness that raises anything but its parser's documented exceptions, crashes, or trips
AddressSanitizer fails its test, with the reproducer in the output."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuzz.harnesses import HARNESSES
from tests.helpers import ROOT, build_profile

SECONDS = int(os.environ.get("WS2FAST_FUZZ_SECONDS", "60"))


@pytest.fixture(scope="module")
def fuzz_build(tmp_path_factory) -> tuple[Path, str]:
    if shutil.which("clang") is None:
        pytest.skip("clang is not installed (Debian: apt-get install clang)")
    atheris = pytest.importorskip("atheris", reason="atheris is not installed (pip install atheris)")
    preload = Path(atheris.path()) / "asan_with_fuzzer.so"
    assert preload.exists(), preload
    return build_profile("fuzz", tmp_path_factory.mktemp("fuzz-build")), str(preload)


@pytest.mark.parametrize("name", sorted(HARNESSES))
def test_fuzz_harness_runs_clean(fuzz_build, name, tmp_path):
    path, preload = fuzz_build
    corpus = tmp_path / "corpus"
    shutil.copytree(ROOT / "tests" / "fuzz" / "corpus" / name, corpus)
    env = {**os.environ, "PYTHONPATH": f"{path}{os.pathsep}{ROOT}", "LD_PRELOAD": preload,
           "ASAN_OPTIONS": "detect_leaks=0:allocator_may_return_null=1"}
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "fuzz" / "run.py"), name,
                           f"-max_total_time={SECONDS}", "-rss_limit_mb=3072", "-timeout=20",
                           f"-artifact_prefix={tmp_path}/", str(corpus)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=SECONDS + 600)
    log = proc.stderr
    assert proc.returncode == 0, f"{name}: exit {proc.returncode}\n{log[-6000:]}"
    assert "ws2fast core build: fuzz" in log, log[:2000]
    runs = re.search(r"Done (\d+) runs in (\d+) second", log)
    assert runs is not None, log[-3000:]
    print(f"fuzz {name}: {runs.group(1)} runs in {runs.group(2)} s")
    assert int(runs.group(1)) > 100
