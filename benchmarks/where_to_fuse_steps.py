"""Training steps per second of the where-to-fuse model by fusion layer, run on demand, never as a timed test.

"Where to fuse" (``../shared/papers/002_f1eed76e6f5c3665.txt``, section 3.2.5, Figure 17)
reports more training steps per second for later fusion, because later fusion leaves fewer
blocks the long joint sequence. This benchmark builds every configuration of the shipped
study ``configs/studies/where_to_fuse.yaml`` (fusion layer x pooled tokens x decoder
layers), once with the default ``injection: direct`` and once with fusebench's
``side_blocks`` variant, and times full training steps (forward, backward, AdamW step) on
one AV-digits-shaped batch, in wall and in process-CPU seconds (which other jobs on a shared
machine inflate far less). Configurations are interleaved round by round and the best round
of each is kept, so the machine's other load disturbs every configuration alike.
Writes benchmarks/where_to_fuse_steps.json and prints a Markdown table.

    python benchmarks/where_to_fuse_steps.py [--steps 10] [--rounds 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import itertools
import platform
import time
from pathlib import Path
from typing import Any

import torch

from fusebench.engine.build import build_model
from fusebench.io import atomic_write_json
from fusebench.study.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "configs" / "studies" / "where_to_fuse.yaml"
OUT = Path(__file__).with_name("where_to_fuse_steps.json")
SHAPES = {"audio": (1, 40, 40), "image": (1, 28, 28)}  # AV-digits: log-mel spectrogram, MNIST image


def _step_seconds(
    model: torch.nn.Module, batch: dict[str, torch.Tensor], target: torch.Tensor, steps: int
) -> tuple[float, float]:
    """Wall and process-CPU seconds per training step."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    mask = torch.ones(len(target), 2, dtype=torch.bool)
    model.train()
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(batch, mask).logits, target)
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - start) / steps, (time.process_time() - cpu) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    study = load_spec(SPEC)
    batch_size = study.fusion_config("scratch", next(study.axis_combinations()), 0).data.batch_size
    generator = torch.Generator().manual_seed(0)
    batch = {m: torch.randn(batch_size, *s, generator=generator) for m, s in SHAPES.items()}
    target = torch.randint(0, 10, (batch_size,), generator=generator)
    models: dict[tuple[str, int, int, int], torch.nn.Module] = {}
    for injection, values in itertools.product(("direct", "side_blocks"), study.axis_combinations()):
        config = study.fusion_config("scratch", values, 0)
        config.model.fusion.params.injection = injection  # type: ignore[attr-defined]
        key = (injection, values["fusion_layer"], values["pooled_tokens"], values["decoder_layers"])
        models[key] = build_model(config, SHAPES, 10)
    best: dict[tuple[str, int, int, int], tuple[float, float]] = {}
    for _ in range(args.rounds):
        for key, model in models.items():
            _step_seconds(model, batch, target, 1)  # warm-up
            wall, cpu = _step_seconds(model, batch, target, args.steps)
            previous = best.get(key, (wall, cpu))
            best[key] = (min(previous[0], wall), min(previous[1], cpu))
    rows: list[dict[str, Any]] = [
        {
            "injection": k[0],
            "fusion_layer": k[1],
            "pooled_tokens": k[2],
            "decoder_layers": k[3],
            "steps_per_second": 1.0 / wall,
            "steps_per_cpu_second": 1.0 / cpu,
            "total_macs": models[k].cost().total_macs,
        }
        for k, (wall, cpu) in best.items()
    ]
    atomic_write_json(
        OUT,
        {
            "machine": platform.platform(),
            "threads": args.threads,
            "batch_size": batch_size,
            "steps": args.steps,
            "rounds": args.rounds,
            "rows": rows,
        },
    )
    print("| injection | fusion_layer | pooled tokens | decoder layers | MMACs/sample | steps/s | steps/CPU s |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['injection']} | {row['fusion_layer']} | {row['pooled_tokens']} | {row['decoder_layers']} | "
            f"{row['total_macs'] / 1e6:.2f} | {row['steps_per_second']:.2f} | {row['steps_per_cpu_second']:.2f} |"
        )


if __name__ == "__main__":
    main()
