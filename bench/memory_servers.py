"""Idle-memory servers for bench/bench_memory.py, one per implementation, in their own process:

    python bench/memory_servers.py <impl> <port> [trace]

prints "ready" once listening.  Each line "measure" on stdin is answered with one JSON line:
the process's RSS (KiB) and, with ``trace``, the bytes tracemalloc traces (after a
``gc.collect()``).  Stops when stdin closes.  <impl>: ws2fast (coroutine handler),
ws2fast-listener (callbacks), ws2fast-deflate (permessage-deflate accepted), picows,
websockets (which accepts permessage-deflate by default); every one echoes, with its defaults
otherwise.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import resource
import sys
import tracemalloc


async def ws2fast_server(port: int) -> None:
    import ws2fast

    async def echo(ws):
        async for message in ws:
            await ws.send(message)

    await ws2fast.serve(echo, "127.0.0.1", port, backlog=4096)


async def ws2fast_listener_server(port: int) -> None:
    import ws2fast

    class Echo(ws2fast.WebSocketListener):
        def on_message(self, ws, message):
            ws.send_nowait(message)

    await ws2fast.serve(Echo, "127.0.0.1", port, backlog=4096)


async def picows_server(port: int) -> None:
    import e2e_servers                      # the end-to-end benchmark's picows echo (same folder)

    await e2e_servers.picows_server(port, backlog=4096)


async def websockets_server(port: int) -> None:
    from websockets.asyncio.server import serve

    async def echo(ws):
        async for message in ws:
            await ws.send(message)

    await serve(echo, "127.0.0.1", port, backlog=4096)


async def ws2fast_deflate_server(port: int) -> None:
    import ws2fast

    async def echo(ws):
        async for message in ws:
            await ws.send(message)

    await ws2fast.serve(echo, "127.0.0.1", port, backlog=4096, config=ws2fast.Config(permessage_deflate=True))


SERVERS = {"ws2fast": ws2fast_server, "ws2fast-deflate": ws2fast_deflate_server,
           "ws2fast-listener": ws2fast_listener_server,
           "picows": picows_server, "websockets": websockets_server}


def _rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


async def main(impl: str, port: int, trace: bool) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if trace:
        tracemalloc.start()
    await SERVERS[impl](port)
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    lines = b""

    def on_stdin() -> None:
        nonlocal lines
        chunk = os.read(sys.stdin.fileno(), 4096)
        if not chunk:
            if not done.done():
                done.set_result(None)
            return
        lines += chunk
        while b"\n" in lines:
            line, lines = lines.split(b"\n", 1)
            if line.strip() == b"measure":
                gc.collect()
                traced = tracemalloc.get_traced_memory()[0] if trace else None
                print(json.dumps({"rss_kib": _rss_kib(), "traced": traced}), flush=True)

    loop.add_reader(sys.stdin.fileno(), on_stdin)
    print("ready", flush=True)
    await done


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), len(sys.argv) > 3 and sys.argv[3] == "trace"))
