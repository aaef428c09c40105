"""The shipped pretrain_vs_scratch spec runs unchanged on another dataset's config (`--base`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests._helpers.folder_data import user_config, write_folder
from typer.testing import CliRunner

from fusebench.cli import app

SPEC = Path(__file__).resolve().parents[2] / "configs" / "studies" / "pretrain_vs_scratch.yaml"


@pytest.mark.slow
def test_the_demo_spec_runs_on_a_three_modality_regression_dataset(tmp_path: Path) -> None:
    data = write_folder(
        tmp_path / "data", "regression", {"train": 201, "validation": 61, "test": 81}, seed=3, variable=("series",)
    )
    base = user_config(data, "late_fusion.yaml", tmp_path / "late_fusion.yaml", tmp_path / "runs")
    result = CliRunner().invoke(
        app,
        [
            "study",
            str(SPEC),
            "--base",
            str(base),
            "--name",
            "folder_pretraining",
            "--root",
            str(tmp_path / "studies"),
            "--set",
            "seeds=[0]",
            "--set",
            "analysis.threshold=null",
            "--set",
            "overrides=[training.epochs=1]",
            "--set",
            "pretrain.overrides=[training.epochs=1]",
            "--set",
            "shared_overrides=[monitoring.enabled=false]",
        ],
    )
    assert result.exit_code == 0, result.output
    study = tmp_path / "studies" / "folder_pretraining"
    results = json.loads((study / "results.json").read_text())
    assert results["conditions"] == ["scratch", "pretrained", "image_scratch", "sensor_scratch", "series_scratch"]
    pretraining = sorted(r["modality"] for r in results["runs"] if r["kind"] == "pretrain")
    assert pretraining == ["image", "sensor", "series"]  # each encoder pre-trained from the base config itself
    assert all(r["status"] == "completed" for r in results["runs"]), [r.get("error") for r in results["runs"]]
    fusion = [r for r in results["runs"] if r["kind"] == "fusion"]
    assert all(len(r["test"]) == 7 for r in fusion)  # 2^3 - 1 patterns
    assert results["analysis"]["primary_metric"] == "mae"
    assert "mae" in (study / "report.md").read_text()
