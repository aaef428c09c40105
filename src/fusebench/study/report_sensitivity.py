"""The report's "Hyperparameter sensitivity" section: tables and sentences from ``analysis["sensitivity"]``.

Every number comes from :func:`fusebench.study.sensitivity.sensitivity_analysis`; this
module only formats it and says in words which condition is more sensitive and how sure
that is (the paired comparison of per-seed spreads).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fusebench.study.report_text import DASH, interval, mean_std, num, pvalue, signed
from fusebench.study.spec_models import format_value


def _cell_name(cell: Mapping[str, Any] | None) -> str:
    return DASH if not cell else ", ".join(f"{k}={format_value(v)}" for k, v in cell.items())


def surface_rows(slice_: Mapping[str, Any]) -> list[list[str]]:
    """One row per condition: grid size, best and worst cell, the spreads and the noise level."""
    rows = []
    for s in slice_["surfaces"]:
        spread, noise = s["spread_of_means"], s["noise"]
        per_seed = s["per_seed_spread"]["summary"]
        rows.append(
            [
                s["condition"],
                str(s["cells_with_values"]),
                str(len(s["complete_seeds"])),
                f"{_cell_name(s['best_cell'])} ({num(s['best_mean'])})",
                f"{_cell_name(s['worst_cell'])} ({num(s['worst_mean'])})",
                f"{num(spread['std'])} {interval(spread['bootstrap_low'], spread['bootstrap_high'])}",
                num(spread["range"]),
                f"{mean_std(per_seed)} {interval((per_seed or {}).get('ci_low'), (per_seed or {}).get('ci_high'))}",
                num(noise["within_cell_std"]),
                num(noise["flat_surface_spread"]),
            ]
        )
    return rows


SURFACE_HEADER = [
    "condition",
    "cells",
    "seeds in every cell",
    "best cell (mean)",
    "worst cell (mean)",
    "std of cell means [bootstrap 95%]",
    "range of cell means",
    "per-seed spread [t 95% CI]",
    "noise: within-cell std",
    "noise: flat-surface spread",
]
COMPARISON_HEADER = [
    "reference",
    "compared",
    "n",
    "per-seed spread ref.",
    "per-seed spread comp.",
    "difference",
    "95% CI (paired t)",
    "p (t-test)",
    "p (Wilcoxon)",
    "note",
]


def comparison_rows(slice_: Mapping[str, Any]) -> list[list[str]]:
    return [
        [
            c["reference"],
            c["compared"],
            str(c["n"]),
            num(c["mean_reference"]),
            num(c["mean_compared"]),
            signed(c["mean_diff"]),
            interval(c["ci_low"], c["ci_high"]),
            pvalue(c["p_ttest"]),
            pvalue(c["p_wilcoxon"]),
            c["note"] or "",
        ]
        for c in slice_["comparisons"]
    ]


def sentences(slice_: Mapping[str, Any]) -> list[str]:
    """Which condition is more sensitive, and how sure that is."""
    lines = []
    spreads = ", ".join(f"{s['condition']} {num(s['spread_of_means']['std'])}" for s in slice_["surfaces"])
    if slice_.get("most_sensitive"):
        lines.append(
            f"Largest spread of the cell means (std over the grid of each cell's mean over seeds): "
            f"{slice_['most_sensitive']} ({spreads})."
        )
    for c in slice_["comparisons"]:
        low, high, diff = c["ci_low"], c["ci_high"], c["mean_diff"]
        more, less = (c["compared"], c["reference"]) if diff > 0 else (c["reference"], c["compared"])
        if low is not None and high is not None and (low > 0 or high < 0):
            lines.append(
                f"{more} is more sensitive than {less} to these hyperparameters: its per-seed spread across "
                f"the grid is larger by {num(abs(diff))} (95% CI of {c['compared']} − {c['reference']}: "
                f"{interval(low, high)}; paired t-test p = {pvalue(c['p_ttest'])}, n = {c['n']} seeds)."
            )
        else:
            lines.append(
                f"The per-seed spreads of {c['compared']} and {c['reference']} do not differ detectably "
                f"(difference {signed(diff)}, 95% CI {interval(low, high)} includes 0; paired t-test p = "
                f"{pvalue(c['p_ttest'])}, n = {c['n']} seeds): this grid does not show either to be more "
                "sensitive."
            )
    floors = [
        s
        for s in slice_["surfaces"]
        if s["noise"]["flat_surface_spread"] is not None and s["spread_of_means"]["std"] is not None
    ]
    flat = [s["condition"] for s in floors if s["spread_of_means"]["std"] <= 2 * s["noise"]["flat_surface_spread"]]
    if flat:
        lines.append(
            f"For {', '.join(flat)} the spread of the cell means is within twice what seed noise alone "
            "would give on a flat surface, so its surface may be flat."
        )
    return lines


def sensitivity_context(analysis: Mapping[str, Any], images: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One entry per slice: title, figure, tables and sentences (empty when the study names no sensitivity axes)."""
    slices: Sequence[Mapping[str, Any]] = analysis.get("sensitivity") or []
    out = []
    for index, slice_ in enumerate(slices):
        fixed = ", ".join(f"{k}={format_value(v)}" for k, v in slice_["fixed"].items())
        out.append(
            {
                "title": f"{' × '.join(slice_['axes'])}" + (f" at {fixed}" if fixed else ""),
                "figure": images.get(f"sensitivity_{index}"),
                "surface_header": SURFACE_HEADER,
                "surface_rows": surface_rows(slice_),
                "comparison_header": COMPARISON_HEADER,
                "comparison_rows": comparison_rows(slice_),
                "sentences": sentences(slice_),
                "metric": slice_["metric"],
                "pattern": slice_["pattern"],
            }
        )
    return out
