"""Copied as tests/protocols/conftest.py into a copy of the uvicorn sdist's tests by
tests/interop/test_uvicorn_suite.py: uvicorn's WebSocket tests then run against
ws2fast.uvicorn.WebSocketProtocol, under both of uvicorn's HTTP/1.1 protocols, on asyncio's
loop and on uvloop's."""

from __future__ import annotations

import pytest
import uvloop
from uvicorn.importer import import_from_string


@pytest.fixture(params=["ws2fast.uvicorn:WebSocketProtocol"], ids=["ws2fast"])
def ws_protocol_cls(request):
    return import_from_string(request.param)


@pytest.fixture(params=[
    pytest.param("uvicorn.protocols.http.h11_impl:H11Protocol", id="h11"),
    pytest.param("uvicorn.protocols.http.httptools_impl:HttpToolsProtocol", id="httptools"),
])
def http_protocol_cls(request):
    return import_from_string(request.param)


@pytest.fixture(params=[
    pytest.param(("asyncio", {}), id="asyncio"),
    pytest.param(("asyncio", {"loop_factory": uvloop.new_event_loop}), id="uvloop"),
])
def anyio_backend(request):
    return request.param
