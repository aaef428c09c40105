"""Hyperparameter sensitivity: how much a condition's result moves across a grid of axis values.

A study names the axes whose grid it spans (``analysis.sensitivity``, e.g. learning rate x
batch size); every other axis value makes a separate *slice*. Within a slice each condition
has a metric *surface*: one group per grid cell, one value per seed. Sensitivity is the
spread of that surface, measured two ways:

- **spread of the cell means**: the sample standard deviation (and the range) over the grid
  cells of each cell's mean over seeds — the surface a reader sees in the heatmap. Its
  interval is a percentile bootstrap over seeds (seeds resampled with replacement, all
  cells of a resampled seed kept together; seeded, 2000 resamples), which is coarse with
  few seeds (3 seeds have 10 distinct resamples) and says so;
- **per-seed spread**: for each seed with a value in every cell, the standard deviation of
  its values over the cells. It is one number per seed, so conditions are compared on it
  *paired by seed* with the report's paired t-test, Wilcoxon test and t-interval
  (:func:`fusebench.study.stats.paired_comparison`); the condition whose spread is larger is
  the more sensitive one.

Seed noise inflates both spreads even on a flat surface, so each slice also reports the
noise level: the pooled within-cell standard deviation over seeds ``s``, and the spread of
the cell means a flat surface would show from noise alone, about ``s / sqrt(n)``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fusebench.errors import ResultsError
from fusebench.study.analysis_groups import summary
from fusebench.study.spec_models import format_value
from fusebench.study.stats import paired_comparison

BOOTSTRAP_RESAMPLES = 2000
CONFIDENCE = 0.95


def _cell_values(
    groups: Sequence[Mapping[str, Any]], condition: str, cell: Mapping[str, Any], pattern: str
) -> dict[int, float]:
    """seed -> test value of the group of ``condition`` at the axis values ``cell``."""
    wanted = {k: format_value(v) for k, v in cell.items()}
    for group in groups:
        axes = {k: format_value(v) for k, v in (group.get("axes") or {}).items()}
        if group.get("condition") == condition and axes == wanted:
            return {
                int(s["seed"]): float(s["test"][pattern])
                for s in group.get("per_seed") or []
                if s.get("test", {}).get(pattern) is not None
            }
    return {}


def _spread(means: np.ndarray) -> tuple[float, float]:
    """(sample std, range) over the last axis."""
    std = float(np.std(means, ddof=1)) if means.shape[-1] > 1 else math.nan
    return std, float(np.ptp(means))


def _bootstrap_spread(matrix: np.ndarray, seed: int) -> tuple[float, float]:
    """Percentile interval of the std of cell means, resampling the rows (seeds) of ``matrix`` [n, cells]."""
    n = matrix.shape[0]
    if n < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, n, size=(BOOTSTRAP_RESAMPLES, n))
    means = matrix[rows].mean(axis=1)  # [B, cells]
    stds = means.std(axis=1, ddof=1)
    tail = (1.0 - CONFIDENCE) / 2.0
    return float(np.quantile(stds, tail)), float(np.quantile(stds, 1.0 - tail))


def surface(
    groups: Sequence[Mapping[str, Any]],
    condition: str,
    cells: Sequence[Mapping[str, Any]],
    pattern: str,
    higher_is_better: bool,
) -> dict[str, Any]:
    """One condition's surface over ``cells`` and its spreads (module docstring)."""
    values = [_cell_values(groups, condition, cell, pattern) for cell in cells]
    complete = sorted(set.intersection(*(set(v) for v in values))) if values else []
    cell_rows = [
        {
            "axes": dict(cell),
            "summary": summary(list(v.values())),
            "per_seed": {str(s): x for s, x in sorted(v.items())},
        }
        for cell, v in zip(cells, values, strict=True)
    ]
    means = np.array([np.mean(list(v.values())) if v else math.nan for v in values])
    present = means[np.isfinite(means)]
    std, value_range = _spread(present) if present.size else (math.nan, math.nan)
    matrix = np.array([[v[s] for v in values] for s in complete], dtype=float).reshape(len(complete), len(cells))
    per_seed = {s: _spread(matrix[i])[0] for i, s in enumerate(complete)}
    within = [np.var(list(v.values()), ddof=1) for v in values if len(v) > 1]
    noise = float(math.sqrt(np.mean(within))) if within else math.nan
    n = int(np.median([len(v) for v in values])) if values else 0
    order = [i for i in np.argsort(means) if np.isfinite(means[i])]
    best, worst = (order[-1], order[0]) if higher_is_better else (order[0], order[-1])
    low, high = _bootstrap_spread(matrix, seed=0)
    return {
        "condition": condition,
        "cells": cell_rows,
        "cells_with_values": int(present.size),
        "complete_seeds": complete,
        "best_cell": dict(cells[best]) if order else None,
        "worst_cell": dict(cells[worst]) if order else None,
        "best_mean": float(means[best]) if order else None,
        "worst_mean": float(means[worst]) if order else None,
        "spread_of_means": {
            "std": std,
            "range": value_range,
            "bootstrap_low": low,
            "bootstrap_high": high,
            "seeds": len(complete),
        },
        "per_seed_spread": {
            "per_seed": {str(s): v for s, v in per_seed.items()},
            "summary": summary(list(per_seed.values())),
        },
        "noise": {
            "within_cell_std": noise,
            "flat_surface_spread": noise / math.sqrt(n) if n else math.nan,
            "seeds_per_cell": n,
        },
    }


