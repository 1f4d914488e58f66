"""Project-wide pytest hooks (tests/ and bench/).

Under ``WS2FAST_REQUIRE_PEERS=1`` (set by CI) a skipped test is reported as a failure: a
missing peer, tool or test-data folder must not let a suite pass by not running.
"""

from __future__ import annotations

import os

import pytest

REQUIRE_PEERS = os.environ.get("WS2FAST_REQUIRE_PEERS") == "1"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if REQUIRE_PEERS and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under WS2FAST_REQUIRE_PEERS=1: {reason}"
