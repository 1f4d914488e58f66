"""A bare ASGI WebSocket echo (no framework), with lifespan: what uvicorn serves for the Autobahn
run (tests/interop/test_autobahn.py, as ``tests.interop.uvicorn_apps:asgi_echo``), hypercorn
for the end-to-end benchmark (bench/e2e_servers.py), and every server of bench/bench_asgi.py.
It imports nothing, so that a server process that runs it carries no framework's heap."""

from __future__ import annotations


async def asgi_echo(scope, receive, send):
    """A bare ASGI WebSocket echo (no framework): the Autobahn target and the benchmark app."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    if scope["type"] != "websocket":
        # (a small plain answer: the requests-per-second benchmark of bench/bench_asgi.py)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")]})
        await send({"type": "http.response.body", "body": b"Hello, world!"})
        return
    await receive()
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})
