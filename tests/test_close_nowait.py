"""WebSocket.close_nowait: a listener (which cannot await) starts the close handshake; the
peer sees the code and reason, and on_close follows, over both HTTP versions."""

from __future__ import annotations

import asyncio

import pytest

import ws2fast


@pytest.mark.parametrize("http2", [False, True], ids=["HTTP/1.1", "HTTP/2"])
def test_a_listener_closes_without_awaiting(http2):
    closed: list[tuple[int, str]] = []

    class Closer(ws2fast.WebSocketListener):
        def on_message(self, ws, message):
            ws.send_nowait(message)
            ws.close_nowait(4001, f"after {message}")
            ws.close_nowait(4002, "ignored: already closing")

        def on_close(self, ws, code, reason):
            closed.append((code, reason))

    async def main():
        async with ws2fast.serve(Closer, "127.0.0.1", 0) as server:
            ws = await ws2fast.connect(f"ws://127.0.0.1:{server.port}/", http2=http2)
            await ws.send("bye")
            assert await ws.recv() == "bye"
            await asyncio.wait_for(ws.wait_closed(), 5)
            assert (ws.close_code, ws.close_reason) == (4001, "after bye")
            for _ in range(50):
                if closed:
                    break
                await asyncio.sleep(0.02)
        assert closed == [(4001, "")]      # the client echoes the code (RFC 6455 §5.5.1)

    asyncio.run(main())
