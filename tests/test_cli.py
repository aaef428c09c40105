"""The command line as a user meets it: flags, dotted overrides, readable errors, re-evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from tests._helpers.runs import tiny_raw
from typer.testing import CliRunner

from fusebench.cli import app

runner = CliRunner()


def _write(tmp_path: Path, raw: dict, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw))
    return path


def test_dry_run_prints_resolved_config_and_model_without_training(tmp_path: Path) -> None:
    config = _write(tmp_path, tiny_raw(tmp_path / "runs"))
    result = runner.invoke(app, ["train", str(config), "--dry-run", "training.epochs=7"])
    assert result.exit_code == 0, result.output
    assert "epochs: 7" in result.output
    assert "MultimodalModel" in result.output and "parameters:" in result.output
    assert not (tmp_path / "runs").exists()


def test_unknown_key_is_one_paragraph_with_a_suggestion(tmp_path: Path) -> None:
    config = _write(tmp_path, tiny_raw(tmp_path / "runs"))
    result = runner.invoke(app, ["train", str(config), "training.epoch=3"])
    assert result.exit_code == 2
    assert "unknown key `training.epoch`" in result.output and "training.epochs" in result.output
    assert "Traceback" not in result.output


def test_pretrain_refuses_a_multimodal_config(tmp_path: Path) -> None:
    config = _write(tmp_path, tiny_raw(tmp_path / "runs"))
    result = runner.invoke(app, ["pretrain", str(config)])
    assert result.exit_code == 2 and "has no `pretrain:` section" in result.output


def test_train_with_run_id_then_evaluate_gives_the_same_numbers(tmp_path: Path) -> None:
    config = _write(tmp_path, tiny_raw(tmp_path / "runs", name="cli"))
    result = runner.invoke(app, ["train", str(config), "--run-id", "7", "training.epochs=1", "--disable-monitoring"])
    assert result.exit_code == 0, result.output
    run_dir = tmp_path / "runs" / "cli" / "7"
    first = json.loads((run_dir / "test_metrics.json").read_text())
    timing = json.loads((run_dir / "timing.json").read_text())
    env = (run_dir / "env.json").read_text()
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["monitoring"]["enabled"] is False
    again = runner.invoke(app, ["evaluate", str(run_dir)])
    assert again.exit_code == 0, again.output
    assert json.loads((run_dir / "test_metrics.json").read_text()) == first
    again_timing = json.loads((run_dir / "timing.json").read_text())
    assert again_timing["training"] == timing["training"] > 0 and again_timing["epochs"] == 1  # training cost kept
    assert (run_dir / "env.json").read_text() == env and (run_dir / "env.evaluate.json").is_file()
    assert "audio+image" in again.output


def test_skip_train_without_a_trained_run_is_an_error_and_writes_nothing(tmp_path: Path) -> None:
    config = _write(tmp_path, tiny_raw(tmp_path / "runs", name="skip"))
    result = runner.invoke(app, ["train", str(config), "--run-id", "1", "--skip-train"])
    assert result.exit_code == 2 and "only a run whose training completed can be evaluated" in result.output
    assert "status.json` does not exist" in result.output
    assert not (tmp_path / "runs" / "skip" / "1").exists()
