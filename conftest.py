"""Project-wide pytest hooks (tests/ and bench/).

Under ``WS2FAST_REQUIRE_PEERS=1`` (set by CI) a skipped test is reported as a failure: a
missing peer, tool or test-data folder must not let a suite pass by not running.

Under ``WS2FAST_EXPECT_BUILD=<profile>`` the run stops at once unless the compiled core that
``import ws2fast`` loads was built with that profile (tests/test_sanitizers.py runs the unit
tests against a sanitizer build this way, and must not test the release build by mistake).
"""

from __future__ import annotations

import os

import pytest

REQUIRE_PEERS = os.environ.get("WS2FAST_REQUIRE_PEERS") == "1"


def pytest_configure(config):
    expected = os.environ.get("WS2FAST_EXPECT_BUILD")
    if expected:
        from ws2fast import _core
        if expected != _core.BUILD_PROFILE:
            raise pytest.UsageError(f"WS2FAST_EXPECT_BUILD={expected}, but {_core.__file__} "
                                    f"was built as {_core.BUILD_PROFILE!r}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if REQUIRE_PEERS and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under WS2FAST_REQUIRE_PEERS=1: {reason}"


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter, config):
    """After a ``--benchmark-enable`` run: ws2fast's ratios to the peers measured beside it
    (ws2fast.benchreport), which pytest-benchmark's own tables leave to the reader.  Nothing
    in the test command's single-round mode, where ratios mean nothing."""
    session = getattr(config, "_benchmarksession", None)
    if session is None or session.disabled:
        return
    from ws2fast.benchreport import ratio_lines

    lines = ratio_lines(b.as_dict(include_data=False) for b in session.benchmarks if b)
    if lines:
        terminalreporter.section("ws2fast ratios")
        for line in lines:
            terminalreporter.write_line(line)
