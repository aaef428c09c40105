"""Scaling curves: a fusebench training epoch against training samples and against modalities.

Samples: the demo config (CNN 8/16) on the first 1k, 10k and 55k AV-digits training pairs.
Modalities: a dataset folder (``data.dataset: folder``) holding the same AV-digits images
three times under three modality names, each with the demo's CNN, trained on 1, 2 and 3 of
them: every modality costs the same, so linear growth is a straight line through the three.
Each point is one run's ``timing.json`` (``training_cpu``, ``training``); the least-squares
line and the largest relative residual from it are reported beside the points.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from rows_loop import Bench, run_config, with_overrides

COPIES = ("view_a", "view_b", "view_c")


def _line(xs: Sequence[float], ys: Sequence[float]) -> dict[str, float]:
    slope, intercept = np.polyfit(np.asarray(xs, float), np.asarray(ys, float), 1)
    fitted = slope * np.asarray(xs, float) + intercept
    residual = float(np.max(np.abs(fitted - np.asarray(ys, float)) / np.asarray(ys, float)))
    return {"slope": float(slope), "intercept": float(intercept), "max_relative_residual": residual}


def samples_curve(threads: int, sizes: Sequence[int] = (1000, 10000, 55000)) -> dict[str, Any]:
    """One training epoch on the first ``n`` training pairs for each ``n`` (data loaded per size)."""
    from fusebench.engine.datasets import run_splits
    from fusebench.engine.run import execute_run

    base = run_config("demo.yaml", ["data.limit.validation=128", "data.limit.test=128"], threads)
    root = Path(tempfile.mkdtemp(prefix="fusebench-bench-curve-"))
    points = {}
    for index, n in enumerate([min(sizes), *sizes]):  # the first run warms up
        config = with_overrides(base, [f"data.limit.train={n}"])
        data = run_splits(config)
        timing = execute_run(config, root / f"run{index}", data=data).timing
        points[n] = {
            "cpu_seconds": float(timing["training_cpu"]),
            "wall_seconds": float(timing["training"]),
            "cpu_ms_per_sample": 1000 * float(timing["training_cpu"]) / len(data.train),
            "samples": len(data.train),
        }
    return {
        "points": points,
        "fit_cpu": _line([p["samples"] for p in points.values()], [p["cpu_seconds"] for p in points.values()]),
    }


def _folder(bench: Bench, root: Path) -> None:
    """``root`` as a dataset folder: the AV-digits images three times, the labels, ``dataset.yaml``."""
    for split in ("train", "validation", "test"):
        part = bench.data.split(split)
        (root / split).mkdir(parents=True)
        image = part.inputs["image"].float().numpy()
        for name in COPIES:
            np.save(root / split / f"{name}.npy", image)
        np.save(root / split / "labels.npy", part.target.numpy())
    spec = {
        "name": "bench-views",
        "task": {"kind": "multiclass", "classes": 10},
        "modalities": {name: {"kind": "image", "shape": list(image.shape[1:])} for name in COPIES},
    }
    (root / "dataset.yaml").write_text(yaml.safe_dump(spec))


def modalities_curve(threads: int, samples: int = 5000) -> dict[str, Any]:
    from fusebench.config import validate_config
    from fusebench.engine.datasets import run_splits
    from fusebench.engine.run import execute_run

    source = Bench(
        run_config(
            "demo.yaml", [f"data.limit.train={samples}", "data.limit.validation=128", "data.limit.test=128"], threads
        )
    )
    root = Path(tempfile.mkdtemp(prefix="fusebench-bench-views-"))
    _folder(source, root / "data")
    encoder = {"kind": "cnn", "out_dim": 64, "widths": [8, 16]}
    points = {}
    for count in (1, 2, 3, 1):  # the first 1 warms up; the last one is kept
        raw = {
            "experiment": {"name": "views", "threads": threads, "runs_dir": str(root / "runs")},
            "logging": {"progress_bar": False},
            "data": {
                "dataset": "folder",
                "root": str(root / "data"),
                "batch_size": 128,
                "modalities": list(COPIES[:count]),
            },
            "model": {
                "encoders": {name: encoder for name in COPIES[:count]},
                "fusion": {"type": "late", "method": "concat", "hidden_dim": 128, "dropout": 0.2},
            },
            "training": {"epochs": 1, "optimizer": {"name": "adam", "lr": 0.001}},
        }
        config = validate_config(raw)
        data = run_splits(config)
        timing = execute_run(config, root / "runs" / f"m{count}-{len(points)}", data=data).timing
        points[count] = {"cpu_seconds": float(timing["training_cpu"]), "wall_seconds": float(timing["training"])}
    ordered = dict(sorted(points.items()))
    return {
        "points": ordered,
        "samples": samples,
        "fit_cpu": _line(list(ordered), [p["cpu_seconds"] for p in ordered.values()]),
        "three_over_two": ordered[3]["cpu_seconds"] / ordered[2]["cpu_seconds"],
    }
