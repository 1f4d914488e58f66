"""uvicorn's own WebSocket test suite, run against ws2fast.uvicorn.WebSocketProtocol.

The pinned uvicorn sdist ships its tests; ``tests/interop/uvicorn_suite/setup.sh`` (run by
.ci/run) downloads it with pip into ``.uvicorn-suite/``, next to a virtualenv holding uvicorn's
test requirements (``uvicorn_suite/requirements.txt``).  Here a copy of those tests gets a
``tests/protocols/conftest.py`` (``uvicorn_suite/conftest_ws2fast.py``) whose ``ws_protocol_cls``
fixture is our class, whose ``http_protocol_cls`` is each of uvicorn's HTTP/1.1 protocols (h11
and httptools), and whose ``anyio_backend`` is asyncio's loop and uvloop's; then
``tests/protocols/test_websocket.py`` runs in that virtualenv, with ws2fast from this checkout.

The sdist's pytest options are overridden where they do not fit: its ``addopts`` asks for 8
xdist workers (2 cores here; the module runs in under a minute alone).

Every test must pass but the ones in EXCLUDED, each with its reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import ws2fast
from ws2fast import _core

HERE = Path(__file__).parent / "uvicorn_suite"
ROOT = Path(__file__).resolve().parents[2]
SUITE = ROOT / ".uvicorn-suite"
VERSION = next(line.split("==")[1].strip() for line in (HERE / "requirements.txt").read_text().splitlines()
               if line.startswith("uvicorn=="))

#: test name -> why it cannot pass with a WebSocket class other than uvicorn's own (the
#: parameters it runs under are matched by prefix: "" means all of them).
EXCLUDED = {
    ("test_server_keepalive_ping_pong", ""):
        "asserts isinstance(protocol, (WSProtocol, WebSocketsSansIOProtocol)) and reads their "
        "ping_sent_at; tests/test_uvicorn.py checks our keepalive pings instead",
    ("test_server_keepalive_disabled", ""):
        "asserts isinstance(protocol, (WSProtocol, WebSocketsSansIOProtocol)) and reads their "
        "ping_timer; tests/test_uvicorn.py checks that no ping comes with ws_ping_interval=None",
    ("test_server_keepalive_ping_timeout", "uvloop-"):
        "the test silences its websockets client by assigning transport.write, which uvloop's "
        "transports do not allow (AttributeError in the test itself); it runs on asyncio's loop",
}

#: tests x (2 loops x 2 HTTP protocols) in uvicorn 0.54.0's test_websocket.py, our conftest
EXPECTED_TOTAL = 300


def _venv_python() -> Path:
    python = SUITE / "venv" / "bin" / "python"
    if not python.exists() or not (SUITE / f"uvicorn-{VERSION}" / "tests").is_dir():
        pytest.skip("uvicorn's test suite is not set up: run tests/interop/uvicorn_suite/setup.sh "
                    "(.ci/run does)")
    return python


def _excluded(name: str) -> str | None:
    test, _, params = name.partition("[")
    for (excluded, prefix), reason in EXCLUDED.items():
        if test == excluded and params.startswith(prefix):
            return reason
    return None


def test_uvicorn_websocket_suite_passes_with_our_protocol(tmp_path):
    python = _venv_python()
    package_root = Path(ws2fast.__file__).resolve().parent
    if Path(_core.__file__).resolve().parent != package_root:
        pytest.fail(f"the compiled core ({_core.__file__}) is not beside the package ({package_root}): "
                    "build it in place (pip install -e . does)")
    work = tmp_path / "uvicorn"
    work.mkdir()
    sdist = SUITE / f"uvicorn-{VERSION}"
    shutil.copytree(sdist / "tests", work / "tests")
    shutil.copy(sdist / "pyproject.toml", work / "pyproject.toml")
    shutil.copy(HERE / "conftest_ws2fast.py", work / "tests" / "protocols" / "conftest.py")
    report = tmp_path / "report.xml"
    env = dict(os.environ, PYTHONPATH=str(package_root.parent))
    env.pop("WS2FAST_REQUIRE_PEERS", None)
    # Collect, then deselect the exclusions by node id.
    listing = subprocess.run(
        [str(python), "-m", "pytest", "tests/protocols/test_websocket.py", "--collect-only", "-q",
         "-o", "addopts=", "-p", "no:cacheprovider"],
        cwd=work, env=env, capture_output=True, text=True, timeout=120)
    ids = [line for line in listing.stdout.splitlines() if line.startswith("tests/protocols/test_websocket.py::")]
    assert len(ids) == EXPECTED_TOTAL, listing.stdout[-3000:] + listing.stderr[-3000:]
    deselect = [i for i in ids if _excluded(i.split("::", 1)[1])]
    assert {_excluded(i.split("::", 1)[1]) for i in deselect} == set(EXCLUDED.values())
    args = [str(python), "-m", "pytest", "tests/protocols/test_websocket.py", "-q", "-rfEs",
            "-o", "addopts=--strict-config --strict-markers", "-o", "faulthandler_timeout=60",
            "-p", "no:cacheprovider", f"--junitxml={report}"]
    for node in deselect:
        args += ["--deselect", node]
    result = subprocess.run(args, cwd=work, env=env, capture_output=True, text=True, timeout=600)
    output = result.stdout[-20000:] + result.stderr[-5000:]
    print(output[-3000:])
    suite = ET.parse(report).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    assert suite is not None, output
    failed = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
    skipped = int(suite.get("skipped", 0))
    ran = int(suite.get("tests", 0))
    assert failed == 0 and result.returncode == 0, output
    assert skipped == 0, output
    assert ran == EXPECTED_TOTAL - len(deselect), output
    # Each excluded test is excluded for every parameter its prefix names, and no more.
    assert len(deselect) == 2 * 4 + 2, deselect
