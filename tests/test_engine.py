"""The engine interface (ws2fast.engine.Engine): one driver, written against the interface
only, runs WebSockets and requests over HTTP/1.1 and HTTP/2 alike; the asyncio layer is such a
driver (it never asks which kind it holds, touches no other module's private names, and its
modules import one another without a cycle)."""

from __future__ import annotations

import ast
import inspect
import re

import pytest

from tests.helpers import ROOT
from ws2fast import Config, H1Connection, H2Connection, events
from ws2fast.engine import Engine


def _make(http2: bool, client_side: bool) -> Engine:
    # The one place that knows the kinds (as in the asyncio layer's Connection._start).
    if http2:
        conn = H2Connection(client_side, Config())
        conn.initiate()
        return conn
    return H1Connection(client_side, Config())


def _pump(a: Engine, b: Engine, seen: dict[int, list]) -> None:
    # Move bytes both ways until both are quiet; collect each side's events.
    for _ in range(20):
        moved = False
        for src, dst in ((a, b), (b, a)):
            data = src.data_to_send()
            if data:
                seen[id(dst)] += dst.receive_data(data)
                moved = True
        if not moved:
            return
    raise AssertionError("the two sides never went quiet")


def _drive_websocket(client: Engine, server: Engine) -> tuple[list, list]:
    """A WebSocket from open to close, through the interface only."""
    seen: dict[int, list] = {id(client): [], id(server): []}
    _pump(client, server, seen)                          # (HTTP/2: the SETTINGS)
    sid = client.open_websocket("/chat", "e.test", scheme="http", subprotocols=["v1"])
    _pump(client, server, seen)
    requested = [e for e in seen[id(server)] if isinstance(e, events.WebSocketRequested)]
    assert [r.path for r in requested] == ["/chat"] and requested[0].subprotocols == ("v1",)
    server_sid = requested[0].stream_id
    seen[id(server)] += server.accept_websocket(server_sid, "v1")
    _pump(client, server, seen)
    assert any(isinstance(e, events.WebSocketAccepted) and e.subprotocol == "v1" for e in seen[id(client)])
    assert client.has_stream(sid) and server.has_stream(server_sid)
    for i in range(3):
        client.send_message(sid, f"m{i}")
        client.send_fragment(sid, b"ab", first=True, fin=False)
        client.send_fragment(sid, b"cd", first=False, fin=True)
    client.ping(sid, b"p")
    _pump(client, server, seen)
    received = [e for e in seen[id(server)] if type(e).__name__ in ("TextMessage", "BinaryMessage")]
    assert [bytes(e.data) if not isinstance(e.data, str) else e.data for e in received] == \
        ["m0", b"abcd", "m1", b"abcd", "m2", b"abcd"]
    for e in received:
        server.acknowledge(server_sid, e.wire_size)
        server.send_message(server_sid, e.data)
    assert server.outgoing_buffered(server_sid) == 0
    _pump(client, server, seen)
    seen[id(client)] += client.close_websocket(sid, 1000, "bye")
    _pump(client, server, seen)
    return seen[id(client)], seen[id(server)]


@pytest.mark.parametrize("http2", [False, True], ids=["HTTP/1.1", "HTTP/2"])
def test_one_driver_runs_a_websocket_over_either_version(http2):
    client, server = _make(http2, True), _make(http2, False)
    assert client.multiplexed is http2 and client.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
    client_events, server_events = _drive_websocket(client, server)
    echoed = [e for e in client_events if type(e).__name__ in ("TextMessage", "BinaryMessage")]
    assert len(echoed) == 6
    assert any(isinstance(e, events.Pong) for e in client_events)
    # each side reports the other's Close: the server ours, the client the server's echo
    for side, reason in ((server_events, "bye"), (client_events, "")):
        closed = [e for e in side if isinstance(e, events.WebSocketClosed)]
        assert len(closed) == 1 and (closed[0].code, closed[0].reason) == (1000, reason)
    assert server.open_streams == client.open_streams == (0 if not http2 else server.open_streams)


@pytest.mark.parametrize("http2", [False, True], ids=["HTTP/1.1", "HTTP/2"])
def test_abandoning_an_exchange_says_whether_the_connection_is_over(http2):
    # The asyncio layer's rule: after reset_stream / abort_websocket, drop the transport if the
    # engine says it is closed (HTTP/1.1), else write the RST_STREAM (HTTP/2).
    client, server = _make(http2, True), _make(http2, False)
    seen: dict[int, list] = {id(client): [], id(server): []}
    _pump(client, server, seen)
    sid = client.open_websocket("/", "e.test", scheme="http")
    _pump(client, server, seen)
    server_sid = next(e.stream_id for e in seen[id(server)] if isinstance(e, events.WebSocketRequested))
    server.accept_websocket(server_sid)
    _pump(client, server, seen)
    client.abort_websocket(sid)
    assert client.closed is (not http2)
    assert client.going_away is (not http2)
    if http2:
        assert client.data_to_send()[3:4] == b"\x03"          # RST_STREAM goes out
        assert not client.has_stream(sid)


