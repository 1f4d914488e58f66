"""python -m ws2fast."""

from __future__ import annotations

import subprocess
import sys


def test_info_runs_the_self_check():
    out = subprocess.run([sys.executable, "-m", "ws2fast", "info"], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert "round trip ok" in out
    assert "build profile: release" in out or "build profile: debug" in out


def test_unknown_command_fails():
    proc = subprocess.run([sys.executable, "-m", "ws2fast", "no-such-command"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode != 0 and "invalid choice" in proc.stderr


def test_demo_opens_websockets_over_one_http2_connection():
    proc = subprocess.run([sys.executable, "-m", "ws2fast", "demo", "--messages", "2000", "--seconds", "10"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "HTTP/2 by prior knowledge" in out and "1 TCP connection for 4 WebSockets" in out
    assert "'ENABLE_CONNECT_PROTOCOL': 1" in out and ":protocol websocket" in out
    assert "subprotocol 'demo.v1'" in out
    assert out.count("2000/2000") >= 2 and "msgs/s" in out
    assert "closed: [1000, 1000, 1000, 1000]" in out


def test_serve_answers_a_page_and_echoes_and_connect_talks_to_it(tmp_path):
    import asyncio
    import socket

    import ws2fast

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "hello.txt").write_text("static hello")
    server = subprocess.Popen([sys.executable, "-m", "ws2fast", "serve", "--port", str(port), "--static",
                               str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "serving on http://127.0.0.1:%d/" % port in server.stdout.readline()

        async def check():
            async with ws2fast.Client(f"http://127.0.0.1:{port}") as client:
                assert (await client.request("GET", "/hello.txt"))[2] == b"static hello"
                assert (await client.request("GET", "/../etc/passwd"))[0] == 404
                ws = await client.websocket("/any/path")
                await ws.send("echo?")
                assert await ws.recv() == "echo?"

        asyncio.run(asyncio.wait_for(check(), 30))
        client = subprocess.run([sys.executable, "-m", "ws2fast", "connect", f"ws://127.0.0.1:{port}/x"],
                                input="first line\nsecond\n", capture_output=True, text=True, timeout=60)
        assert client.returncode == 0, client.stderr
        assert "connected over HTTP/1.1" in client.stdout
        assert "< first line" in client.stdout and "< second" in client.stdout
        assert "closed with 1000" in client.stdout
    finally:
        server.terminate()
        try:
            server.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.communicate()
    assert server.returncode == 0


def test_serve_without_static_answers_any_get_with_a_page():
    import asyncio

    import ws2fast
    from ws2fast.cli import _page

    async def check():
        async with ws2fast.serve(ws2fast.cli.echo, "127.0.0.1", 0, http_handler=_page) as server:
            async with ws2fast.Client(f"http://127.0.0.1:{server.port}") as client:
                status, headers, body = await client.request("GET", "/anything?q=<x>")
                assert status == 200 and b"new WebSocket" in body and b"&lt;x&gt;" in body

    asyncio.run(asyncio.wait_for(check(), 30))
