"""The bench harness runs: one ABBA round of one row on tiny data, written to results.json / results.md.

Nothing here times anything or asserts a speed: `make bench` measures, tests only check
that the measuring code works on today's code (a bench that broke silently would report
nothing the next time someone runs it).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _bench_main() -> ModuleType:
    sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location("fusebench_bench_run", BENCH / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_abba_pairs_each_round_and_reports_the_median_ratio() -> None:
    sys.path.insert(0, str(BENCH))
    from harness import Sample, abba

    a_values = iter([1.0, 2.0, 2.0, 4.0, 4.0])  # the warm-up, then A1 and A2 of each round
    b_values = iter([9.0, 3.0, 3.0, 5.0, 7.0])
    paired = abba(lambda: Sample(next(a_values), 1.0), lambda: Sample(next(b_values), 2.0), rounds=2)
    # round 1: A (2 + 2) / 2 = 2, B (3 + 3) / 2 = 3; round 2: A 4, B (5 + 7) / 2 = 6
    assert [s.cpu for s in paired.a] == [2.0, 4.0] and [s.cpu for s in paired.b] == [3.0, 6.0]
    assert paired.ratios == [1.5, 1.5] and paired.ratio == 1.5
    assert paired.summary()["wall_ratio_median"] == 2.0


@pytest.mark.slow
def test_one_round_of_the_training_epoch_row_on_tiny_data(tmp_path: Path) -> None:
    bench = _bench_main()
    code = bench.main(["--smoke", "--rows", "train_epoch_demo", "--out", str(tmp_path)])
    assert code == 0
    results = json.loads((tmp_path / "results.json").read_text())
    row = results["rows"]["train_epoch_demo"]
    assert row["rounds"] == 1 and row["samples"] == 128 and row["steps"] == 1
    assert row["a_cpu"][0] > 0 and row["b_cpu"][0] > 0 and row["ratio_median"] == row["b_cpu"][0] / row["a_cpu"][0]
    assert results["machine"]["cores"] >= 1 and results["machine"]["torch"]
    table = (tmp_path / "results.md").read_text()
    assert "| same, demo-sized CNN 8/16 |" in table and "<= 1.03 on every round" in table
