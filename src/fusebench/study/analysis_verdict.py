"""The facts the verdict rests on: what budget was tested, best vs runner-up, power, test-set error.

Each function reads the groups and comparisons the analysis already computed (or the
saved test logits) and adds one kind of fact, so the report's sentences can state what
was tested rather than what one would like to conclude:

- :func:`fixed_budget`: whether every run stopped at the same epoch count while the
  baseline was still improving (then a difference is one *at that budget*);
- :func:`best_and_runner_up`: the two best groups of the primary family, so the verdict
  compares the winner with its closest rival and not only with the baseline;
- :func:`attach_power`: seeds a confirmatory study needs (:mod:`fusebench.study.power`);
- :func:`attach_test_set`: test-sample error beside the seed CI (:mod:`fusebench.study.testset`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from torch import Tensor

from fusebench.study.analysis_modality import SavedOutputs, load_logits
from fusebench.study.power import seeds_for_power
from fusebench.study.records import RunRecord
from fusebench.study.testset import (
    PROPORTION_METRICS,
    as_record,
    bootstrap_difference,
    group_interval,
)
from fusebench.tasks import Task, get_metric

POWER = 0.8


def _band(group: Mapping[str, Any], pattern: str, metric: str) -> Mapping[str, Any]:
    return ((group.get("curves") or {}).get(pattern) or {}).get(metric) or {}


def fixed_budget(
    groups: Sequence[Mapping[str, Any]],
    baseline: str | None,
    epochs: int | None,
    pattern: str,
    metric: str,
    higher_is_better: bool,
) -> dict[str, Any] | None:
    """The fixed epoch budget every run stopped at, and whether the baseline was still improving.

    Fixed means every completed run of every group lasted the same number of epochs and
    that number is the configured ``training.epochs`` (no run stopped early). "Still
    improving" means the baseline's seed-mean validation ``metric`` on ``pattern`` got
    better in the last epoch; ``None`` when there is one epoch (nothing to compare).

    Returns:
        ``{"epochs", "still_improving", "last_change", "group"}``, or ``None`` when the runs
        did not all stop at one fixed count.
    """
    lengths = set()
    for group in groups:
        band = _band(group, pattern, metric)
        if not band.get("epoch") or not group.get("n"):
            continue
        if band["n"][-1] != group["n"] or min(band["n"]) != group["n"]:
            return None  # some seed stopped earlier than another
        lengths.add(len(band["epoch"]))
    if len(lengths) != 1 or (epochs is not None and lengths != {int(epochs)}):
        return None
    length = lengths.pop()
    sign = 1.0 if higher_is_better else -1.0
    changes = []
    for group in (g for g in groups if g.get("condition") == baseline):
        mean = _band(group, pattern, metric).get("mean") or []
        if len(mean) >= 2 and mean[-1] is not None and mean[-2] is not None:
            changes.append((sign * (mean[-1] - mean[-2]), mean[-1] - mean[-2], group["name"]))
    if not changes:
        return {"epochs": length, "still_improving": None, "last_change": None, "group": None}
    gain, change, name = max(changes)
    return {"epochs": length, "still_improving": gain > 0, "last_change": change, "group": name}


def best_and_runner_up(
    groups: Sequence[Mapping[str, Any]],
    primary: Sequence[tuple[str, str]],
    pattern: str,
    metric: str,
    higher_is_better: bool,
) -> tuple[str, str] | None:
    """``(runner-up, best)`` among the groups of the primary family, by seed-mean test ``metric``.

    Groups with fewer than two completed seeds cannot be compared and are left out.
    ``None`` with fewer than three such groups: then the only pair is a primary comparison.
    """
    names = list(dict.fromkeys(n for pair in primary for n in pair))
    means = {}
    for group in groups:
        summary = ((group.get("test") or {}).get(pattern) or {}).get(metric) or {}
        if group["name"] in names and summary.get("mean") is not None and summary.get("n", 0) >= 2:
            means[group["name"]] = summary["mean"]
    if len(means) < 3:
        return None
    ranked = sorted(means, key=lambda n: means[n], reverse=higher_is_better)
    return ranked[1], ranked[0]


def attach_power(comparisons: list[dict[str, Any]], alpha: float, primary_size: int) -> None:
    """Seeds for 80% power at ``alpha`` (and at ``alpha / primary_size``) on primary and post-hoc rows.

    The effect assumed is the observed bias-corrected ``|g_z|``; the report says that
    observed effects from few seeds are an optimistic guide.
    """
    for c in comparisons:
        if c["family"] != "primary" and not c.get("post_hoc"):
            continue
        c["seeds_needed"] = asdict(seeds_for_power(c.get("hedges_g"), alpha, POWER))
        c["seeds_needed_adjusted"] = (
            asdict(seeds_for_power(c.get("hedges_g"), alpha / primary_size, POWER)) if primary_size > 1 else None
        )


class _Logits:
    """Saved test logits per run directory, loaded once."""

    def __init__(self, study_dir: Path) -> None:
        self.study_dir = study_dir
        self.cache: dict[str | None, SavedOutputs | None] = {}

    def pattern(self, run: RunRecord, pattern: str) -> tuple[Tensor, Tensor, Task] | None:
        key = run.run_dir
        if key not in self.cache:
            self.cache[key] = load_logits(self.study_dir, run)
        saved = self.cache[key]
        return (
            None if saved is None or pattern not in saved.logits else (saved.logits[pattern], saved.target, saved.task)
        )


def _count(runs: Sequence[RunRecord], pattern: str) -> int | None:
    counts = {int(count) for r in runs if (count := r.test.get(pattern, {}).get("count")) is not None}
    return counts.pop() if len(counts) == 1 else None


def attach_test_set(
    study_dir: Path,
    groups: list[dict[str, Any]],
    runs_by_group: Mapping[str, Sequence[RunRecord]],
    comparisons: list[dict[str, Any]],
    patterns: Sequence[str],
    metric: str,
    confidence: float,
) -> None:
    """``test_set`` intervals: per group and pattern (headline), and per primary / post-hoc difference.

    Proportions get the Wilson interval on every pattern; other metrics are bootstrapped
    from the saved logits, on the primary pattern only when the metric must be recomputed
    per resample (slow), on every pattern when it is a mean of per-sample scores.
    """
    logits = _Logits(study_dir)
    cheap = metric in PROPORTION_METRICS or bool(get_metric(metric).per_sample)
    for group in groups:
        runs = sorted((r for r in runs_by_group[group["name"]] if r.completed), key=lambda r: r.seed)
        group["test_set"] = {}
        for pattern in patterns if cheap else patterns[:1]:
            summary = ((group.get("test") or {}).get(pattern) or {}).get(metric) or {}
            saved = None
            if metric not in PROPORTION_METRICS:
                found = [logits.pattern(r, pattern) for r in runs]
                saved = [s for s in found if s is not None] if all(s is not None for s in found) else None
            interval = group_interval(summary.get("mean"), _count(runs, pattern), saved, metric, confidence)
            group["test_set"][pattern] = as_record(interval)
    for c in comparisons:
        if (c["family"] != "primary" and not c.get("post_hoc")) or c["kind"] != "test":
            continue
        sides = []
        for name in (c["group_a"], c["group_b"]):
            by_seed = {r.seed: r for r in runs_by_group[name] if r.completed}
            sides.append([logits.pattern(by_seed[s], c["pattern"]) for s in c["seeds"]])
        if any(s is None for side in sides for s in side):
            c["test_set"] = None
            continue
        c["test_set"] = as_record(bootstrap_difference(sides[0], sides[1], metric, confidence))  # type: ignore[arg-type]
