"""The type stubs of the compiled core (ws2fast/_core.pyi) list what the module has."""

from __future__ import annotations

import ast

from tests.helpers import ROOT
from ws2fast import _core


def _stub_names() -> dict[str, set[str]]:
    tree = ast.parse((ROOT / "ws2fast" / "_core.pyi").read_text())
    names: dict[str, set[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            names[node.name] = {n.name for n in node.body if isinstance(n, ast.FunctionDef)} | {
                n.target.id for n in node.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}
        elif isinstance(node, ast.FunctionDef):
            names[node.name] = set()
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names[node.target.id] = set()
        elif isinstance(node, ast.Assign):
            names.update({t.id: set() for t in node.targets if isinstance(t, ast.Name)})
    return names


def test_every_public_name_of_the_core_has_a_stub():
    stubs = _stub_names()
    imported = {"ErrorCode", "FrameType", "SettingCode", "FrameError", "HeaderListTooLarge", "HPACKError",
                "LocalProtocolError", "WebSocketProtocolError", "cython"}
    public = {n for n in dir(_core) if not n.startswith("_")} - imported
    assert public - set(stubs) == set()


def test_every_stubbed_name_exists_with_its_methods():
    for name, members in _stub_names().items():
        if name in ("Field", "FieldLike", "Priority", "WebSocketEvent"):
            continue                                    # type aliases
        obj = getattr(_core, name)
        for member in members:
            if member.startswith("__"):      # __init__, and __buffer__ (Python >= 3.12)
                continue
            assert hasattr(obj, member), f"{name}.{member}"


def _declared_fields() -> dict[str, set[str]]:
    # cdef class X: ... cdef public|readonly <type> name  (the fields Python can see)
    import re
    fields: dict[str, set[str]] = {}
    for pxi in sorted((ROOT / "_ext").glob("*.p*")):
        current = None
        for line in pxi.read_text().splitlines():
            m = re.match(r"cdef class (\w+)", line)
            if m:
                current = m.group(1)
                fields.setdefault(current, set())
                continue
            if line and not line[0].isspace():
                current = None
            m = re.match(r"    cdef (?:public|readonly) [\w ]*?\b(\w+)\s*(?:#.*)?$", line)
            if current and m:
                fields[current].add(m.group(1))
    return fields


def test_the_fields_shared_with_python_are_the_stubs_fields():
    # The compiled classes' public and readonly fields are the surface the Python layers use:
    # the stubs list each (readonly ones as properties), and no field the .pxi does not share
    # (a field made private there leaves the stub too).
    tree = ast.parse((ROOT / "ws2fast" / "_core.pyi").read_text())
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    declared = _declared_fields()
    assert "H2Core" in declared and "streams" in declared["H2Core"]
    for name in ("EngineCore", "H1Core", "H2Core", "H2Stream", "SessionCore", "ProtocolCore",
                 "WebSocketCore"):
        body = classes[name].body
        attributes = {n.target.id for n in body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}
        properties = {n.name for n in body if isinstance(n, ast.FunctionDef)
                      and any(isinstance(d, ast.Name) and d.id == "property" for d in n.decorator_list)}
        assert declared[name] - attributes - properties == set(), name
        assert attributes - declared[name] == set(), name


def _upcalls_in_pxi() -> dict[str, set[str]]:
    # Per compiled class: the methods it calls on self but does not define (cdef, cpdef or def),
    # which its Python subclass must provide.
    import re
    calls: dict[str, set[str]] = {}
    for pxi in sorted((ROOT / "_ext").glob("*.pxi")):
        blocks = re.split(r"^cdef class (\w+)", pxi.read_text(), flags=re.M)
        for name, body in zip(blocks[1::2], blocks[2::2], strict=True):
            body = re.split(r"^[^\s#]", body.split("\n", 1)[1], maxsplit=1, flags=re.M)[0]  # its lines
            defined = set(re.findall(r"^    (?:cdef|cpdef|def|async def)\b[^(]*?\b(\w+)\(", body, flags=re.M))
            defined |= set(re.findall(r"^    cdef (?:public |readonly )?[\w ]*?\b(\w+)\s*(?:#.*)?$", body, flags=re.M))
            called = set(re.findall(r"\bself\.(\w+)\(", body))
            if called - defined:
                calls[name] = called - defined
    return calls


def test_every_upcall_of_the_core_is_declared_and_implemented():
    import inspect

    import ws2fast._upcalls as upcalls
    from ws2fast import H1Connection, H2Connection
    from ws2fast.aio.connection import Connection
    from ws2fast.aio.websocket import WebSocket
    from ws2fast.websocket import WebSocketSession

    found = _upcalls_in_pxi()
    assert found.get("H2Core") == {"_receive_slow"}         # the scan sees them
    subclasses = {"H1Core": H1Connection, "H2Core": H2Connection, "SessionCore": WebSocketSession,
                  "ProtocolCore": Connection, "WebSocketCore": WebSocket}
    assert set(found) == set(subclasses)
    for core, methods in found.items():
        protocol = getattr(upcalls, f"{core}Upcalls")
        declared = {n for n, v in vars(protocol).items() if inspect.isfunction(v) and not n.startswith("__")}
        assert methods == declared, core
        for method in methods:
            expected = list(inspect.signature(getattr(protocol, method)).parameters)
            actual = list(inspect.signature(getattr(subclasses[core], method)).parameters)
            assert actual == expected, f"{subclasses[core].__name__}.{method}"
