"""ws2fast.benchreport: the ratio table printed after a --benchmark-enable run."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.helpers import ROOT
from ws2fast.benchreport import implementation, main, ratio_lines


def _record(group, impl, median, **extra):
    return {"group": group, "name": f"test_x[{impl}]", "params": {"impl": impl},
            "stats": {"median": median}, "extra_info": extra}


def test_ratios_are_the_peers_time_over_ours_per_group():
    lines = ratio_lines([
        _record("decode", "ws2fast", 1.0), _record("decode", "hpack", 25.0),
        _record("echo", "ws2fast-h2", 2.0), _record("echo", "ws2fast-h1", 4.0),
        _record("echo", "picows", 3.0, messages_per_round=100),
        _record("kernels", "ws2fast", 1.0),                       # no peer: left out
    ])
    text = "\n".join(lines)
    assert "hpack 25.00x" in text
    assert [line.split()[0] for line in lines if line.startswith("    ")] == ["ws2fast", "ws2fast-h2", "ws2fast-h1"]
    assert "picows 1.50x" in text and "picows 0.75x" in text
    assert "kernels" not in text and "messages_per_round" not in text


def test_extra_info_results_are_listed_and_nothing_without_results():
    lines = ratio_lines([_record("echo", "ws2fast-h2", 1.0, **{"ws2fast-h2 / picows": 1.02}),
                         _record("echo", "picows", 1.0)])
    assert any("ws2fast-h2 / picows = 1.02" in line for line in lines)
    assert ratio_lines([]) == []
    assert ratio_lines([{"group": "g", "name": "n", "params": {}, "stats": None}]) == []
    assert implementation({"name": "plain", "params": {"case": "picows"}}) == "picows"


def test_a_saved_json_file_renders_the_same(tmp_path, capsys):
    path = tmp_path / "results.json"
    records = [_record("decode", "ws2fast", 1.0), _record("decode", "hpack", 20.0)]
    path.write_text(json.dumps({"benchmarks": records}))
    assert main([str(path)]) == 0
    assert capsys.readouterr().out.splitlines() == ratio_lines(records)


def test_a_benchmark_run_ends_with_the_table_and_the_test_run_without_it():
    base = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "bench/bench_hpack.py"]
    measured = subprocess.run(base + ["--benchmark-enable", "--benchmark-max-time=0.01",
                                      "--benchmark-min-rounds=3"],
                              cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert measured.returncode == 0, measured.stdout[-3000:]
    assert "ws2fast ratios" in measured.stdout and "hpack " in measured.stdout.split("ws2fast ratios")[1]
    single = subprocess.run(base, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert single.returncode == 0 and "ws2fast ratios" not in single.stdout
