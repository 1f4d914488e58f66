"""python -m ws2fast."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import sys

import pytest


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
    # stdout is not a terminal here: no progress redrawn with carriage returns
    assert "\r" not in out
    # the server's SETTINGS as it sent them: a server never sends ENABLE_PUSH
    (settings,) = [line for line in out.splitlines() if line.startswith("server SETTINGS:")]
    assert "ENABLE_PUSH" not in settings and "'MAX_CONCURRENT_STREAMS': 100" in settings


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


# -- ordinary failures: one line, a non-zero status, no traceback -----------------------------------

def _cli(*args, input=None, timeout=60):
    return subprocess.run([sys.executable, "-m", "ws2fast", *args], capture_output=True, text=True,
                          input=input, timeout=timeout)


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _one_clean_line(proc, *expected):
    assert proc.returncode not in (0, None), proc
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for text in expected:
        assert text in lines[0], lines[0]


@pytest.fixture()
def plain_http_server():
    """A server that answers every request with a plain 404: not a WebSocket endpoint."""
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(5)
                try:
                    conn.recv(65536)
                    conn.sendall(b"HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\nconnection: close\r\n\r\nno")
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(5)
    listener.close()


@pytest.fixture()
def tls_server(certificate):
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "ws2fast", "serve", "--port", str(port),
                               "--certfile", str(certificate[0]), "--keyfile", str(certificate[1])],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "serving on https://" in server.stdout.readline()
        yield port
    finally:
        server.terminate()
        server.communicate(timeout=20)


def test_connect_refused_is_one_line():
    _one_clean_line(_cli("connect", f"ws://127.0.0.1:{_free_port()}/", input=""), "connection refused")


def test_connect_to_what_is_not_a_websocket_endpoint_is_one_line(plain_http_server):
    _one_clean_line(_cli("connect", f"ws://127.0.0.1:{plain_http_server}/", input=""),
                    "not a WebSocket endpoint", "404")


@pytest.mark.parametrize("url, expected", [("http://127.0.0.1/", "scheme must be ws or wss"),
                                           ("ws:///path", "has no host"),
                                           ("ws://127.0.0.1:99999/", "out of range")])
def test_connect_to_a_bad_url_is_one_line(url, expected):
    _one_clean_line(_cli("connect", url, input=""), expected)


def test_connect_to_an_untrusted_certificate_is_one_line(tls_server, certificate):
    proc = _cli("connect", f"wss://127.0.0.1:{tls_server}/", input="")
    _one_clean_line(proc, "certificate is not trusted", "--cafile")
    trusted = _cli("connect", "--cafile", str(certificate[0]), f"wss://localhost:{tls_server}/", input="hi\n")
    assert trusted.returncode == 0 and "< hi" in trusted.stdout, trusted.stderr


def test_connect_with_http2_to_a_server_without_it_says_so():
    import asyncio
    import threading

    import websockets

    port = _free_port()
    ready, stop = threading.Event(), None

    def run_server():
        nonlocal stop

        async def main():
            nonlocal stop
            stop = asyncio.get_running_loop().create_future()
            async with websockets.serve(lambda ws: ws.wait_closed(), "127.0.0.1", port):
                ready.set()
                await stop
        loop = asyncio.new_event_loop()
        thread_loop.append(loop)
        loop.run_until_complete(main())
        loop.close()

    thread_loop: list = []
    thread = threading.Thread(target=run_server, daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        proc = _cli("connect", "--http2", f"ws://127.0.0.1:{port}/", input="")
        _one_clean_line(proc, "does not speak HTTP/2")
    finally:
        thread_loop[0].call_soon_threadsafe(stop.set_result, None)
        thread.join(10)


def test_serve_on_a_port_in_use_and_with_a_missing_certificate_is_one_line(tmp_path):
    import socket
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        _one_clean_line(_cli("serve", "--port", str(port)), "address is in use")
    _one_clean_line(_cli("serve", "--port", "0", "--certfile", str(tmp_path / "missing.pem")),
                    "missing.pem", "no such file")


def test_ctrl_c_in_connect_exits_130_quietly(tls_server, certificate):
    import signal
    # The child gets SIGINT's default disposition: a test run started in the background by a
    # shell without job control inherits SIGINT ignored, and Python then keeps ignoring it.
    proc = subprocess.Popen([sys.executable, "-m", "ws2fast", "connect", "--cafile", str(certificate[0]),
                             f"wss://localhost:{tls_server}/"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert proc.stdout.readline().startswith("connected over HTTP/2")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and "Traceback" not in err and err.strip() == "interrupted", err


@pytest.mark.parametrize("streams", ["0", "500", "x"])
def test_demo_refuses_a_stream_count_out_of_range(streams):
    proc = _cli("demo", "--streams", streams)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "argument --streams" in proc.stderr and ("from 1 to 100" in proc.stderr or "whole number" in proc.stderr)


# -- help ------------------------------------------------------------------------------------------

def test_every_option_has_help_that_shows_its_default():
    from ws2fast.__main__ import build_parser

    parser = build_parser()
    top = parser.format_help()
    assert "``" not in top and "COMMAND" in top
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert set(commands.choices) == {"info", "serve", "asgi", "connect", "demo"}
    for name, sub in commands.choices.items():
        text = sub.format_help()
        assert "``" not in text
        for action in sub._actions:
            if not action.option_strings or action.dest == "help":
                continue
            assert action.help, f"{name} {action.option_strings[0]} has no help"
            shown = sub.formatter_class(prog="x")._get_help_string(action)
            assert "(default: " in shown, f"{name} {action.option_strings[0]}: {shown!r}"
        # ... and the rendered help says it too, once per option
        options = [a for a in sub._actions if a.option_strings and a.dest != "help"]
        assert " ".join(text.split()).count("(default: ") == len(options), text


# -- serve's operator options -----------------------------------------------------------------------

def test_serve_options_limit_origin_subprotocol_compression_and_size():
    import asyncio

    import ws2fast
    from ws2fast.exceptions import ConnectionClosedError, HandshakeFailed

    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "ws2fast", "serve", "--port", str(port),
                               "--max-message-size", "1000", "--permessage-deflate",
                               "--origin", "https://a.example", "--origin", "https://b.example",
                               "--subprotocol", "v2", "--subprotocol", "v1", "--log-level", "info"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "serving on http://" in server.stdout.readline()

        async def check():
            url = f"ws://127.0.0.1:{port}/x"
            with pytest.raises(HandshakeFailed) as refused:
                await ws2fast.connect(url, origin="https://evil.example")
            assert refused.value.status == 403
            config = ws2fast.Config(permessage_deflate=True)
            for http2 in (False, True):
                async with ws2fast.connect(url, origin="https://b.example", subprotocols=["v1", "v2"],
                                           http2=http2, config=config) as ws:
                    assert ws.subprotocol == "v2"
                    assert ws.extensions and ws.extensions[0].startswith("permessage-deflate")
                    await ws.send("x" * 1000)
                    assert await ws.recv() == "x" * 1000
                    await ws.send("x" * 1001)
                    with pytest.raises(ConnectionClosedError) as closed:
                        await ws.recv()
                    assert closed.value.code == 1009

        asyncio.run(asyncio.wait_for(check(), 30))
    finally:
        server.terminate()
        _, err = server.communicate(timeout=20)
    assert "INFO ws2fast" in err          # --log-level info shows the server's info lines


@pytest.mark.skipif(sys.version_info < (3, 11), reason="Task.cancelling() needs Python 3.11")
def test_ctrl_c_swallowed_while_closing_still_ends_as_interrupted():
    # What made the test above flaky: Ctrl-C (the main task cancelled) landing as a close
    # handshake completed inside asyncio.wait_for, which before Python 3.12 swallows the
    # cancellation; the command then returned 0.  The request still counts: it ends cancelled.
    from ws2fast.cli import _interruptible

    async def swallows() -> int:
        with contextlib.suppress(asyncio.CancelledError):    # as wait_for may
            await asyncio.sleep(10)
        return 0

    async def main() -> None:
        task = asyncio.ensure_future(_interruptible(swallows()))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
