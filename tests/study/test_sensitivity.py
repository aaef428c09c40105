"""Hyperparameter sensitivity: surfaces, spreads, the paired comparison and the report's sentences.

The groups have the shape ``analyse`` gives them (``condition``, ``axes``, ``per_seed``); the
values are chosen so every statistic can be worked out by hand or with numpy/scipy.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

from fusebench.errors import ResultsError
from fusebench.study.plots_sensitivity import surface_heatmaps
from fusebench.study.report_sensitivity import comparison_rows, sentences, surface_rows
from fusebench.study.sensitivity import sensitivity_analysis

PATTERN = "audio+image"
AXES = {"lr": [0.001, 0.003], "batch_size": [32, 128]}
CELLS = list(itertools.product(AXES["lr"], AXES["batch_size"]))
#: scratch: a steep surface, each seed offset by 0.1 in every cell; cell means 0.6, 0.7, 0.8, 0.9
STEEP = {cell: [0.5 + 0.1 * i + 0.1 * s for s in range(3)] for i, cell in enumerate(CELLS)}
#: pretrained: nearly flat, seed-specific wiggles
FLAT = {
    CELLS[0]: [0.70, 0.68, 0.75],
    CELLS[1]: [0.72, 0.70, 0.75],
    CELLS[2]: [0.70, 0.71, 0.74],
    CELLS[3]: [0.72, 0.69, 0.76],
}


def _groups(
    surfaces: dict[str, dict[tuple[float, int], list[float]]], extra: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    return [
        {
            "name": f"{condition}|lr={lr}|batch_size={batch}",
            "condition": condition,
            "axes": {"lr": lr, "batch_size": batch, **(extra or {})},
            "per_seed": [{"seed": s, "test": {PATTERN: v}} for s, v in enumerate(values)],
        }
        for condition, cells in surfaces.items()
        for (lr, batch), values in cells.items()
    ]


@pytest.fixture
def analysed() -> dict[str, Any]:
    result = sensitivity_analysis(
        _groups({"scratch": STEEP, "pretrained": FLAT}),
        AXES,
        ["lr", "batch_size"],
        ["scratch", "pretrained"],
        "scratch",
        "accuracy",
        PATTERN,
        True,
    )
    assert result is not None and len(result) == 1
    return result[0]


def test_surface_spreads_by_hand(analysed: dict[str, Any]) -> None:
    steep, flat = analysed["surfaces"]
    assert [c["summary"]["mean"] for c in steep["cells"]] == pytest.approx([0.6, 0.7, 0.8, 0.9])
    expected_std = math.sqrt((0.15**2 + 0.05**2) * 2 / 3)  # sample std of 0.6, 0.7, 0.8, 0.9 = 0.1291
    spread = steep["spread_of_means"]
    assert spread["std"] == pytest.approx(expected_std) and spread["range"] == pytest.approx(0.3)
    # every seed adds the same offset to every cell, so each resample has the same spread of means
    assert spread["bootstrap_low"] == pytest.approx(expected_std) and spread["bootstrap_high"] == pytest.approx(
        expected_std
    )
    assert steep["per_seed_spread"]["per_seed"] == {str(s): pytest.approx(expected_std) for s in range(3)}
    assert steep["noise"]["within_cell_std"] == pytest.approx(0.1)  # 0.1 apart within each cell
    assert steep["noise"]["flat_surface_spread"] == pytest.approx(0.1 / math.sqrt(3))
    assert steep["best_cell"] == {"lr": 0.003, "batch_size": 128} and steep["worst_cell"] == {
        "lr": 0.001,
        "batch_size": 32,
    }
    means = [np.mean(v) for v in FLAT.values()]
    assert flat["spread_of_means"]["std"] == pytest.approx(np.std(means, ddof=1))
    assert analysed["most_sensitive"] == "scratch"


def test_paired_comparison_of_per_seed_spreads_matches_scipy(analysed: dict[str, Any]) -> None:
    flat_spreads = [np.std([FLAT[c][s] for c in CELLS], ddof=1) for s in range(3)]
    steep_spreads = [np.std([STEEP[c][s] for c in CELLS], ddof=1) for s in range(3)]
    (comparison,) = analysed["comparisons"]
    assert comparison["reference"] == "scratch" and comparison["compared"] == "pretrained" and comparison["n"] == 3
    diffs = np.subtract(flat_spreads, steep_spreads)
    assert comparison["mean_diff"] == pytest.approx(diffs.mean())
    assert comparison["p_ttest"] == pytest.approx(stats.ttest_rel(flat_spreads, steep_spreads).pvalue)
    half = stats.t.ppf(0.975, 2) * diffs.std(ddof=1) / math.sqrt(3)
    assert (comparison["ci_low"], comparison["ci_high"]) == pytest.approx((diffs.mean() - half, diffs.mean() + half))


def test_sentences_name_the_more_sensitive_condition(analysed: dict[str, Any]) -> None:
    lines = sentences(analysed)
    assert lines[0].startswith("Largest spread of the cell means") and "scratch" in lines[0]
    assert "scratch is more sensitive than pretrained" in lines[1] and "n = 3 seeds" in lines[1]
    assert surface_rows(analysed)[0][:3] == ["scratch", "4", "3"]
    assert comparison_rows(analysed)[0][:3] == ["scratch", "pretrained", "3"]


def test_no_detectable_difference_is_said_so() -> None:
    noisy = {c: [v + 0.02 * ((i + s) % 2) for s, v in enumerate(values)] for i, (c, values) in enumerate(FLAT.items())}
    result = sensitivity_analysis(
        _groups({"a": FLAT, "b": noisy}), AXES, ["lr", "batch_size"], ["a", "b"], "a", "accuracy", PATTERN, True
    )
    assert result is not None
    assert any("do not differ detectably" in line for line in sentences(result[0]))


def test_other_axes_make_slices_and_missing_cells_are_counted() -> None:
    groups = [*_groups({"scratch": STEEP}, {"fusion": "concat"}), *_groups({"scratch": FLAT}, {"fusion": "sum"})]
    groups = [
        g
        for g in groups
        if not (g["axes"]["fusion"] == "sum" and g["axes"]["lr"] == 0.003 and g["axes"]["batch_size"] == 128)
    ]
    axes = {**AXES, "fusion": ["concat", "sum"]}
    result = sensitivity_analysis(groups, axes, ["lr", "batch_size"], ["scratch"], "scratch", "accuracy", PATTERN, True)
    assert result is not None and [s["fixed"] for s in result] == [{"fusion": "concat"}, {"fusion": "sum"}]
    missing = result[1]["surfaces"][0]
    assert missing["cells_with_values"] == 3 and missing["complete_seeds"] == []
    assert missing["per_seed_spread"]["summary"] is None and result[1]["comparisons"] == []


def test_no_sensitivity_axes_means_no_section_and_unknown_axes_are_refused() -> None:
    assert sensitivity_analysis([], AXES, None, ["a"], "a", "accuracy", PATTERN, True) is None
    with pytest.raises(ResultsError, match=r"names axes \['momentum'\]"):
        sensitivity_analysis([], AXES, ["momentum"], ["a"], "a", "accuracy", PATTERN, True)


def test_heatmap_figure(analysed: dict[str, Any], tmp_path: Path) -> None:
    path = surface_heatmaps(analysed, tmp_path / "sensitivity.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    first = path.read_bytes()
    assert surface_heatmaps(analysed, tmp_path / "again.png").read_bytes() == first  # deterministic
