"""``fusebench analyze --study`` on a real tiny study (scratch / pre-trained / frozen), and its report section."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests._helpers.study_results import copy_study

from fusebench.engine.analyze import analyze_runs
from fusebench.errors import DamagedFileError, RunFolderError
from fusebench.study.analysis_representations import analyze_study
from fusebench.study.report import render_report
from fusebench.study.report_representations import representation_context


@pytest.fixture(scope="module")
def analysed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    study = copy_study("pretrain", tmp_path_factory.mktemp("repr"))
    return study, analyze_study(study, methods=["pca"], max_points=100)


def _rows(result: dict[str, Any], key: str) -> dict[tuple[str, str, str], dict[str, Any]]:
    what = "comparison" if key == "cka_summary" else "stage"
    return {(r["modality"], r["condition"], r[what]): r for r in result[key]}


def test_per_seed_pairs_against_the_baseline(analysed: tuple[Path, dict[str, Any]]) -> None:
    study, result = analysed
    assert json.loads((study / "representations" / "representations.json").read_text()) == result
    assert result["baseline"] == "scratch" and result["cells"] == [
        {"axes": {}, "label": "all runs", "seeds": [0, 1, 2]}
    ]
    rows = _rows(result, "cka_summary")
    pretrained = rows[("audio", "pretrained", "pre-trained file vs fine-tuned")]
    assert pretrained["summary"]["n"] == 3 and set(pretrained["per_seed"]) == {"0", "1", "2"}
    assert 0.0 < pretrained["summary"]["mean"] < 1.0
    frozen = rows[("image", "frozen", "pre-trained file vs fine-tuned")]
    assert frozen["per_seed"] == {"0": pytest.approx(1.0, abs=1e-9)}  # only seed 0 of `frozen` completed
    assert {c for (_, _, c) in rows} == {
        "pre-trained file vs fine-tuned",
        "vs scratch (trained)",
        "pre-trained file vs scratch (trained)",
    }
    assert not any(condition == "scratch" for (_, condition, _) in rows)


def test_study_numbers_equal_the_per_run_analysis(analysed: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    """Seed 1 analysed on its own with `analyze_runs` gives the same CKA and probe values."""
    study, result = analysed
    single = analyze_runs(
        [study / "runs" / "scratch-s1", study / "runs" / "pretrained-s1"], tmp_path, methods=["pca"], max_points=100
    )
    pairs = {(p["a"], p["b"]): p["cka"] for p in single["cka"]}
    rows = _rows(result, "cka_summary")
    assert rows[("audio", "pretrained", "vs scratch (trained)")]["per_seed"]["1"] == pytest.approx(
        pairs[("scratch-s1/audio", "pretrained-s1/audio")], abs=1e-12
    )
    probes = _rows(result, "probe_summary")
    assert probes[("image", "pretrained", "pre-trained file")]["per_seed"]["1"] == pytest.approx(
        single["probes"]["pretrained-s1/image@pretrained"]["test"]["accuracy"], abs=1e-12
    )


def test_mean_matrices_and_figures(analysed: tuple[Path, dict[str, Any]]) -> None:
    study, result = analysed
    matrix = result["cka_matrices"]["all runs"]["audio"]
    assert matrix["labels"] == [
        "scratch (trained)",
        "pretrained (pre-trained file)",
        "pretrained (trained)",
        "frozen (pre-trained file)",
        "frozen (trained)",
    ]
    assert matrix["seeds"] == 1  # only seed 0 has every condition; seeds 1-2 have other views
    assert [row[i] for i, row in enumerate(matrix["matrix"])] == [1.0] * 5
    assert sorted(result["figures"]) == ["cka_audio", "cka_image", "projection_audio", "projection_image"]
    assert all((study / "representations" / "figures" / f["file"]).is_file() for f in result["figures"].values())


@pytest.mark.slow
def test_report_embeds_the_section(analysed: tuple[Path, dict[str, Any]]) -> None:
    study, result = analysed
    html, markdown = render_report(study)
    text = markdown.read_text()
    assert "## Representations: what pre-training changed in the encoders" in text
    assert "| audio | pretrained | pre-trained file vs fine-tuned | 3 |" in text
    assert "![projection_audio](representations/figures/projection_audio.png)" in text
    assert html.read_text().count("data:image/png;base64,") >= 4 + 4  # the report's own figures and these four


def test_no_section_without_the_analysis(tmp_path: Path) -> None:
    assert representation_context(tmp_path, embed=False) is None


def test_a_study_without_a_completed_baseline_run_is_refused(tmp_path: Path) -> None:
    study = copy_study("pretrain", tmp_path)
    results = json.loads((study / "results.json").read_text())
    for run in results["runs"]:
        if run.get("condition") == "scratch":
            run["status"] = "failed"
    (study / "results.json").write_text(json.dumps(results))
    with pytest.raises(RunFolderError, match="no completed run of its baseline condition `scratch`"):
        analyze_study(study, methods=["pca"], max_points=100)


def test_a_damaged_representations_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "representations").mkdir()
    (tmp_path / "representations" / "representations.json").write_text("[1, 2]")
    with pytest.raises(DamagedFileError, match="representations.json"):
        representation_context(tmp_path, embed=False)
