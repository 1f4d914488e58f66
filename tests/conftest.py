"""Fixtures shared by the asyncio and interop tests."""

from __future__ import annotations

import pytest

from tests.aio_helpers import LOOPS, make_certificate


@pytest.fixture(params=LOOPS)
def loop_kind(request):
    """Each asyncio test runs on asyncio's loop (with ws2fast's socket transport, the default),
    on uvloop's, and on asyncio's with asyncio's own transports ("asyncio-transport")."""
    return request.param


@pytest.fixture(scope="session")
def certificate(tmp_path_factory):
    """(cert.pem, key.pem): self-signed for localhost and 127.0.0.1."""
    return make_certificate(tmp_path_factory.mktemp("tls"))
