"""A ws2fast echo server in its own process, for the load and soak tests (tests/test_load.py).

``python tests/load_server.py`` prints ``PORT <n>`` once it listens on 127.0.0.1 and serves
until its stdin closes (or it gets SIGTERM).  ``GET /stats`` answers JSON: WebSockets open now,
the most open at once, messages echoed, connections, and the process's RSS in KiB.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import ws2fast  # noqa: E402

stats = {"websockets": 0, "peak": 0, "echoed": 0, "opened": 0}


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def echo(ws: ws2fast.WebSocket) -> None:
    stats["websockets"] += 1
    stats["opened"] += 1
    stats["peak"] = max(stats["peak"], stats["websockets"])
    try:
        async for message in ws:
            await ws.send(message)
            stats["echoed"] += 1
    finally:
        stats["websockets"] -= 1


async def main() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    server_ref: list[ws2fast.Server] = []

    def page(request: ws2fast.Request) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        body = dict(stats, connections=len(server_ref[0].connections), rss_kib=rss_kib())
        return 200, [(b"content-type", b"application/json")], json.dumps(body).encode()

    loop = asyncio.get_running_loop()
    stdin_closed = loop.create_future()
    loop.add_reader(sys.stdin.fileno(), lambda: stdin_closed.done() or (
        os.read(sys.stdin.fileno(), 4096) or stdin_closed.set_result(None)))
    config = ws2fast.Config(permessage_deflate=True)        # accepted when a client offers it
    async with ws2fast.serve(echo, "127.0.0.1", 0, http_handler=page, config=config, backlog=4096) as server:
        server_ref.append(server)
        print(f"PORT {server.port}", flush=True)
        await stdin_closed


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "uvloop":
        import uvloop
        uvloop.install()
    asyncio.run(main())
