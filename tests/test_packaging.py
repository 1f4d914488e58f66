"""The package builds as users will build it: sdist -> wheel, in release and debug profiles.

Builds run without isolation (the build requirements are installed by requirements-test.txt),
so the test needs no network.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import venv
import zipfile

import pytest

from tests.helpers import ROOT


def run(*args, cwd=ROOT, env=None, timeout=600):
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{args} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def sdist(tmp_path_factory):
    out = tmp_path_factory.mktemp("sdist")
    run(sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", str(out))
    [path] = list(out.glob("ws2fast-*.tar.gz"))
    return path


def _sources() -> list[str]:
    """Every Python module of the package (subpackages too) and every core source file."""
    python = [p.relative_to(ROOT).as_posix() for p in (ROOT / "ws2fast").rglob("*.py")]
    core = [p.relative_to(ROOT).as_posix() for p in (ROOT / "_ext").iterdir()
            if p.suffix in (".pyx", ".pxi", ".h") or p.name == "mask.c"]
    return sorted(python + core)


def test_sdist_ships_the_sources(sdist):
    with tarfile.open(sdist) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    for required in ("setup.py", "pyproject.toml", "MANIFEST.in", "README.md", "LICENSE",
                     "ws2fast/py.typed", "ws2fast/_core.pyi", *_sources()):
        assert required in names, f"sdist lacks {required}"
    assert not any(name.endswith((".so", "core.c")) for name in names), "sdist ships build output"


@pytest.mark.parametrize("profile", ["release", "debug"])
def test_wheel_builds_from_the_sdist_alone(sdist, tmp_path, profile):
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp_path, filter="data")
    [src] = [p for p in tmp_path.iterdir() if p.is_dir()]
    env = dict(os.environ, WS2FAST_BUILD=profile)
    run(sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path / "dist"),
        cwd=src, env=env)
    [wheel] = list((tmp_path / "dist").glob("ws2fast-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    assert any(n.startswith("ws2fast/_core.") and n.endswith(".so") for n in names)
    assert "ws2fast/py.typed" in names and "ws2fast/_core.pyi" in names
    missing = {p for p in _sources() if p.startswith("ws2fast/")} - set(names)
    assert not missing, f"the wheel lacks {sorted(missing)}"        # every module and subpackage
    # Install it into a fresh virtual environment and use it from outside the source tree.
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = str(env_dir / "bin" / "python")
    run(python, "-m", "pip", "install", "-q", str(wheel), cwd=tmp_path, timeout=600)   # + h11
    out = run(python, "-m", "ws2fast", "info", cwd=tmp_path)
    assert f"build profile: {profile}" in out and "round trip ok" in out
    assert str(env_dir) in out                       # the installed module, not the checkout


def _other_interpreters() -> list[str]:
    """CPython >= 3.10 interpreters on this machine other than the one running the tests
    (pyenv's, and python3.N on PATH)."""
    import glob
    import shutil
    found = {}
    candidates = glob.glob(os.path.expanduser("~/.pyenv/versions/3.*/bin/python3"))
    candidates += [p for p in (shutil.which(f"python3.{minor}") for minor in range(10, 20)) if p]
    for path in candidates:
        try:
            version = subprocess.run([path, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                                     capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            continue
        major, _, minor = version.partition(".")
        if major == "3" and minor.isdigit() and int(minor) >= 10 and version != "%d.%d" % sys.version_info[:2]:
            found.setdefault(version, path)
    return [found[v] for v in sorted(found)]


@pytest.mark.parametrize("python", _other_interpreters())
def test_sdist_installs_on_other_pythons(sdist, tmp_path, python):
    # Python >= 3.10 is supported: build (with build isolation, as users do) and run the
    # self-check on every other interpreter present.
    env_dir = tmp_path / "venv"
    run(python, "-m", "venv", str(env_dir), cwd=tmp_path)
    venv_python = str(env_dir / "bin" / "python")
    run(venv_python, "-m", "pip", "install", "-q", str(sdist), cwd=tmp_path, timeout=900)
    out = run(venv_python, "-m", "ws2fast", "info", cwd=tmp_path)
    assert "round trip ok" in out and str(env_dir) in out


def test_the_layer_list_is_core_pyx_includes():
    # setup.py reads the layer files from core.pyx (stated once): every .pxi is included.
    import re
    included = re.findall(r'^include "([\w.]+\.pxi)"', (ROOT / "_ext" / "core.pyx").read_text(), re.MULTILINE)
    assert sorted(included) == sorted(p.name for p in (ROOT / "_ext").glob("*.pxi"))
    from importlib.metadata import version

    import ws2fast
    assert version("ws2fast") == ws2fast.__version__        # pyproject reads it from ws2fast
