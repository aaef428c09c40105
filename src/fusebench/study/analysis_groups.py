"""Per-group summaries over seeds: first epoch, epochs to threshold, test metrics, wall time.

A *group* is one condition at one combination of axis values (``pretrained|fusion=gated``);
its seeds are the replicates. Every summary keeps ``n`` (the seeds it rests on) and the
per-seed values, so a reader can check any mean in the report against the runs.
Missing values (a failed run, a pattern that was not evaluated) are left out of a summary
and counted, never filled in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from fusebench.data.patterns import pattern_name
from fusebench.errors import DamagedFileError
from fusebench.io import read_json_object
from fusebench.study.curves import EpochsToThreshold, epochs_to_threshold, summarize_epochs_to_threshold
from fusebench.study.records import RunRecord
from fusebench.study.seed_summary import summarize

TIME_PARTS = (
    "training",
    "validation",
    "test",
    "other",
    "total",
    "fit",
    "pretraining_full",
    "pretraining_amortised",
    "total_with_pretraining",
    "total_with_pretraining_amortised",
)


def clean(value: Any) -> Any:
    """JSON-safe copy: NaN and infinities become ``None`` (strict JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return clean(value.item())
    return value


def summary(values: Sequence[float | None]) -> dict[str, Any] | None:
    """:func:`~fusebench.study.seed_summary.summarize` as a dict, or ``None`` when no value is present."""
    present = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not present:
        return None
    summarized: dict[str, Any] = clean(asdict(summarize(present)))
    return summarized


def completed(run: RunRecord) -> bool:
    return run.completed


def run_config(study_dir: Path, run: RunRecord) -> dict[str, Any]:
    """The resolved ``config.yaml`` of a run (empty when the run never wrote one)."""
    file = study_dir / str(run.run_dir or "") / "config.yaml"
    if not run.run_dir or not file.is_file():
        return {}
    try:
        config = yaml.safe_load(file.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise DamagedFileError(
            f"Run config `{file}` is not readable YAML ({type(error).__name__}); the file is damaged."
        ) from None
    if config is not None and not isinstance(config, dict):
        raise DamagedFileError(f"Expected a mapping in run config `{file}`, got {type(config).__name__}.")
    return config or {}


def run_file(study_dir: Path, run: RunRecord, name: str) -> Path | None:
    if not run.run_dir:
        return None
    file = study_dir / run.run_dir / name
    return file if file.is_file() else None


def validation_curve(run: RunRecord, pattern: str, metric: str) -> list[float]:
    """Per-epoch validation values (epoch 1 first); the run-level loss stands in for a pattern's."""
    curve: Sequence[float | None] | None = run.curves.validation.get(pattern, {}).get(metric)
    if curve is None and metric == "loss":
        curve = run.curves.validation_loss
    return [float("nan") if v is None else float(v) for v in (curve or [])]


def test_value(run: RunRecord, pattern: str, metric: str) -> float | None:
    value = run.test.get(pattern, {}).get(metric)
    return None if value is None else float(value)


def time_parts(run: RunRecord, modalities: Sequence[str]) -> dict[str, float | None]:
    """Wall-time split of one run, seconds.

    ``other`` is what the main run spent outside training, validation and test (loading
    data, building the model, checkpoints), so the stacked parts add up to ``total``.
    ``fit`` is the main run's Lightning fit (training + validation epochs and their
    overhead), the counterpart of a pre-training node's fit. Amortised pre-training
    falls back to the full cost when the results do not say how many runs shared a node.
    """
    total = run.seconds("total")
    if total is None:
        return dict.fromkeys(TIME_PARTS)
    recorded = run.per_modality_seconds("pretraining")
    full = {m: float(recorded.get(m) or 0.0) for m in modalities}
    shared = run.per_modality_seconds("pretraining_amortised") if "pretraining_amortised" in run.timing else None
    amortised = {m: float((shared if shared is not None else full).get(m) or 0.0) for m in modalities}
    spent = [run.seconds(k) or 0.0 for k in ("training", "validation", "test")]
    parts: dict[str, float | None] = {
        "training": spent[0],
        "validation": spent[1],
        "test": spent[2],
        "other": max(total - sum(spent), 0.0),
        "total": total,
        "fit": run.seconds("fit"),
        "pretraining_full": sum(full.values()),
        "pretraining_amortised": sum(amortised.values()),
        "total_with_pretraining": total + sum(full.values()),
        "total_with_pretraining_amortised": total + sum(amortised.values()),
    }
    for m in modalities:
        parts[f"pretraining_full/{m}"] = full[m]
        parts[f"pretraining_amortised/{m}"] = amortised[m]
    return parts


def throughput(study_dir: Path, run: RunRecord) -> float | None:
    """Training samples per second, from the run's own ``timing.json`` (not in results.json)."""
    file = run_file(study_dir, run, "timing.json")
    if file is None:
        return None
    value = read_json_object(file).get("train_samples_per_second")
    return float(value) if isinstance(value, (int, float)) else None


def steps_per_second(study_dir: Path, run: RunRecord, key: str = "train_steps_per_second") -> float | None:
    """Training optimiser steps per (wall or, ``train_steps_per_cpu_second``, CPU) second, from ``timing.json``.

    Steps per second is the measure of "Where to fuse" (002 Fig. 17); per CPU second of the
    run's process it is not inflated by other jobs on a shared machine.
    """
    file = run_file(study_dir, run, "timing.json")
    if file is None:
        return None
    value = read_json_object(file).get(key)
    return float(value) if isinstance(value, (int, float)) else None


def curve_band(curves: Sequence[Sequence[float]]) -> dict[str, list[Any]]:
    """Mean, std, min, max and n per epoch over seeds; runs of different lengths are allowed."""
    length = max((len(c) for c in curves), default=0)
    band: dict[str, list[Any]] = {
        "epoch": list(range(1, length + 1)),
        "mean": [],
        "std": [],
        "min": [],
        "max": [],
        "n": [],
    }
    for i in range(length):
        values = np.array([c[i] for c in curves if i < len(c) and math.isfinite(c[i])], dtype=float)
        band["n"].append(int(values.size))
        band["mean"].append(float(values.mean()) if values.size else None)
        band["std"].append(float(values.std(ddof=1)) if values.size > 1 else None)
        band["min"].append(float(values.min()) if values.size else None)
        band["max"].append(float(values.max()) if values.size else None)
    return band


#: The time parts every group reports (a group whose runs all failed reports them empty).
TIME_KEYS = (
    "training",
    "validation",
    "test",
    "other",
    "total",
    "pretraining_full",
    "pretraining_amortised",
    "total_with_pretraining",
    "total_with_pretraining_amortised",
)


def summarise_group(
    name: str,
    runs: Sequence[RunRecord],
    *,
    study_dir: Path,
    modalities: Sequence[str],
    patterns: Sequence[str],
    metric: str,
    threshold: float | None,
    higher_is_better: bool,
) -> dict[str, Any]:
    """Everything the report says about one group, from its completed runs only."""
    done = sorted((r for r in runs if r.completed), key=lambda r: r.seed)
    full = pattern_name(modalities)
    first = {r.seed: _first(validation_curve(r, full, metric)) for r in done}
    first_loss = {r.seed: _first(validation_curve(r, full, "loss")) for r in done}
    metrics = sorted({metric} | {k for r in done for p in r.test.values() for k in p if k != "count"})
    test = {p: {m: summary([test_value(r, p, m) for r in done]) for m in metrics} for p in patterns}
    times = {r.seed: time_parts(r, modalities) for r in done}
    time_keys = sorted({k for t in times.values() for k in t} | set(TIME_KEYS))  # all, even with no run done
    head = runs[0]
    record: dict[str, Any] = clean(
        {
            "name": name,
            "condition": head.condition,
            "axes": dict(head.axes),
            "seeds_planned": sorted(r.seed for r in runs),
            "seeds_completed": [r.seed for r in done],
            "n": len(done),
            "first_epoch": {"metric": summary(list(first.values())), "loss": summary(list(first_loss.values()))},
            "epochs_to_threshold": _epochs_to_threshold(done, full, metric, threshold, higher_is_better),
            "test": test,
            "time": {k: summary([t.get(k) for t in times.values()]) for k in time_keys},
            "throughput": summary([throughput(study_dir, r) for r in done]),
            "steps_per_second": summary([steps_per_second(study_dir, r) for r in done]),
            "steps_per_cpu_second": summary(
                [steps_per_second(study_dir, r, "train_steps_per_cpu_second") for r in done]
            ),
            "model": dict(done[0].model) if done else {},
            "curves": {
                p: {m: curve_band([validation_curve(r, p, m) for r in done]) for m in (metric, "loss")}
                for p in patterns
            },
            "per_seed": [
                {
                    "seed": r.seed,
                    "first_epoch": first[r.seed],
                    "first_epoch_loss": first_loss[r.seed],
                    "test": {p: test_value(r, p, metric) for p in patterns},
                    "time": times[r.seed],
                }
                for r in done
            ],
        }
    )
    return record


def _first(curve: Sequence[float]) -> float | None:
    return curve[0] if curve and math.isfinite(curve[0]) else None


def _epochs_to_threshold(
    done: Sequence[RunRecord], full: str, metric: str, threshold: float | None, higher_is_better: bool
) -> dict[str, Any] | None:
    """Epochs to reach ``threshold`` on the validation full pattern; censored runs stay censored."""
    if threshold is None:
        return None
    per_seed = []
    for run in done:
        curve = validation_curve(run, full, metric)
        if curve:
            result = epochs_to_threshold(curve, threshold, higher_is_better)
            per_seed.append({"seed": run.seed, **asdict(result)})
    if not per_seed:
        return {"threshold": threshold, "per_seed": [], "summary": None}
    records = [EpochsToThreshold(s["epochs"], s["censored"], s["max_epochs"]) for s in per_seed]
    return {"threshold": threshold, "per_seed": per_seed, "summary": asdict(summarize_epochs_to_threshold(records))}
