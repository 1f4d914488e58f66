"""Ratio tables from pytest-benchmark results: ws2fast against the peers measured beside it.

Every benchmark of ``bench/`` runs ws2fast and at least one peer library in the same group of
the same run, so that a ratio can be read on a noisy machine where absolute times cannot.
:func:`ratio_lines` turns benchmark records into those ratios, and lists what benchmarks put
in ``extra_info`` (interleaved ratios, memory per WebSocket).  A record is a dict in the shape
of pytest-benchmark's JSON output (``--benchmark-json``), the ``"benchmarks"`` entries: it has
``group``, ``name``, ``params``, ``stats`` (with ``median``) and ``extra_info``.

The project's ``conftest.py`` prints these lines at the end of a ``--benchmark-enable`` run;
a saved JSON file renders the same way (``python -m ws2fast.benchreport results.json``).
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["ratio_lines", "implementation"]

# Parameters that name what a benchmark measured, in the order they are looked for.
_IMPL_PARAMS = ("impl", "case", "kernel")
# extra_info entries that describe a round rather than a result.
_ROUND_KEYS = ("messages_per_round", "frames_per_round")


def implementation(record: Mapping[str, Any]) -> str:
    """What a benchmark record measured: its ``impl`` (or ``case``, ``kernel``) parameter."""
    params = record.get("params") or {}
    for key in _IMPL_PARAMS:
        if key in params:
            return str(params[key])
    return str(record.get("name", "?"))


def _is_ours(name: str) -> bool:
    return name.startswith("ws2fast")


def ratio_lines(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """Lines of text: per group, each ws2fast implementation's speed against each peer's
    (the peer's median time divided by ours: above 1.00x ws2fast is faster), then the
    ``extra_info`` results.  Groups without both sides, or without timings, are left out."""
    groups: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    records = [r for r in records if r.get("stats")]
    for record in records:
        groups[str(record.get("group") or record.get("name"))].append(record)
    lines: list[str] = []
    for group in sorted(groups):
        rows = groups[group]
        ours = [r for r in rows if _is_ours(implementation(r))]
        peers = [r for r in rows if not _is_ours(implementation(r))]
        if not ours or not peers:
            continue
        lines.append(group)
        for mine in ours:
            median = mine["stats"]["median"]
            ratios = "  ".join(f"{implementation(p)} {p['stats']['median'] / median:.2f}x"
                               for p in peers if median > 0)
            lines.append(f"    {implementation(mine):<24} vs {ratios}")
    extras = []
    for record in records:
        info = {k: v for k, v in (record.get("extra_info") or {}).items() if k not in _ROUND_KEYS}
        if info:
            shown = ", ".join(f"{k} = {v:g}" if isinstance(v, float) else f"{k} = {v}" for k, v in info.items())
            extras.append(f"    {record.get('name')}: {shown}")
    if extras:
        lines.append("extra_info (results the benchmarks computed themselves)")
        lines.extend(extras)
    if lines:
        lines.insert(0, "ws2fast against the peers in the same run: the peer's median time / ws2fast's "
                        "(above 1.00x, ws2fast is faster)")
    return lines


def main(argv: list[str] | None = None) -> int:
    """Print the ratio table of a pytest-benchmark JSON file."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m ws2fast.benchreport RESULTS.json (from pytest --benchmark-json)", file=sys.stderr)
        return 2
    with open(args[0], encoding="utf-8") as f:
        data = json.load(f)
    for line in ratio_lines(data.get("benchmarks", [])):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
