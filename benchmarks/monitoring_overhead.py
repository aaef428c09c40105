"""Cost of training monitoring (``fusebench.engine.monitoring``), run on demand, never as a timed test.

Trains the default late-fusion CNN model (``configs`` defaults: CNN encoders, concat fusion)
through ``execute_run`` with monitoring on and off, interleaved, and compares the summed
training-epoch seconds (``timing.json: training``; validation and test excluded). The
best of ``--repeats`` runs per setting is kept, so other jobs on a shared machine inflate
both sides less. It also sums the seconds the monitor itself reports spending in its
hooks (``monitoring.jsonl: seconds``), a measurement of the same cost that the machine's
other load disturbs far less than the on/off difference. Writes
benchmarks/monitoring_overhead.json and prints a Markdown table.

    python benchmarks/monitoring_overhead.py [--train 2048] [--epochs 2] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import platform
import tempfile
from pathlib import Path

import torch

from fusebench.config import validate_config
from fusebench.engine.datasets import load_splits
from fusebench.engine.monitoring import read_monitoring
from fusebench.engine.run import execute_run
from fusebench.io import atomic_write_json

OUT = Path(__file__).with_name("monitoring_overhead.json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=2048)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    raw = {
        "experiment": {"name": "monitoring_overhead", "threads": args.threads, "device": args.device},
        "data": {"limit": {"train": args.train, "validation": 256, "test": 256}},
        "training": {"epochs": args.epochs},
        "logging": {"progress_bar": False},
    }
    configs = {enabled: validate_config({**raw, "monitoring": {"enabled": enabled}}) for enabled in (True, False)}
    data = load_splits(configs[True].data, ("audio", "image"), seed=0)
    seconds: dict[bool, list[float]] = {True: [], False: []}
    own: list[float] = []  # the monitor's own seconds per monitored run
    with tempfile.TemporaryDirectory() as folder:
        for repeat in range(args.repeats):
            for enabled in (False, True):
                result = execute_run(configs[enabled], Path(folder) / f"{enabled}_{repeat}", data=data)
                seconds[enabled].append(float(result.timing["training"]))
                if enabled:
                    own.append(sum(r["seconds"] for r in read_monitoring(result.run_dir)))
    on, off = min(seconds[True]), min(seconds[False])
    share = [100.0 * o / t for o, t in zip(own, seconds[True], strict=True)]
    results = {
        "machine": platform.processor() or platform.machine(),
        "device": args.device,
        "threads": args.threads,
        "torch": torch.__version__,
        "train_samples": args.train,
        "epochs": args.epochs,
        "repeats": args.repeats,
        "training_seconds_monitoring_on": seconds[True],
        "training_seconds_monitoring_off": seconds[False],
        "best_on": on,
        "best_off": off,
        "overhead_percent_on_vs_off": 100.0 * (on - off) / off,
        "monitor_own_seconds": own,
        "monitor_own_percent_of_training": share,
        "monitor_own_percent_median": sorted(share)[len(share) // 2],
    }
    atomic_write_json(OUT, results)
    print("| measurement | value |\n|---|---|")
    for key, value in results.items():
        shown = f"{value:.3g}" if isinstance(value, float) else value
        print(f"| {key} | {shown} |")


if __name__ == "__main__":
    main()
