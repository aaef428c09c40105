"""Did pre-training pay for itself? The numbers behind the report's decision guide.

For each primary comparison of a condition with pre-trained encoders against one without,
three facts decide it:

- the effect at the tested budget (the primary comparison: difference and Holm p);
- the time to reach the baseline's final validation value: the baseline's ``E`` epochs
  against the pre-trained condition's pre-training plus the epochs it needed to get there
  (from the seed-mean learning curves), each epoch costing the group's mean fit seconds
  per epoch;
- if pre-training did not pay for itself in time, how many fusion runs would have to share
  one pre-trained encoder before it does (a sweep over fusion methods reuses it).

Times come from the runs' own clocks; their caveats (parallel workers) apply here too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any


def _mean(summary: Mapping[str, Any] | None) -> float | None:
    return None if not summary or summary.get("mean") is None else float(summary["mean"])


def _epoch_seconds(group: Mapping[str, Any], epochs: int) -> float | None:
    """Mean seconds of one fusion-training epoch of a group: its fit (train + validation) / epochs."""
    time = group.get("time") or {}
    fit = _mean(time.get("fit"))
    if fit is None:  # results without the fit clock: training + validation epochs
        parts = [_mean(time.get("training")), _mean(time.get("validation"))]
        fit = None if None in parts else sum(p for p in parts if p is not None)
    return None if fit is None or epochs < 1 else fit / epochs


def first_epoch_reaching(curve: Sequence[float | None], target: float, higher_is_better: bool) -> int | None:
    """First 1-based epoch whose value is at least as good as ``target``; ``None`` if none is.

    >>> first_epoch_reaching([0.4, 0.55, 0.61], 0.55, True)
    2
    """
    for epoch, value in enumerate(curve, start=1):
        if value is not None and (value >= target if higher_is_better else value <= target):
            return epoch
    return None


def decision_rows(
    groups: Sequence[Mapping[str, Any]],
    comparisons: Sequence[Mapping[str, Any]],
    pattern: str,
    metric: str,
    higher_is_better: bool,
    alpha: float,
) -> list[dict[str, Any]]:
    """One row per primary comparison of a pre-trained condition (B) with a group without pre-training (A)."""
    by_name = {g["name"]: g for g in groups}
    rows = []
    for c in comparisons:
        if c["family"] != "primary" or c["kind"] != "test":
            continue
        a, b = by_name[c["group_a"]], by_name[c["group_b"]]
        pretraining = _mean((b.get("time") or {}).get("pretraining_full"))
        if not pretraining or _mean((a.get("time") or {}).get("pretraining_full")):
            continue
        curve_a = (((a.get("curves") or {}).get(pattern) or {}).get(metric) or {}).get("mean") or []
        curve_b = (((b.get("curves") or {}).get(pattern) or {}).get(metric) or {}).get("mean") or []
        if not curve_a or not curve_b or curve_a[-1] is None:
            continue
        epochs_a, target = len(curve_a), float(curve_a[-1])
        epoch_a, epoch_b = _epoch_seconds(a, len(curve_a)), _epoch_seconds(b, len(curve_b))
        reached = first_epoch_reaching(curve_b, target, higher_is_better)
        row: dict[str, Any] = {
            "group_a": a["name"],
            "group_b": b["name"],
            "n": c["n"],
            "mean_diff": c["mean_diff"],
            "p_holm": c["p_holm"],
            "significant": c["p_holm"] is not None and c["p_holm"] < alpha,
            "better": (c["mean_diff"] > 0) == higher_is_better,
            "pretraining_seconds": pretraining,
            "pretraining_shared_seconds": _mean((b.get("time") or {}).get("pretraining_amortised")),
            "baseline_epochs": epochs_a,
            "baseline_final": target,
            "epoch_seconds_a": epoch_a,
            "epoch_seconds_b": epoch_b,
            "epochs_to_match": reached,
            "epochs_saved": None,
            "time_to_match_a": None,
            "time_to_match_b": None,
            "net_seconds": None,
            "break_even_runs": None,
            "seeds_needed": (c.get("seeds_needed") or {}).get("seeds"),
        }
        if reached is not None and epoch_a is not None and epoch_b is not None:
            row["epochs_saved"] = epochs_a - reached
            row["time_to_match_a"] = epochs_a * epoch_a
            row["time_to_match_b"] = pretraining + reached * epoch_b
            row["net_seconds"] = row["time_to_match_a"] - row["time_to_match_b"]
            saved = epochs_a * epoch_a - reached * epoch_b  # fusion-training seconds saved per run
            if row["net_seconds"] < 0 and saved > 0:
                row["break_even_runs"] = math.ceil(pretraining / saved)
        rows.append(row)
    return rows


def recommendation(rows: Sequence[Mapping[str, Any]], higher_is_better: bool) -> dict[str, Any] | None:
    """The row the guide's recommendation is about: the best pre-trained condition by mean difference."""
    if not rows:
        return None
    sign = 1.0 if higher_is_better else -1.0
    return dict(max(rows, key=lambda r: sign * r["mean_diff"]))