def compare_spreads(reference: Mapping[str, Any], compared: Mapping[str, Any]) -> dict[str, Any] | None:
    """Per-seed spread of ``compared`` minus ``reference``, paired by seed; None below two common seeds."""
    a, b = reference["per_seed_spread"]["per_seed"], compared["per_seed_spread"]["per_seed"]
    seeds = sorted((s for s in set(a) & set(b) if math.isfinite(a[s]) and math.isfinite(b[s])), key=int)
    if len(seeds) < 2:
        return None
    result = paired_comparison(
        [a[s] for s in seeds],
        [b[s] for s in seeds],
        metric="per-seed spread",
        condition_a=reference["condition"],
        condition_b=compared["condition"],
        confidence=CONFIDENCE,
    )
    return {
        "reference": reference["condition"],
        "compared": compared["condition"],
        "n": result.n,
        "mean_reference": result.mean_a,
        "mean_compared": result.mean_b,
        "mean_diff": result.mean_diff,
        "ci_low": result.ci_low,
        "ci_high": result.ci_high,
        "p_ttest": result.p_ttest,
        "p_wilcoxon": result.p_wilcoxon,
        "note": result.note,
        "seeds": [int(s) for s in seeds],
    }


def sensitivity_analysis(
    groups: Sequence[Mapping[str, Any]],
    axes: Mapping[str, Sequence[Any]],
    names: Sequence[str] | None,
    conditions: Sequence[str],
    baseline: str | None,
    metric: str,
    pattern: str,
    higher_is_better: bool,
) -> list[dict[str, Any]] | None:
    """The sensitivity section's numbers, one entry per slice; None when the study names no sensitivity axes.

    Args:
        groups: the analysis' groups (with ``per_seed`` test values).
        axes: every axis of the study and its values, in spec order.
        names: the axes whose grid is analysed (``analysis.sensitivity``).
        conditions: the conditions, in spec order.
        baseline: the reference of the paired comparisons (default: the first condition).
        metric, pattern: the compared test value (the primary metric on the primary pattern).
        higher_is_better: the metric's direction (for the best and worst cells).

    Raises:
        ResultsError: a named axis the study does not have (a results file the spec did not write).
    """
    if not names:
        return None
    unknown = [n for n in names if n not in axes]
    if unknown:
        raise ResultsError(f"`analysis.sensitivity` names axes {unknown}; the study's axes are {list(axes)}.")
    others = [a for a in axes if a not in names]
    reference = baseline or (conditions[0] if conditions else None)
    slices = []
    for fixed_values in itertools.product(*(axes[a] for a in others)):
        fixed = dict(zip(others, fixed_values, strict=True))
        cells = [
            {**dict(zip(names, values, strict=True)), **fixed}
            for values in itertools.product(*(axes[n] for n in names))
        ]
        surfaces = [surface(groups, c, cells, pattern, higher_is_better) for c in conditions]
        by_condition = {s["condition"]: s for s in surfaces}
        comparisons = [
            compare_spreads(by_condition[reference], s)
            for s in surfaces
            if reference in by_condition and s["condition"] != reference
        ]
        slices.append(
            {
                "fixed": fixed,
                "axes": list(names),
                "values": {n: list(axes[n]) for n in names},
                "metric": metric,
                "pattern": pattern,
                "surfaces": surfaces,
                "comparisons": [c for c in comparisons if c is not None],
                "most_sensitive": _most_sensitive(surfaces),
            }
        )
    return slices


def _most_sensitive(surfaces: Sequence[Mapping[str, Any]]) -> str | None:
    """The condition with the largest spread of cell means (descriptive; the comparisons test it)."""
    spreads = [
        (s["spread_of_means"]["std"], s["condition"])
        for s in surfaces
        if s["spread_of_means"]["std"] is not None and math.isfinite(s["spread_of_means"]["std"])
    ]
    return max(spreads)[1] if spreads else None
