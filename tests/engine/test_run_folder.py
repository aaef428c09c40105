"""Run folders are never corrupted: one writer at a time, no mixing of runs, evaluation kept apart from training."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml
from tests._helpers.runs import tiny_raw
from tests._helpers.snapshots import folder_digest
from typer.testing import CliRunner

from fusebench.cli import app
from fusebench.engine.run_folder import LOCK_FILE, live_state, locked, write_status
from fusebench.io import atomic_write_text

runner = CliRunner()


def _config(tmp_path: Path, name: str = "guard", **changes: object) -> Path:
    raw = tiny_raw(tmp_path / "runs", name=name)
    raw["training"]["epochs"] = 1
    raw["monitoring"] = {"enabled": False}
    for key, value in changes.items():
        raw[key] = value
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One completed tiny run (1 epoch): its config file and its run folder, never modified by tests."""
    root = tmp_path_factory.mktemp("trained")
    config = _config(root)
    result = runner.invoke(app, ["train", str(config), "--run-id", "done"])
    assert result.exit_code == 0, result.output
    return config, root / "runs" / "guard" / "done"


def _copy(trained: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    """A private copy of the trained run, with a config whose `runs_dir` points at the copy."""
    config, run_dir = trained
    copy = tmp_path / "runs" / "guard" / "done"
    shutil.copytree(run_dir, copy)
    return _config(tmp_path), copy


def test_a_running_folder_is_refused_while_its_lock_is_held(tmp_path: Path) -> None:
    config = _config(tmp_path)
    run_dir = tmp_path / "runs" / "guard" / "busy"
    with locked(run_dir):  # another `train` with the same --run-id holds the folder
        result = runner.invoke(app, ["train", str(config), "--run-id", "busy"])
    assert result.exit_code == 2, result.output
    assert "is in use by another fusebench process" in result.output
    assert sorted(p.name for p in run_dir.iterdir()) == [LOCK_FILE]  # nothing of the second run was written


def test_a_completed_folder_is_refused_and_left_byte_identical(trained: tuple[Path, Path], tmp_path: Path) -> None:
    config, run_dir = _copy(trained, tmp_path)
    before = folder_digest(run_dir)
    for extra in ([], ["--skip-test"], ["training.epochs=2"]):
        result = runner.invoke(app, ["train", str(config), "--run-id", "done", *extra])
        assert result.exit_code == 2, result.output
        assert "already holds a completed run" in result.output and "--overwrite" in result.output
    assert folder_digest(run_dir) == before


def test_overwrite_clears_the_old_run_before_training(trained: tuple[Path, Path], tmp_path: Path) -> None:
    config, run_dir = _copy(trained, tmp_path)
    (run_dir / "checkpoints" / "epoch=7.ckpt").write_bytes(b"left over from an older run")
    atomic_write_text(run_dir / "notes.txt", "old")
    result = runner.invoke(
        app, ["train", str(config), "--run-id", "done", "--overwrite", "--skip-test", "training.epochs=2"]
    )
    assert result.exit_code == 0, result.output
    names = {p.name for p in run_dir.iterdir()}
    assert "notes.txt" not in names and "test_metrics.json" not in names  # old results are gone, none mixed in
    assert {p.name for p in (run_dir / "checkpoints").iterdir()} == {"best.ckpt", "last.ckpt"}
    assert len(json.loads((run_dir / "epoch_metrics.json").read_text())) == 2
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["training"]["epochs"] == 2


def test_an_interrupted_folder_is_refused_without_overwrite(tmp_path: Path) -> None:
    config = _config(tmp_path)
    run_dir = tmp_path / "runs" / "guard" / "killed"
    run_dir.mkdir(parents=True)
    write_status(run_dir, "running")  # a `train` that was killed -9: its lock died with it
    atomic_write_text(run_dir / "config.yaml", "half of a run")
    assert live_state(run_dir) == "interrupted"
    result = runner.invoke(app, ["train", str(config), "--run-id", "killed"])
    assert result.exit_code == 2 and "already holds an interrupted run" in result.output, result.output
    assert (run_dir / "config.yaml").read_text() == "half of a run"


def test_evaluate_refuses_an_unfinished_run_and_leaves_its_status(trained: tuple[Path, Path], tmp_path: Path) -> None:
    _, run_dir = _copy(trained, tmp_path)
    write_status(run_dir, "running")  # killed during training, with an older best.ckpt on disk
    status = (run_dir / "status.json").read_bytes()
    result = runner.invoke(app, ["evaluate", str(run_dir)])
    assert result.exit_code == 2, result.output
    assert "only a run whose training completed can be evaluated" in result.output
    assert "training is `interrupted`" in result.output
    assert (run_dir / "status.json").read_bytes() == status and not (run_dir / "evaluation.json").exists()


def test_a_failed_re_evaluation_keeps_the_completed_training(trained: tuple[Path, Path], tmp_path: Path) -> None:
    _, run_dir = _copy(trained, tmp_path)
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    config["data"]["root"] = str(tmp_path / "no_such_data")  # the data moved since training
    atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(config, sort_keys=False))
    status, metrics = (run_dir / "status.json").read_bytes(), (run_dir / "test_metrics.json").read_bytes()
    result = runner.invoke(app, ["evaluate", str(run_dir)])
    assert result.exit_code == 2 and "no_such_data" in result.output, result.output
    assert (run_dir / "status.json").read_bytes() == status  # still `completed`
    assert (run_dir / "test_metrics.json").read_bytes() == metrics
    evaluation = json.loads((run_dir / "evaluation.json").read_text())
    assert evaluation["state"] == "failed" and "no_such_data" in evaluation["error"]