def test_both_connections_have_every_member_of_the_interface():
    members = {name for name, _ in inspect.getmembers(Engine) if not name.startswith("_")}
    members |= set(Engine.__annotations__)
    assert {"receive_data", "data_to_send", "multiplexed", "closed", "goaway"} <= members
    for cls in (H1Connection, H2Connection):
        for name in members:
            assert hasattr(cls, name) or name in ("client_side", "config"), f"{cls.__name__}.{name}"


_AIO = ROOT / "ws2fast" / "aio"


def test_no_module_of_aio_imports_another_in_a_cycle():
    graph: dict[str, set[str]] = {}
    for path in _AIO.glob("*.py"):
        tree = ast.parse(path.read_text())
        graph[path.stem] = {node.module for node in ast.walk(tree)
                            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module}
    assert graph["connection"] >= {"websocket"} and graph["server"] >= {"connection"}

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, ()):
            if nxt == target or (nxt not in seen and reaches(nxt, target, seen | {nxt})):
                return True
        return False

    for module in graph:
        assert not reaches(module, module, {module}), f"ws2fast.aio.{module} is in an import cycle"


_KINDS = re.compile(r"\b(H1Connection|H2Connection|H1Core|H2Core|SessionCore|WebSocketSession)\b")


def _code_lines(path):
    # (number, line) of code: comments and docstrings left out
    in_string = False
    for n, line in enumerate(path.read_text().splitlines(), 1):
        quotes = line.count('"""')
        if in_string or line.lstrip().startswith('"""'):
            if quotes % 2:
                in_string = not in_string
            continue
        yield n, line.split("#")[0]


def test_the_asyncio_layer_never_asks_which_kind_of_connection_it_holds():
    named = []
    for path in list(_AIO.glob("*.py")) + [ROOT / "_ext" / "aio.pxi"]:
        for n, code in _code_lines(path):
            if _KINDS.search(code) and not code.lstrip().startswith(("from ", "import ")):
                named.append((path.name, n, code.strip()))
    # only the factory (Connection._start) names them
    assert [code for _, _, code in named] == [
        "engine = H2Connection(self.client_side, self.config)",
        "self.engine = H1Connection(self.client_side, self.config)"], named


def test_the_asyncio_modules_touch_no_private_name_of_another_object():
    # ... except through a contract declared as a typing.Protocol in the package (what a
    # connection calls on its WebSockets and on its owner), which mypy checks.
    contract = set()
    for path in _AIO.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any(getattr(b, "id", "") == "Protocol" for b in node.bases):
                contract |= {f.name for f in node.body if isinstance(f, ast.FunctionDef)}
    assert {"_set_closed", "_connection_lost"} <= contract
    for path in _AIO.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") \
                    and not node.attr.startswith("__"):
                owner = node.value
                if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                    continue
                if isinstance(owner, ast.Call):            # super()._x
                    continue
                assert node.attr in contract, f"{path.name}:{node.lineno}: .{node.attr}"


def test_the_asgi_drivers_touch_private_names_only_through_their_protocols():
    # ws2fast/_asgi.py drives the asyncio layer's WebSocket and Connection through the compiled
    # queue and send path: every private name it (and the uvicorn class) uses of another
    # object is declared in a typing.Protocol of _asgi.py, which mypy checks against the class.
    asgi = ROOT / "ws2fast" / "_asgi.py"
    contract = set()
    for node in ast.walk(ast.parse(asgi.read_text())):
        if isinstance(node, ast.ClassDef) and any(getattr(b, "id", "") == "Protocol" for b in node.bases):
            for f in node.body:
                if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    contract.add(f.name)
                elif isinstance(f, ast.AnnAssign) and isinstance(f.target, ast.Name):
                    contract.add(f.target.id)
    assert {"_take", "_messages", "_send_soon", "_lost"} <= contract
    used = set()
    for path in (asgi, ROOT / "ws2fast" / "uvicorn.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                owner = node.value
                if isinstance(owner, ast.Name) and owner.id in ("self", "cls") or isinstance(owner, ast.Call):
                    continue
                assert node.attr in contract, f"{path.name}:{node.lineno}: .{node.attr}"
                used.add(node.attr)
    assert used, "the drivers use the compiled queue"
