"""Which groups a study compares: condition pairs at equal axis values, and axis values.

A group is one condition at one combination of axis values. Pairs are chosen here from
the groups' conditions and axis values and the spec's settings, never from a measured
number (the post-hoc best vs runner-up is chosen in :mod:`fusebench.study.analysis_verdict`
and flagged as such); :mod:`fusebench.study.analysis_compare` then tests each pair.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fusebench.study.spec_models import format_value

Pair = tuple[str, str]


def axes_key(axes: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """A group's axis values as a sorted, hashable key (groups at the same axis values are compared)."""
    return tuple((k, format_value(axes[k])) for k in sorted(axes))


def comparison_pairs(
    groups: Sequence[Mapping[str, Any]],
    conditions: Sequence[str],
    axes: Mapping[str, Sequence[Any]],
    baseline: str,
    requested: Sequence[Sequence[str]] | None,
) -> list[Pair]:
    """``(reference group, compared group)`` pairs, in report order.

    Conditions are compared at equal axis values: the requested condition pairs, or else
    every condition against ``baseline``. In a study with axes each axis value is also
    compared with the axis' first value, within a condition and at equal other axes.
    """
    index = {(g["condition"], axes_key(g["axes"])): g["name"] for g in groups}
    combos = list(dict.fromkeys(axes_key(g["axes"]) for g in groups))
    condition_pairs = (
        [tuple(p) for p in requested] if requested else [(baseline, c) for c in conditions if c != baseline]
    )
    pairs = [(index.get((a, combo), ""), index.get((b, combo), "")) for a, b in condition_pairs for combo in combos]
    pairs += _axis_pairs(groups, conditions, axes)
    return list(dict.fromkeys(p for p in pairs if all(p)))


def _axis_pairs(
    groups: Sequence[Mapping[str, Any]], conditions: Sequence[str], axes: Mapping[str, Sequence[Any]]
) -> list[Pair]:
    """Each axis value against the axis' first value, within a condition and at equal other axes."""
    index = {(g["condition"], axes_key(g["axes"])): g["name"] for g in groups}
    pairs = []
    for condition in conditions:
        for axis, values in axes.items():
            for group in groups:
                combo = dict(group["axes"])
                if (
                    group["condition"] == condition
                    and axis in combo
                    and format_value(combo[axis]) != format_value(values[0])
                ):
                    reference = index.get((condition, axes_key({**combo, axis: values[0]})), "")
                    pairs.append((reference, group["name"]))
    return [p for p in pairs if all(p)]


def primary_pairs(
    groups: Sequence[Mapping[str, Any]],
    conditions: Sequence[str],
    axes: Mapping[str, Sequence[Any]],
    condition_pairs: Sequence[Sequence[str]],
) -> list[Pair]:
    """Group pairs of the primary family: the primary condition pairs at every axis combination.

    A study with a single condition has no condition pair; its primary comparisons are
    each axis value against the axis' first value.
    """
    if len(conditions) < 2 or not condition_pairs:
        return list(dict.fromkeys(_axis_pairs(groups, conditions, axes)))
    index = {(g["condition"], axes_key(g["axes"])): g["name"] for g in groups}
    combos = list(dict.fromkeys(axes_key(g["axes"]) for g in groups))
    pairs = [(index.get((a, combo), ""), index.get((b, combo), "")) for a, b in condition_pairs for combo in combos]
    return list(dict.fromkeys(p for p in pairs if all(p)))
