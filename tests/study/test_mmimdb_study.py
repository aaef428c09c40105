"""A tiny `fusebench study` on MM-IMDB's shipped configs: the report speaks of a multilabel metric."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from safetensors.torch import load_file
from tests._helpers.mmimdb_files import split_sizes_override, write_hdf5
from typer.testing import CliRunner

from fusebench.cli import app
from fusebench.tasks import Task

pytest.importorskip("h5py", reason="MM-IMDB needs the `mmimdb` extra (h5py)")

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "mmimdb"


@pytest.mark.slow
def test_pretrain_vs_scratch_study_reports_f1_samples_as_higher_is_better(tmp_path: Path) -> None:
    write_hdf5(tmp_path / "data" / "multimodal_imdb.hdf5")
    spec = {
        "study": {
            "name": "mmimdb_tiny",
            "question": "Does a pre-trained text encoder help on MM-IMDB?",
            "base": str(CONFIGS / "late_fusion.yaml"),
            "overrides": ["training.epochs=3"],
            "pretrain": {"configs": {"text": str(CONFIGS / "pretrain_text.yaml")}, "overrides": ["training.epochs=2"]},
            "shared_overrides": [
                f"data.root={tmp_path / 'data'}",
                split_sizes_override(),
                "data.batch_size=32",
                "logging.progress_bar=false",
            ],
            "seeds": [0, 1],
            "threads_per_run": 1,
            "conditions": {"scratch": {}, "pretrained": {"pretrained": ["text"]}},
            "analysis": {"primary_metric": "f1_samples", "threshold": 0.3, "baseline": "scratch"},
        }
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(spec))
    result = CliRunner().invoke(app, ["study", str(path), "--root", str(tmp_path / "studies"), "--workers", "1"])
    assert result.exit_code == 0, result.output
    study = tmp_path / "studies" / "mmimdb_tiny"
    analysis = json.loads((study / "analysis.json").read_text())
    assert analysis["primary_metric"] == "f1_samples" and analysis["higher_is_better"] is True
    assert analysis["patterns"] == ["image+text", "image", "text"]
    report = (study / "report.md").read_text()
    assert "primary metric f1_samples (higher is better)" in report
    assert "## Headline: test f1_samples" in report and "| scratch |" in report and "| pretrained |" in report
    assert "epochs to f1_samples ≥ 0.3" in report  # a threshold reached upwards, as for any higher-is-better metric
    assert "accuracy" not in report
    # Shapley's empty set is the per-label-majority predictor's f1_samples, fitted on the run's training genres
    run = next(r for r in json.loads((study / "results.json").read_text())["runs"] if r["node"] == "scratch-s0")
    tensors = load_file(study / run["run_dir"] / "test_logits.safetensors")  # run_dir is relative to the study
    chance = Task("multilabel", 23).constant_score(tensors["constant"], tensors["target"], "f1_samples")
    assert f"seed 0: {chance:.4f}" in report
