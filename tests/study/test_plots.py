"""Every figure renders to a real, non-empty PNG from analysis.json data, degenerate groups included."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests._helpers.study_results import analysis_of, results_of, study

from fusebench.study import plots, plots_modality
from fusebench.study.analysis import analyse

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

FIGURES: list[tuple[str, Callable[[dict[str, Any], Path], Path]]] = [
    ("learning_curves", lambda a, p: plots.learning_curves(a["groups"], a["full_pattern"], "accuracy", p)),
    ("first_epoch", lambda a, p: plots.first_epoch_bars(a["groups"], "accuracy", p)),
    ("epochs_to_threshold", lambda a, p: plots.epochs_to_threshold_bars(a["groups"], "accuracy", p)),
    ("time", lambda a, p: plots.time_bars(a["groups"], a["modalities"], p)),
    ("pattern_heatmap", lambda a, p: plots.pattern_heatmap(a["groups"], a["patterns"], "accuracy", p)),
    ("mmpt", lambda a, p: plots_modality.mmpt_curves(a["groups"], a["modalities"], "accuracy", p)),
    ("shapley", lambda a, p: plots_modality.shapley_bars(a["groups"], a["modalities"], "accuracy", p)),
    ("tradeoff", lambda a, p: plots_modality.tradeoff_scatter(a["groups"], a["full_pattern"], "accuracy", p)),
]


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 5_000, f"{path} is not a real figure ({len(data)} bytes)"


@pytest.mark.parametrize(("name", "draw"), FIGURES, ids=[name for name, _ in FIGURES])
def test_figure_is_a_png(name: str, draw: Callable[[dict[str, Any], Path], Path], tmp_path: Path) -> None:
    path = draw(analysis_of("pretrain"), tmp_path / "sub" / f"{name}.png")
    assert path == tmp_path / "sub" / f"{name}.png"
    assert_png(path)


def test_ptrain_ptest_heatmap_is_a_png(tmp_path: Path) -> None:
    matrix = analysis_of("axes")["ptrain_ptest"][0]
    assert_png(plots_modality.ptrain_ptest_heatmap(matrix, "accuracy", tmp_path / "pp.png"))


def test_figures_survive_a_group_without_any_completed_run(tmp_path: Path) -> None:
    results = results_of("pretrain")
    for run in results["runs"]:
        if run["group"] == "frozen" and run["status"] == "completed":
            run.update(status="failed", error="RuntimeError: killed", test={}, timing={})
    analysis = analyse(results, study("pretrain"))
    frozen = analysis["groups"][-1]
    assert frozen["n"] == 0 and frozen["test"]["audio+image"]["accuracy"] is None
    for name, draw in FIGURES:
        assert_png(draw(analysis, tmp_path / f"{name}.png"))
