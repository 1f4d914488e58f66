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
