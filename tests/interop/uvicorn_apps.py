"""ASGI applications served by uvicorn with ``--ws ws2fast.uvicorn:WebSocketProtocol`` in
tests/interop/test_uvicorn.py (and bench/bench_uvicorn.py): the same routes written with
Starlette and with FastAPI, and a bare ASGI echo (Autobahn, benchmarks).

Routes: ``/`` the Chromium page; ``/echo`` echoes text and binary; ``/json`` answers
``{"got": <message>}``; ``/proto`` accepts the second subprotocol offered; ``/deny`` refuses
with 403 and a body (the websocket.http.response extension); ``/close`` closes with 4001
"bye" after the first message; ``/headers`` sends back what the scope says.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI
from fastapi import WebSocket as FastAPIWebSocket
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from tests.interop.asgi_echo import asgi_echo  # noqa: F401  (served as uvicorn_apps:asgi_echo)

PAGE = (Path(__file__).with_name("chromium_page.html")).read_text()


async def page(request: Request) -> HTMLResponse:
    return HTMLResponse(PAGE)


async def result(request: Request) -> Response:
    # The Chromium page's report, to the file the test named
    Path(os.environ["WS2FAST_RESULT_FILE"]).write_bytes(await request.body())
    return Response(status_code=204)


async def echo(ws: WebSocket) -> None:
    await ws.accept()
    try:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                await ws.send_text(message["text"])
            else:
                await ws.send_bytes(message["bytes"])
    except WebSocketDisconnect:
        pass


async def json_route(ws: WebSocket) -> None:
    await ws.accept()
    try:
        while True:
            await ws.send_json({"got": await ws.receive_json()})
    except WebSocketDisconnect:
        pass


async def proto(ws: WebSocket) -> None:
    offered = ws.scope["subprotocols"]
    await ws.accept(subprotocol=offered[1] if len(offered) > 1 else None)
    await ws.send_text(",".join(offered))
    await ws.close()


async def deny(ws: WebSocket) -> None:
    await ws.send_denial_response(Response(b"no entry\n", status_code=403, media_type="text/plain"))


async def close(ws: WebSocket) -> None:
    await ws.accept()
    await ws.receive_text()
    await ws.close(4001, "bye")


async def headers(ws: WebSocket) -> None:
    await ws.accept()
    scope = ws.scope
    await ws.send_json({
        "http_version": scope["http_version"], "scheme": scope["scheme"], "path": scope["path"],
        "raw_path": scope["raw_path"].decode(), "query_string": scope["query_string"].decode(),
        "headers": [[n.decode(), v.decode()] for n, v in scope["headers"]],
        "client": list(scope["client"]), "server": list(scope["server"]),
    })
    await ws.close()


_ROUTES = {"/echo": echo, "/echo/{index}": echo, "/json": json_route, "/proto": proto, "/deny": deny, "/close": close,
           "/headers": headers}

starlette_app = Starlette(routes=[Route("/", page), WebSocketRoute("/", echo),
                                  Route("/result", result, methods=["POST"]),
                                  *(WebSocketRoute(path, fn) for path, fn in _ROUTES.items())])

fastapi_app = FastAPI()
fastapi_app.get("/")(page)
fastapi_app.post("/result")(result)
for _path, _fn in _ROUTES.items():
    fastapi_app.websocket(_path)(_fn)
assert FastAPIWebSocket is WebSocket       # (FastAPI's WebSocket is Starlette's)
