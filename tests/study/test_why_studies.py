"""The shipped "why did it help?" studies end to end at a tiny size: sensitivity grid, and transfer across tasks
(with `fusebench analyze --study` and the report sections)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from fusebench.cli import app

ROOT = Path(__file__).resolve().parents[2]
STUDIES = ROOT / "configs" / "studies"


def tiny_base(folder: Path) -> Path:
    """configs/avdigits/demo.yaml on 240 training pairs of the AV-digits subset, 1 epoch, no monitoring."""
    raw = yaml.safe_load((ROOT / "configs" / "avdigits" / "demo.yaml").read_text())
    raw["data"].update(
        {"recipe": {"subset": 1200}, "limit": {"train": 240, "validation": 100, "test": 200}, "batch_size": 32}
    )
    raw["training"]["epochs"] = 1
    raw["monitoring"] = {"enabled": False}
    path = folder / "tiny_demo.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.slow
def test_sensitivity_study_reports_the_surface_per_condition(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "study",
            str(STUDIES / "hyperparameter_sensitivity.yaml"),
            "--base",
            str(tiny_base(tmp_path)),
            "--name",
            "sensitivity",
            "--root",
            str(tmp_path / "studies"),
            "--set",
            "seeds=[0, 1]",
            "--set",
            "axes.lr.values=[0.001, 0.01]",
            "--set",
            "axes.batch_size.values=[16, 64]",
        ],
    )
    assert result.exit_code == 0, result.output
    study = tmp_path / "studies" / "sensitivity"
    analysis = json.loads((study / "analysis.json").read_text())
    (slice_,) = analysis["sensitivity"]
    assert slice_["axes"] == ["lr", "batch_size"] and [s["condition"] for s in slice_["surfaces"]] == [
        "scratch",
        "pretrained",
    ]
    for surface in slice_["surfaces"]:
        assert [c["summary"]["n"] for c in surface["cells"]] == [2, 2, 2, 2]
        group = next(
            g
            for g in analysis["groups"]
            if g["condition"] == surface["condition"] and g["axes"] == {"lr": 0.01, "batch_size": 16}
        )
        cell = next(c for c in surface["cells"] if c["axes"] == {"lr": 0.01, "batch_size": 16})
        assert cell["summary"]["mean"] == pytest.approx(group["test"]["audio+image"]["accuracy"]["mean"])
    (comparison,) = slice_["comparisons"]
    assert comparison["n"] == 2 and comparison["reference"] == "scratch"
    report = (study / "report.md").read_text()
    assert "## Hyperparameter sensitivity: lr × batch_size" in report
    assert (study / "figures" / "sensitivity_0.png").is_file()


@pytest.mark.slow
def test_transfer_study_pretrains_on_speakers_and_analyze_compares_the_encoders(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "study",
            str(STUDIES / "transfer_speakers.yaml"),
            "--base",
            str(tiny_base(tmp_path)),
            "--name",
            "transfer",
            "--root",
            str(tmp_path / "studies"),
            "--set",
            "seeds=[0, 1]",
            "--set",
            "shared_overrides=[training.epochs=1, 'data.limit={train: 240, validation: 100, test: 200}']",
        ],
    )
    assert result.exit_code == 0, result.output
    study = tmp_path / "studies" / "transfer"
    results = json.loads((study / "results.json").read_text())
    assert all(r["status"] == "completed" for r in results["runs"]), [r["error"] for r in results["runs"]]
    datasets = {}
    for run in results["runs"]:
        config = yaml.safe_load((study / run["run_dir"] / "config.yaml").read_text())
        datasets[run["node"]] = config["data"]["dataset"]
    related = next(r for r in results["runs"] if r["node"] == "related_task-s0")
    assert [datasets[d] for d in related["depends_on"]] == ["fsdd_speakers"]
    task = next(r for r in results["runs"] if r["node"] == "task_specific-s0")
    assert [datasets[d] for d in task["depends_on"]] == ["avdigits"]
    assert "pre-training audio (fsdd_speakers):" in (study / "report.md").read_text()

    analyzed = runner.invoke(
        app, ["analyze", "--study", str(study), "--projection", "pca", "--max-points", "100", "--no-probes"]
    )  # probes over seeds: tests/study/test_analysis_representations.py
    assert analyzed.exit_code == 0, analyzed.output
    payload = json.loads((study / "representations" / "representations.json").read_text())
    rows = {(r["modality"], r["condition"], r["comparison"]): r["summary"]["n"] for r in payload["cka_summary"]}
    assert rows[("audio", "related_task", "pre-trained file vs fine-tuned")] == 2
    assert rows[("audio", "task_specific", "pre-trained file vs scratch (trained)")] == 2
    assert payload["probe_summary"] == [] and "linear CKA over seeds (test embeddings)" in analyzed.output
    reported = runner.invoke(app, ["report", str(study)])
    assert reported.exit_code == 0, reported.output
    assert "## Representations: what pre-training changed in the encoders" in (study / "report.md").read_text()
