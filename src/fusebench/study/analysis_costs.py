"""What each compared pair costs in time: mean seconds per seed and the relative changes.

Time is described, never tested (:mod:`fusebench.study.analysis_compare`), so its
report numbers are plain arithmetic on the groups' mean times; they live apart from the
tests so that the changes the report states ("total cost +128%") have one definition.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fusebench.study.analysis_pairs import Pair

COST_KEYS = (
    "training",
    "total",
    "pretraining_full",
    "pretraining_amortised",
    "total_with_pretraining",
    "total_with_pretraining_amortised",
)


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
            row["pretraining_amortised_a"] or 0.0
        )
        row["pretraining_added_pct_of_a_total"] = _change(
            (row["total_with_pretraining_a"] or 0.0) + added, row["total_with_pretraining_a"]
        )
        row["total_change_pct_full"] = _change(row["total_with_pretraining_b"], row["total_with_pretraining_a"])
        row["total_change_pct_amortised"] = _change(
            row["total_with_pretraining_amortised_b"], row["total_with_pretraining_amortised_a"]
        )
        rows.append(row)
    return rows
