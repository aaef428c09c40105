"""``make bench``: every row of issue 14's table, measured against a bare PyTorch loop, with its goal.

    python benchmarks/run.py                 # every row (27 min on 2 busy cores, the last full run)
    python benchmarks/run.py --rows memory startup
    python benchmarks/run.py --smoke --out /tmp/bench   # one round of every row on tiny data (the test)

In-process rows pair fusebench with the bare loop of ``bare.py`` in ABBA rounds
(``harness.abba``) and report the median ratio of this process's CPU seconds (wall seconds
beside it): on a shared machine wall time includes waiting for a core. Rows that need a
fresh process (memory, start-up, the cold build, studies) run children. Everything runs
with one torch thread per process unless the row says otherwise. Results go to
``results.json`` (every number) and ``results.md`` (the table, the machine, the load).
Nothing here is a test: tests never time anything.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import ROOT, load_average, machine  # noqa: E402
from report import render_markdown, table_rows  # noqa: E402

HERE = Path(__file__).resolve().parent
DEFAULT = str(ROOT / "configs" / "avdigits" / "late_fusion.yaml")
DEMO = str(ROOT / "configs" / "avdigits" / "demo.yaml")

# sizes per profile: `full` is `make bench`, `smoke` is the test's one round on tiny data
PROFILES: dict[str, dict[str, Any]] = {
    "full": {
        "rounds": 3,
        "default_rounds": 2,
        "threads": 1,
        "default_train": 2048,
        "demo_train": 5000,
        "eval_samples": 1024,
        "floor_samples": 6400,
        "memory_train": 1024,
        "memory_rounds": 1,
        "startup_rounds": 3,
        "study_rounds": 1,
        "study_train": 3000,
        "study_epochs": 2,
        "study_seeds": [0, 1, 2],
        "curve_sizes": [1000, 10000, 55000],
        "views_samples": 5000,
        "cold_build": True,
    },
    "smoke": {
        "rounds": 1,
        "default_rounds": 1,
        "threads": 1,
        "default_train": 128,
        "demo_train": 128,
        "eval_samples": 256,
        "floor_samples": 256,
        "memory_train": 128,
        "memory_rounds": 1,
        "startup_rounds": 1,
        "study_rounds": 1,
        "study_train": 64,
        "study_epochs": 1,
        "study_seeds": [0],
        "curve_sizes": [64, 128, 256],
        "views_samples": 128,
        "cold_build": False,
    },
}


def _small(p: dict[str, Any], train: int) -> list[str]:
    return [f"data.limit.train={train}", "data.limit.validation=128", "data.limit.test=128"]


def rows(p: dict[str, Any]) -> dict[str, Callable[[], Any]]:
    import rows_loop
    import rows_process
    import rows_scaling

    r, t = p["rounds"], p["threads"]
    demo_limits = _small(p, p["demo_train"])
    shipped_demo = [] if p is PROFILES["full"] else demo_limits  # the demo's own limits: 5000/1000/2000
    threads = [f"experiment.threads={t}", "training.epochs=1"]
    return {
        "train_epoch_default": lambda: rows_loop.train_epoch_row(
            "late_fusion.yaml", _small(p, p["default_train"]), t, p["default_rounds"]
        ),
        "train_epoch_demo": lambda: rows_loop.train_epoch_row("demo.yaml", demo_limits, t, r),
        "whole_run": lambda: rows_loop.whole_run_row(t, max(1, r - 1), shipped_demo),
        "test_pass": lambda: rows_loop.test_pass_row(t, r, shipped_demo),
        "eval_batch_default": lambda: rows_loop.eval_batch_row("late_fusion.yaml", t, r, samples=p["eval_samples"]),
        "eval_batch_demo": lambda: rows_loop.eval_batch_row("demo.yaml", t, r, samples=p["eval_samples"]),
        "memory_default": lambda: rows_process.memory_row(
            DEFAULT, [*threads, *_small(p, p["memory_train"])], p["memory_rounds"]
        ),
        "memory_demo": lambda: rows_process.memory_row(DEMO, [*threads, *shipped_demo], p["memory_rounds"]),
        "import_memory": rows_process.import_memory,
        "startup": lambda: rows_process.startup_rows(p["startup_rounds"], shipped_demo),
        "import_profile": rows_process.import_profile,
        "frozen_cache": lambda: rows_loop.frozen_cache_row(t, max(1, r - 1), shipped_demo),
        "deterministic": lambda: rows_loop.deterministic_row(t, 1, demo_limits),
        "lightning_floor": lambda: rows_loop.lightning_floor_row(t, max(1, r - 1), p["floor_samples"]),
        "study": lambda: rows_process.study_row(
            p["study_rounds"], _small(p, p["study_train"]) + [f"training.epochs={p['study_epochs']}"], p["study_seeds"]
        ),
        "cold_build": (
            rows_process.cold_build_row
            if p["cold_build"]
            else lambda: {"skipped": "not in this profile (a full build takes ~25 s)"}
        ),
        "curve_samples": lambda: rows_scaling.samples_curve(t, p["curve_sizes"]),
        "curve_modalities": lambda: rows_scaling.modalities_curve(t, p["views_samples"]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", nargs="*", help="only these rows (default: all)")
    parser.add_argument("--smoke", action="store_true", help="one round of every row on tiny data")
    parser.add_argument("--out", type=Path, default=HERE, help="folder for results.json and results.md")
    args = parser.parse_args(argv)
    profile = PROFILES["smoke" if args.smoke else "full"]
    table = rows(profile)
    unknown = sorted(set(args.rows or ()) - set(table))
    if unknown:
        parser.error(f"unknown rows {unknown}; expected some of {sorted(table)}")
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "machine": machine(),
        "profile": "smoke" if args.smoke else "full",
        "settings": profile,
        "rows": {},
        "seconds": {},
        "errors": {},
    }
    started = time.perf_counter()
    for name, measure in table.items():
        if args.rows and name not in args.rows:
            continue
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        row_start = time.perf_counter()
        try:
            results["rows"][name] = measure()
        except Exception:  # a broken row is reported, the others still run
            results["errors"][name] = traceback.format_exc()
            print(results["errors"][name], file=sys.stderr)
        results["seconds"][name] = time.perf_counter() - row_start
    results["machine"]["load_average_at_end"] = load_average()
    results["total_seconds"] = time.perf_counter() - started
    from fusebench.io import atomic_write_json, atomic_write_text

    atomic_write_json(args.out / "results.json", results)
    atomic_write_text(args.out / "results.md", render_markdown(results))
    print("| measure | fusebench (measured now) | goal | met |\n|---|---|---|---|")
    for label, value, goal, met in table_rows(results):
        print(f"| {label} | {value} | {goal} | {met} |")
    print(f"{results['total_seconds']:.0f} s; written to {args.out / 'results.json'} and results.md")
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
