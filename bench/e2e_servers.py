"""Echo servers for the end-to-end benchmark, one per implementation, run as a separate process:

    python bench/e2e_servers.py <impl> <port>

prints "ready" once listening and serves until killed.  <impl>: ws2fast (coroutines),
ws2fast-listener (callbacks), picows, websockets, aiohttp, hypercorn (all on asyncio's loop).
"""

from __future__ import annotations

import asyncio
import sys


async def ws2fast_server(port: int) -> None:
    import ws2fast

    async def echo(ws):
        async for message in ws:
            await ws.send(message)

    await ws2fast.serve(echo, "127.0.0.1", port, config=ws2fast.Config(ping_interval=None))


async def ws2fast_listener_server(port: int) -> None:
    import ws2fast

    class Echo(ws2fast.WebSocketListener):
        def on_message(self, ws, message):
            ws.send_nowait(message)

    await ws2fast.serve(Echo, "127.0.0.1", port, config=ws2fast.Config(ping_interval=None))


async def picows_server(port: int, **kwargs: object) -> None:
    from picows import WSListener, WSMsgType, ws_create_server

    class Echo(WSListener):
        def on_ws_frame(self, transport, frame):
            if frame.msg_type == WSMsgType.CLOSE:
                transport.send_close(frame.get_close_code())
                transport.disconnect()
            elif frame.msg_type in (WSMsgType.TEXT, WSMsgType.BINARY):
                transport.send(frame.msg_type, frame.get_payload_as_memoryview())

    await ws_create_server(lambda _: Echo(), "127.0.0.1", port, **kwargs)


async def websockets_server(port: int) -> None:
    from websockets.asyncio.server import serve

    async def echo(ws):
        async for message in ws:
            await ws.send(message)

    await serve(echo, "127.0.0.1", port, compression=None, max_size=None, ping_interval=None)


async def aiohttp_server(port: int) -> None:
    from aiohttp import WSMsgType, web

    async def handler(request):
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        async for message in ws:
            if message.type == WSMsgType.BINARY:
                await ws.send_bytes(message.data)
            elif message.type == WSMsgType.TEXT:
                await ws.send_str(message.data)
        return ws

    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()


async def hypercorn_server(port: int) -> None:
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    from tests.interop.asgi_echo import asgi_echo

    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.errorlog = None
    config.websocket_ping_interval = None
    asyncio.get_running_loop().create_task(serve(asgi_echo, config))
    await asyncio.sleep(0.5)


SERVERS = {"ws2fast": ws2fast_server, "ws2fast-listener": ws2fast_listener_server, "picows": picows_server,
           "websockets": websockets_server,
           "aiohttp": aiohttp_server, "hypercorn": hypercorn_server}


async def main(impl: str, port: int) -> None:
    await SERVERS[impl](port)
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
