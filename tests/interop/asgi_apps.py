"""ASGI applications served by ``python -m ws2fast asgi`` in tests/interop/test_asgi_server.py:
the same routes written with Starlette and with FastAPI.

HTTP: ``/hello`` (text naming the HTTP version), ``/upload`` (POST: streams the body, answers its
length and SHA-256), ``/stream`` (a streaming response of 10 parts), ``/big`` (5 MB at once),
``/pid`` (the worker's process id), ``/slow`` (answers after a second), ``/items/{id}`` (path
and query parameters), ``/`` (the Chromium page) and ``/result`` (the page's report, written to
``$WS2FAST_RESULT_FILE`` with what the server saw of each request).  WebSocket: the routes of
tests/interop/uvicorn_apps.py (``/echo``, ``/json``, ``/proto``, ``/deny``, ``/close``,
``/headers``) and ``/node/{index}`` (echo, for Node's RFC 8441 client).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from pathlib import Path

from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from tests.interop.uvicorn_apps import PAGE, close, deny, echo, headers, json_route, proto

#: what the server saw: [route, http_version, client port] (one worker: one list)
SEEN: list[list[object]] = []


async def page(request: Request) -> HTMLResponse:
    SEEN.append(["page", request.scope["http_version"], request.scope["client"][1]])
    return HTMLResponse(PAGE)


async def result(request: Request) -> Response:
    report = json.loads(await request.body())
    report["seen"] = SEEN
    Path(os.environ["WS2FAST_RESULT_FILE"]).write_text(json.dumps(report))
    return Response(status_code=204)


async def tracked_echo(ws: WebSocket) -> None:
    SEEN.append(["websocket", ws.scope["http_version"], ws.scope["client"][1]])
    await echo(ws)


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse(f"hello over HTTP/{request.scope['http_version']}")


async def upload(request: Request) -> JSONResponse:
    digest, size, parts = hashlib.sha256(), 0, 0
    async for chunk in request.stream():
        digest.update(chunk)
        size += len(chunk)
        parts += 1
    return JSONResponse({"size": size, "sha256": digest.hexdigest(), "parts": parts})


async def stream(request: Request) -> StreamingResponse:
    async def parts():
        for i in range(10):
            yield b"%d" % i * 10_000
            await asyncio.sleep(0)
    return StreamingResponse(parts(), media_type="application/octet-stream")


async def big(request: Request) -> Response:
    return Response(b"b" * 5_000_000, media_type="application/octet-stream")


async def pid(request: Request) -> PlainTextResponse:
    return PlainTextResponse(str(os.getpid()))


async def slow(request: Request) -> PlainTextResponse:
    await asyncio.sleep(1.0)
    return PlainTextResponse("slow done")


async def item(request: Request) -> JSONResponse:
    return JSONResponse({"id": int(request.path_params["id"]), "q": request.query_params.get("q")})


_HTTP = [("/", page, ["GET"]), ("/result", result, ["POST"]), ("/hello", hello, ["GET"]),
         ("/upload", upload, ["POST"]), ("/stream", stream, ["GET"]), ("/big", big, ["GET"]),
         ("/pid", pid, ["GET"]), ("/slow", slow, ["GET"]), ("/items/{id}", item, ["GET"])]
_WS = {"/echo": echo, "/echo/{index}": tracked_echo, "/node/{index}": echo, "/json": json_route, "/proto": proto,
       "/deny": deny, "/close": close, "/headers": headers}

starlette_app = Starlette(routes=[*(Route(p, f, methods=m) for p, f, m in _HTTP),
                                  *(WebSocketRoute(p, f) for p, f in _WS.items())])

fastapi_app = FastAPI()
for _path, _fn, _methods in _HTTP:
    fastapi_app.add_api_route(_path, _fn, methods=_methods)
for _path, _ws in _WS.items():
    fastapi_app.websocket(_path)(_ws)


def failing_startup(scope, receive, send):  # noqa: ANN001, ANN201 - a bare ASGI app
    """An application whose lifespan startup fails."""
    async def app() -> None:
        if scope["type"] == "lifespan":
            await receive()
            await send({"type": "lifespan.startup.failed", "message": "the database is down"})
    return app()
