"""Paired comparisons between groups: which quantities, the tests, and their Holm families.

Two groups are compared seed by seed, on the seeds where both runs completed (a failed
seed drops out of that comparison, and ``n`` says how many pairs are left). The tests
form two Holm families: the *primary* comparisons the study spec names (by default each
condition vs the baseline on the test primary metric of the primary pattern), and every
other test (other patterns, first epoch, epochs to threshold, a post-hoc best vs
runner-up) as *secondary*. Wall time is positive by construction, so it is not a
hypothesis: it is described (means, ratio, interval) and never counted as a finding.
Which groups are paired is :mod:`fusebench.study.analysis_pairs`; the time each pair
costs, as the report states it, is :mod:`fusebench.study.analysis_costs`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from fusebench.study.analysis_groups import test_value, time_parts, validation_curve
from fusebench.study.analysis_pairs import Pair
from fusebench.study.curves import epochs_to_threshold
from fusebench.study.records import RunRecord
from fusebench.study.stats import PairedComparison, comparison_table, holm_adjust, paired_comparison

FAMILIES = ("primary", "secondary", "descriptive")


def quantities(
    patterns: Sequence[str],
    metric: str,
    full: str,
    pretraining: bool = True,
    *,
    higher_is_better: bool = True,
    threshold: float | None = None,
) -> list[dict[str, Any]]:
    """What each pair is compared on: the primary metric per pattern, first epoch, epochs to
    threshold (when the study sets one) and total time.

    ``test`` says which test a row gets: ``"t"`` (paired t-test), ``"wilcoxon"`` (the
    signed-rank test, for epochs to threshold: censored runs rank above every run that
    reached it, which no mean-based test can honour) or ``None`` (described only: time).
    Total time includes the full cost of the pre-trained encoders a run used (zero for
    runs from scratch), since that is what a condition costs per seed.
    """
    rows = [
        {
            "kind": "test",
            "pattern": p,
            "metric": metric,
            "label": f"test {metric} ({p})",
            "higher_is_better": higher_is_better,
            "test": "t",
        }
        for p in patterns
    ]
    rows.append(
        {
            "kind": "first_epoch",
            "pattern": full,
            "metric": metric,
            "label": f"first-epoch validation {metric} ({full})",
            "higher_is_better": higher_is_better,
            "test": "t",
        }
    )
    if threshold is not None:
        sign = "≥" if higher_is_better else "≤"
        rows.append(
            {
                "kind": "epochs_to_threshold",
                "pattern": full,
                "metric": metric,
                "threshold": threshold,
                "label": f"epochs to validation {metric} {sign} {threshold:g} ({full})",
                "higher_is_better": False,
                "test": "wilcoxon",
            }
        )
    rows.append(
        {
            "kind": "time",
            "pattern": None,
            "metric": "total_with_pretraining",
            "label": "total time incl. pre-training (s)" if pretraining else "total time (s)",
            "higher_is_better": False,
            "test": None,
        }
    )
    return rows


def _epochs(run: RunRecord, quantity: Mapping[str, Any]) -> tuple[float, int, bool] | None:
    """``(epochs or max + 1 if censored, max epochs, censored)`` of one run."""
    curve = validation_curve(run, quantity["pattern"], quantity["metric"])
    if not curve:
        return None
    result = epochs_to_threshold(curve, quantity["threshold"], higher_is_better=quantity["metric_higher"])
    value = result.max_epochs + 1 if result.epochs is None else result.epochs
    return float(value), result.max_epochs, result.censored


def _value(run: RunRecord, quantity: Mapping[str, Any], modalities: Sequence[str]) -> float | None:
    if quantity["kind"] == "test":
        return test_value(run, quantity["pattern"], quantity["metric"])
    if quantity["kind"] == "first_epoch":
        curve = validation_curve(run, quantity["pattern"], quantity["metric"])
        return curve[0] if curve and curve[0] == curve[0] else None
    if quantity["kind"] == "epochs_to_threshold":
        epochs = _epochs(run, quantity)
        return None if epochs is None else epochs[0]
    return time_parts(run, modalities).get(quantity["metric"])


def family_of(pair: Pair, quantity: Mapping[str, Any], primary: Sequence[Pair], primary_pattern: str) -> str:
    """``primary``, ``secondary`` or ``descriptive`` (time) for one pair on one quantity."""
    if quantity["test"] is None:
        return "descriptive"
    is_primary_quantity = quantity["kind"] == "test" and quantity["pattern"] == primary_pattern
    return "primary" if is_primary_quantity and pair in primary else "secondary"


def _paired(
    pair: Pair, quantity: Mapping[str, Any], runs_by_group: Mapping[str, Sequence[RunRecord]], modalities: Sequence[str]
) -> tuple[dict[str, Any], str | None]:
    """The seeds and values both groups completed, and why they cannot be compared (if so)."""
    a, b = pair
    done_a = {r.seed: r for r in runs_by_group[a] if r.completed}
    done_b = {r.seed: r for r in runs_by_group[b] if r.completed}
    seeds, values_a, values_b, lengths, censored = [], [], [], set(), [0, 0]
    for seed in sorted(set(done_a) & set(done_b)):
        va, vb = _value(done_a[seed], quantity, modalities), _value(done_b[seed], quantity, modalities)
        if va is None or vb is None:
            continue
        seeds.append(seed)
        values_a.append(va)
        values_b.append(vb)
        if quantity["kind"] == "epochs_to_threshold":
            for side, run in enumerate((done_a[seed], done_b[seed])):
                _, length, was_censored = _epochs(run, quantity) or (0.0, 0, False)
                lengths.add(length)
                censored[side] += was_censored
    record = {
        **{k: v for k, v in quantity.items() if k != "metric_higher"},
        "group_a": a,
        "group_b": b,
        "seeds": seeds,
        "values_a": values_a,
        "values_b": values_b,
    }
    if quantity["kind"] == "epochs_to_threshold":
        record.update(censored_a=censored[0], censored_b=censored[1], censored_as=max(lengths, default=0) + 1)
    if len(seeds) < 2:
        return record, f"only {len(seeds)} seed(s) completed in both groups; a paired test needs at least 2"
    if len(lengths) > 1:
        return record, (
            f"runs lasted different numbers of epochs ({sorted(lengths)}), so censored runs cannot be ranked"
        )
    return record, None


def _descriptive(result: PairedComparison) -> PairedComparison:
    """Time: keep means, difference and interval; drop every p-value (not a hypothesis)."""
    nan = math.nan
    return replace(
        result,
        t_statistic=nan,
        p_ttest=nan,
        p_wilcoxon=nan,
        p_holm=nan,
        p_holm_source="",
        wilcoxon_floor=nan,
        note="described, not tested: time is positive by construction",
    )


def compare_groups(
    pairs: Sequence[Pair],
    runs_by_group: Mapping[str, Sequence[RunRecord]],
    rows: Sequence[Mapping[str, Any]],
    modalities: Sequence[str],
    confidence: float = 0.95,
    *,
    primary: Sequence[Pair] = (),
    primary_pattern: str | None = None,
    post_hoc: Sequence[Pair] = (),
    interval: str = "t",
    metric_higher: bool = True,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Paired comparisons, Holm-adjusted per family, and the ones that could not be made.

    Args:
        pairs: ``(reference, compared)`` group pairs, each compared on every row.
        runs_by_group: group name -> its runs.
        rows: the quantities (:func:`quantities`).
        modalities: the study's modalities (for the time split).
        confidence: level of every interval.
        primary: the pairs whose primary-pattern test metric forms the primary family.
        primary_pattern: the pattern of the primary quantity (default: the first test row's).
        post_hoc: extra pairs compared on the primary quantity only, chosen after seeing
            the data (best vs runner-up): secondary, and flagged ``post_hoc``.
        interval: ``"t"``, ``"bca"`` or ``"auto"`` (:mod:`fusebench.study.intervals`).
        metric_higher: direction of the primary metric (for epochs to threshold).

    Returns:
        ``(comparisons, not_compared)``: each comparison holds the quantity, ``family``,
        ``post_hoc``, both group names, the paired seeds and their values, every field of
        :class:`~fusebench.study.stats.PairedComparison`, and ``ratio`` (mean B / mean A);
        each entry of ``not_compared`` says why it could not be made.
    """
    pattern = primary_pattern or next((r["pattern"] for r in rows if r["kind"] == "test"), None)
    primary_row = next((r for r in rows if r["kind"] == "test" and r["pattern"] == pattern), None)
    jobs = [(p, q, False) for p in pairs for q in rows]
    jobs += [(p, primary_row, True) for p in post_hoc if primary_row is not None and p not in pairs]
    made: list[tuple[dict[str, Any], PairedComparison]] = []
    skipped: list[dict[str, Any]] = []
    for pair, quantity, chosen_later in jobs:
        record, reason = _paired(pair, {**quantity, "metric_higher": metric_higher}, runs_by_group, modalities)
        family = "secondary" if chosen_later else family_of(pair, quantity, primary, pattern or "")
        record.update(family=family, post_hoc=chosen_later)
        if reason is not None:
            skipped.append({**record, "n": len(record["seeds"]), "reason": reason})
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # degenerate-data warnings become the record's `note`
            result = paired_comparison(
                record["values_a"],
                record["values_b"],
                metric=quantity["metric"],
                condition_a=pair[0],
                condition_b=pair[1],
                confidence=confidence,
                interval="t" if family == "descriptive" else interval,  # type: ignore[arg-type]
            )
        if family == "descriptive":
            result = _descriptive(result)
        elif quantity["kind"] == "epochs_to_threshold" and record["censored_a"] + record["censored_b"]:
            result = replace(
                result,
                ci_low=math.nan,
                ci_high=math.nan,
                note="; ".join(
                    filter(
                        None,
                        [
                            f"censored runs (never reached the threshold) count as {record['censored_as']} epochs, "
                            "so the mean difference is a bound and no interval is given; the signed-rank test "
                            "ranks them correctly",
                            *(n for n in result.note.split("; ") if not n.startswith("interval is a point")),
                        ],
                    )
                ),
            )
        made.append((record, result))
    adjusted: list[PairedComparison | None] = [None] * len(made)
    for family in ("primary", "secondary"):
        members = [i for i, (record, _) in enumerate(made) if record["family"] == family]
        fields = ["p_wilcoxon" if made[i][0]["test"] == "wilcoxon" else "p_ttest" for i in members]
        for i, result in zip(members, holm_adjust([made[i][1] for i in members], fields), strict=True):  # type: ignore[arg-type]
            adjusted[i] = result
    comparisons = []
    for (record, result), final in zip(made, adjusted, strict=True):
        row = comparison_table([final or result])[0]
        row["ratio"] = row["mean_b"] / row["mean_a"] if row["mean_a"] else math.nan
        comparisons.append({**record, **row})
    return comparisons, skipped


def family_sizes(comparisons: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Tests per Holm family (those with a defined p-value), and the number of described rows."""
    sizes = {f: 0 for f in FAMILIES}
    for c in comparisons:
        if c["family"] == "descriptive":
            sizes["descriptive"] += 1
        elif c.get("p_holm") is not None and c["p_holm"] == c["p_holm"]:
            sizes[c["family"]] += 1
    return sizes