def test_a_successful_re_evaluation_is_recorded_apart(trained: tuple[Path, Path], tmp_path: Path) -> None:
    _, run_dir = _copy(trained, tmp_path)
    status = (run_dir / "status.json").read_bytes()
    result = runner.invoke(app, ["evaluate", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert (run_dir / "status.json").read_bytes() == status
    assert json.loads((run_dir / "evaluation.json").read_text())["state"] == "completed"


@pytest.mark.parametrize("run_id", ["../escape", "a/b", "..", "."])
def test_run_ids_that_are_paths_are_refused(tmp_path: Path, run_id: str) -> None:
    config = _config(tmp_path)
    result = runner.invoke(app, ["train", str(config), "--run-id", run_id])
    assert result.exit_code == 2 and "Expected `--run-id` to be one folder name" in result.output, result.output
    assert not (tmp_path / "runs").exists() and not (tmp_path / "escape").exists()


def test_experiment_names_that_are_paths_are_refused(tmp_path: Path) -> None:
    config = _config(tmp_path)
    result = runner.invoke(app, ["train", str(config), "--run-id", "1", "experiment.name=../../outside"])
    assert result.exit_code == 2 and "Expected `experiment.name` to be one folder name" in result.output
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("below", [False, True], ids=["runs_dir-is-a-file", "runs_dir-below-a-file"])
def test_a_runs_dir_that_is_not_a_folder_is_one_error(tmp_path: Path, below: bool) -> None:
    (tmp_path / "file").write_text("not a folder")
    runs = tmp_path / "file" / "runs" if below else tmp_path / "file"
    result = runner.invoke(app, ["train", str(_config(tmp_path)), "--run-id", "1", f"experiment.runs_dir={runs}"])
    assert result.exit_code == 2, result.output
    assert "`experiment.runs_dir` needs" in result.output and "is a file" in result.output
    assert (tmp_path / "file").read_text() == "not a folder"


def test_result_files_get_the_users_umask(tmp_path: Path) -> None:
    previous = os.umask(0o027)
    try:
        atomic_write_text(tmp_path / "results.json", "{}")
    finally:
        os.umask(previous)
    assert (tmp_path / "results.json").stat().st_mode & 0o777 == 0o640
