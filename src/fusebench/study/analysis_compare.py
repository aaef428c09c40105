"""Paired comparisons between groups: which pairs, which quantities, one Holm family.

Two groups are compared seed by seed, on the seeds where both runs completed (a failed
seed drops out of that comparison, and ``n`` says how many pairs are left). Every
comparison in one report forms a single Holm family, so adding a comparison makes all
the others more conservative rather than letting the reader cherry-pick.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from fusebench.study.analysis_groups import completed, test_value, time_parts, validation_curve
from fusebench.study.stats import comparison_table, holm_adjust, paired_comparison
from fusebench.tasks import higher_is_better

Pair = tuple[str, str]


def value_label(value: Any) -> str:
    """How an axis value reads in group names: ``0.1``, ``gated``, ``true``."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def axes_key(axes: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple((k, value_label(axes[k])) for k in sorted(axes))


def comparison_pairs(groups: Sequence[Mapping[str, Any]], conditions: Sequence[str], axes: Mapping[str, Sequence[Any]],
                     baseline: str, requested: Sequence[Sequence[str]] | None) -> list[Pair]:
    """``(reference group, compared group)`` pairs, in report order.

    Conditions are compared at equal axis values: the requested condition pairs, or else
    every condition against ``baseline``. In a study with axes each axis value is also
    compared with the axis' first value, within a condition and at equal other axes.
    """
    index = {(g["condition"], axes_key(g["axes"])): g["name"] for g in groups}
    combos: list[dict[str, Any]] = []
    for group in groups:
        if group["axes"] not in combos:
            combos.append(dict(group["axes"]))
    condition_pairs = [tuple(p) for p in requested] if requested else [(baseline, c) for c in conditions
                                                                      if c != baseline]
    pairs: list[Pair] = []
    for (a, b), combo in ((p, c) for p in condition_pairs for c in combos):
        pairs.append((index.get((a, axes_key(combo)), ""), index.get((b, axes_key(combo)), "")))
    for condition in conditions:
        for axis, values in axes.items():
            for combo in combos:
                if axis in combo and value_label(combo[axis]) != value_label(values[0]):
                    reference = {**combo, axis: values[0]}
                    pairs.append((index.get((condition, axes_key(reference)), ""),
                                  index.get((condition, axes_key(combo)), "")))
    unique: list[Pair] = []
    for pair in pairs:
        if all(pair) and pair not in unique:
            unique.append(pair)
    return unique


def quantities(patterns: Sequence[str], metric: str, full: str, pretraining: bool = True) -> list[dict[str, Any]]:
    """What each pair is compared on: the primary metric per pattern, first epoch, total time.

    Total time includes the full cost of the pre-trained encoders a run used (zero for
    runs from scratch), since that is what a condition costs per seed.
    """
    higher = higher_is_better(metric)
    rows = [{"kind": "test", "pattern": p, "metric": metric, "label": f"test {metric} ({p})",
             "higher_is_better": higher} for p in patterns]
    rows.append({"kind": "first_epoch", "pattern": full, "metric": metric,
                 "label": f"first-epoch validation {metric} ({full})", "higher_is_better": higher})
    rows.append({"kind": "time", "pattern": None, "metric": "total_with_pretraining",
                 "label": "total time incl. pre-training (s)" if pretraining else "total time (s)",
                 "higher_is_better": False})
    return rows


def _value(run: Mapping[str, Any], quantity: Mapping[str, Any], modalities: Sequence[str]) -> float | None:
    if quantity["kind"] == "test":
        return test_value(run, quantity["pattern"], quantity["metric"])
    if quantity["kind"] == "first_epoch":
        curve = validation_curve(run, quantity["pattern"], quantity["metric"])
        return curve[0] if curve and curve[0] == curve[0] else None
    return time_parts(run, modalities).get(quantity["metric"])


