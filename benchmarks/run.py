"""Performance ratios, run on demand (`make bench`), never as timed tests.

Measures on the machine at hand:
1. AV-digits cache load time (all 70,000 pairs, cache already built).
2. Training throughput (samples/s) of the default late-fusion CNN model, one thread and all threads.
3. All-pattern evaluation: one encoder pass per batch + one fuse per pattern, against
   re-running the whole model once per pattern (what early fusion must do).

Prints a Markdown table for the README and writes benchmarks/results.json.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from pathlib import Path

import torch

from fusebench.config import validate_config
from fusebench.data.avdigits import AVDigitsRecipe, load_avdigits
from fusebench.data.loader import TensorLoader
from fusebench.data.patterns import all_patterns, pattern_mask
from fusebench.engine.build import build_model
from fusebench.engine.evaluate import evaluate_patterns
from fusebench.io import atomic_write_json

OUT = Path(__file__).with_name("results.json")


def best_of(repeats: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def rerun_per_pattern(model: torch.nn.Module, loader: TensorLoader) -> None:
    with torch.no_grad():
        for batch in loader:
            for pattern in all_patterns(batch.modalities):
                model(batch.inputs, pattern_mask(pattern, batch.modalities, batch.size))


def main() -> None:
    results: dict[str, object] = {"machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads()}
    load_avdigits(AVDigitsRecipe())  # make sure the cache exists before timing the load
    results["cache_load_seconds"] = best_of(3, lambda: load_avdigits(AVDigitsRecipe()))
    data = load_avdigits(AVDigitsRecipe(), limit={"train": 4096, "validation": 10, "test": 4096})
    config = validate_config({})
    model = build_model(config, {m: tuple(x.shape[1:]) for m, x in data["train"].inputs.items()}, 10)
    optimizer = torch.optim.Adam(model.parameters())
    train = TensorLoader(data["train"].inputs, data["train"].target, 128, shuffle=True)

    def epoch() -> None:
        model.train()
        for batch in train:
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(batch.inputs, batch.mask).logits, batch.target).backward()
            optimizer.step()

    for threads in sorted({1, torch.get_num_threads()}):
        torch.set_num_threads(threads)
        results[f"train_samples_per_second_{threads}_threads"] = 4096 / best_of(2, epoch)
    test = TensorLoader(data["test"].inputs, data["test"].target, 1024)
    model.eval()
    encode_once = best_of(3, lambda: evaluate_patterns(model, test, ("audio", "image")))
    rerun = best_of(3, lambda: rerun_per_pattern(model, test))
    results["evaluate_all_patterns_encode_once_seconds"] = encode_once
    results["evaluate_all_patterns_rerun_seconds"] = rerun
    results["encode_once_speedup"] = rerun / encode_once
    atomic_write_json(OUT, results)
    print("| measurement | value |\n|---|---|")
    for key, value in results.items():
        shown = f"{value:.3g}" if isinstance(value, float) else value
        print(f"| {key} | {shown} |")
    print(f"best-of-N wall times; written to {OUT}")


if __name__ == "__main__":
    main()
