"""Helpers for the asyncio tests: the event loops (asyncio's, where cleartext connections run on
ws2fast's compiled socket transport by default; uvloop's; and asyncio's with its own transports,
"asyncio-transport"), a bounded runner, and a self-signed certificate for TLS on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import ssl
import subprocess
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import pytest

LOOPS = ["asyncio", "uvloop", "asyncio-transport"]


def new_loop(kind: str) -> asyncio.AbstractEventLoop:
    if kind == "uvloop":
        uvloop = pytest.importorskip("uvloop", reason="uvloop is not installed")
        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run(kind: str, coro: Awaitable[Any], timeout: float = 30.0) -> Any:
    """Run ``coro`` on a fresh loop of ``kind``, bounded in time; check nothing was left."""
    loop = new_loop(kind)
    # "asyncio-transport": asyncio's loop, with Config.native_transport left at None so the
    # environment keeps asyncio's own transports for every connection the test makes
    saved = os.environ.get("WS2FAST_NATIVE_TRANSPORT")
    if kind == "asyncio-transport":
        os.environ["WS2FAST_NATIVE_TRANSPORT"] = "0"
    try:
        return loop.run_until_complete(asyncio.wait_for(coro, timeout))
    finally:
        if kind == "asyncio-transport":
            if saved is None:
                del os.environ["WS2FAST_NATIVE_TRANSPORT"]
            else:
                os.environ["WS2FAST_NATIVE_TRANSPORT"] = saved
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1 (openssl)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60, env={**os.environ, "OPENSSL_CONF": "/dev/null"})
    return cert, key


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


def client_context(cert: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(cert))
    return context
