"""The thesis' reporting: per-run definitions by hand, then the group summaries and report tables of a real study."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests._helpers.study_results import PATTERNS, analysis_of, copy_study, results_of, study

from fusebench.study.report import render_report
from fusebench.study.thesis import baseline_run, best_and_last, efficiency, percent_change

FULL = "audio+image"


def test_percent_change_efficiency_and_best_vs_last_by_hand() -> None:
    # thesis Sec. 7.2: MM-IMDB F1_samples IT 0.5632 (scratch) -> 0.5878 (pre-trained) is +4.37%
    assert percent_change(0.5878, 0.5632) == pytest.approx(100 * 0.0246 / 0.5632)
    assert percent_change(0.5, 0.0) is None and percent_change(None, 0.5) is None
    assert efficiency(0.819, 271.9) == pytest.approx(0.819 / 271.9) and efficiency(0.8, 0.0) is None
    assert best_and_last([0.5, 0.8, 0.8, 0.7], higher_is_better=True) == pytest.approx(
        {"best_epoch": 2, "best": 0.8, "last_epoch": 4, "last": 0.7, "gap": -0.1}
    )  # ties: the earliest epoch
    assert best_and_last([0.9, 0.4, None, 0.6], higher_is_better=False) == pytest.approx(
        {"best_epoch": 2, "best": 0.4, "last_epoch": 4, "last": 0.6, "gap": 0.2}
    )
    assert best_and_last([], True) is None


def test_baseline_run_is_the_same_seed_and_axes_of_the_baseline_condition() -> None:
    runs = [
        {"node": f"{c}-s{s}", "kind": "fusion", "condition": c, "seed": s, "axes": {"f": f}, "status": "completed"}
        for c in ("scratch", "pre")
        for s in (0, 1)
        for f in ("a", "b")
    ]
    run = runs[-1]  # pre, seed 1, f = b
    assert baseline_run(run, runs, "scratch") == runs[3]
    assert baseline_run(runs[0], runs, "scratch") is None  # the baseline itself


def _group(analysis: dict[str, Any], name: str) -> dict[str, Any]:
    return next(g for g in analysis["groups"] if g["name"] == name)


def _done(name: str) -> list[dict[str, Any]]:
    runs = [r for r in results_of("pretrain")["runs"] if r.get("group") == name and r["status"] == "completed"]
    return sorted(runs, key=lambda r: r["seed"])


@pytest.mark.parametrize("name", ["pretrained", "frozen"])
def test_change_vs_baseline_is_the_change_of_the_means(name: str) -> None:
    analysis = analysis_of("pretrain")
    change = _group(analysis, name)["change_vs_baseline"]
    assert change["reference"] == "scratch"
    for pattern in PATTERNS:
        ours = np.mean([r["test"][pattern]["accuracy"] for r in _done(name)])
        theirs = np.mean([r["test"][pattern]["accuracy"] for r in _done("scratch")])
        assert change["patterns"][pattern] == pytest.approx(100 * (ours - theirs) / theirs)
    assert _group(analysis, "scratch")["change_vs_baseline"] == {"reference": None, "patterns": {}}


@pytest.mark.parametrize("name", ["scratch", "pretrained"])
def test_efficiency_best_vs_last_and_resources_summaries(name: str) -> None:
    analysis, runs = analysis_of("pretrain"), _done(name)
    g = _group(analysis, name)
    expected = [r["test"][FULL]["accuracy"] / r["timing"]["training"] for r in runs]
    assert g["efficiency"][FULL]["mean"] == pytest.approx(np.mean(expected)) and g["efficiency"][FULL]["n"] == 3
    curves = [r["curves"]["validation"][FULL]["accuracy"] for r in runs]
    assert g["best_vs_last"][FULL]["best"]["mean"] == pytest.approx(np.mean([max(c) for c in curves]))
    assert g["best_vs_last"][FULL]["last"]["mean"] == pytest.approx(np.mean([c[-1] for c in curves]))
    assert g["best_vs_last"][FULL]["best_epoch"]["mean"] == pytest.approx(
        np.mean([int(np.argmax(c)) + 1 for c in curves])
    )
    resources = [json.loads((study("pretrain") / r["run_dir"] / "resources.json").read_text()) for r in runs]
    for key in ("weights_bytes", "peak_rss_bytes", "inference_samples_per_second"):
        assert g["resources"][key]["mean"] == pytest.approx(np.mean([res[key] for res in resources]))
    assert g["resources"]["peak_cuda_bytes"] is None and g["peak_rss_scope"] == ["run"]


def test_report_has_the_thesis_tables_and_a_monitoring_figure_per_run(tmp_path: Path) -> None:
    study_dir = copy_study("pretrain", tmp_path)
    render_report(study_dir)
    analysis = json.loads((study_dir / "analysis.json").read_text())
    completed = [r for r in results_of("pretrain")["runs"] if r["status"] == "completed"]
    assert [m["node"] for m in analysis["monitoring_runs"]] == [r["node"] for r in completed]
    for run in completed:
        assert (study_dir / "figures" / f"monitoring_{run['node']}.png").stat().st_size > 1000
    markdown = (study_dir / "report.md").read_text()
    change = _group(analysis, "pretrained")["change_vs_baseline"]["patterns"]
    cells = " | ".join(f"{change[p]:+.1f}%" for p in PATTERNS)
    assert f"| pretrained | 3 | scratch | {cells} |" in markdown
    scaled = _group(analysis, "scratch")["efficiency"][FULL]
    assert f"| scratch | 3 | {1000 * scaled['mean']:.3f} ± {1000 * scaled['std']:.3f} |" in markdown
    html = (study_dir / "report.html").read_text()
    assert html.count('alt="monitoring ') == len(completed) and "## Training dynamics" in markdown
    assert not math.isnan(scaled["mean"])