def compare_groups(pairs: Sequence[Pair], runs_by_group: Mapping[str, Sequence[Mapping[str, Any]]],
                   rows: Sequence[Mapping[str, Any]], modalities: Sequence[str],
                   confidence: float = 0.95) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Paired comparisons (Holm-adjusted as one family) and the ones that could not be made.

    Returns:
        ``(comparisons, not_compared)``: each comparison holds the quantity, both group
        names, the paired seeds and their values, and every field of
        :class:`~fusebench.study.stats.PairedComparison`; each entry of ``not_compared``
        says why (fewer than two complete seed pairs).
    """
    made: list[tuple[dict[str, Any], Any]] = []
    skipped: list[dict[str, Any]] = []
    for a, b in pairs:
        done_a = {r["seed"]: r for r in runs_by_group[a] if completed(r)}
        done_b = {r["seed"]: r for r in runs_by_group[b] if completed(r)}
        for quantity in rows:
            seeds, values_a, values_b = [], [], []
            for seed in sorted(set(done_a) & set(done_b)):
                va, vb = _value(done_a[seed], quantity, modalities), _value(done_b[seed], quantity, modalities)
                if va is not None and vb is not None:
                    seeds.append(seed)
                    values_a.append(va)
                    values_b.append(vb)
            record = {**quantity, "group_a": a, "group_b": b, "seeds": seeds, "values_a": values_a,
                      "values_b": values_b}
            if len(seeds) < 2:
                skipped.append({**record, "n": len(seeds), "reason": f"only {len(seeds)} seed(s) completed in "
                                f"both groups; a paired test needs at least 2"})
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # degenerate-data warnings become the record's `note`
                result = paired_comparison(values_a, values_b, metric=quantity["metric"], condition_a=a,
                                           condition_b=b, confidence=confidence)
            made.append((record, result))
    adjusted = holm_adjust([result for _, result in made]) if made else []
    comparisons = [{**record, **row} for (record, _), row in zip(made, comparison_table(adjusted), strict=True)]
    return comparisons, skipped


COST_KEYS = ("training", "total", "pretraining_full", "pretraining_amortised", "total_with_pretraining",
             "total_with_pretraining_amortised")


def _change(new: float | None, old: float | None) -> float | None:
    return None if new is None or not old else 100.0 * (new - old) / old


def cost_changes(pairs: Sequence[Pair], groups: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Mean time per seed of each compared pair and the relative changes the report states.

    ``total_change_pct_full`` is the thesis' "total cost +128%": the compared group's
    main run plus the full cost of its pre-trained encoders, against the reference's.
    Means are over each group's own completed seeds (``n_a``, ``n_b``).
    """
    by_name = {g["name"]: g for g in groups}
    rows = []
    for a, b in pairs:
        row: dict[str, Any] = {"group_a": a, "group_b": b, "n_a": by_name[a]["n"], "n_b": by_name[b]["n"]}
        for key in COST_KEYS:
            for side, name in (("a", a), ("b", b)):
                row[f"{key}_{side}"] = ((by_name[name].get("time") or {}).get(key) or {}).get("mean")
        row["training_change_pct"] = _change(row["training_b"], row["training_a"])
        added = (row["pretraining_full_b"] or 0.0) - (row["pretraining_full_a"] or 0.0)
        row["pretraining_added_full"] = added
        row["pretraining_added_amortised"] = (row["pretraining_amortised_b"] or 0.0) - (
            row["pretraining_amortised_a"] or 0.0)
        row["pretraining_added_pct_of_a_total"] = _change(
            (row["total_with_pretraining_a"] or 0.0) + added, row["total_with_pretraining_a"])
        row["total_change_pct_full"] = _change(row["total_with_pretraining_b"], row["total_with_pretraining_a"])
        row["total_change_pct_amortised"] = _change(row["total_with_pretraining_amortised_b"],
                                                    row["total_with_pretraining_amortised_a"])
        rows.append(row)
    return rows
