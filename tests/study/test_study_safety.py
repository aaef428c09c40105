"""A study folder survives what users do to it: moving, copying, re-evaluating, changing the spec, wrong flags."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from rich.console import Console
from tests._helpers.snapshots import folder_digest
from tests.study.test_spec import write_spec
from typer.testing import CliRunner

from fusebench.cli import app
from fusebench.config import ConfigError
from fusebench.io import read_json
from fusebench.study.execute import run_study

CONDITIONS = {"scratch": {}, "pretrained": {"pretrained": ["image"]}}
runner = CliRunner()


def _quiet() -> Console:
    return Console(file=io.StringIO(), width=200)


def _output(console: Console) -> str:
    return console.file.getvalue()  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A finished tiny study (1 seed: one image pre-training, scratch, pretrained): spec and folder."""
    root = tmp_path_factory.mktemp("finished")
    spec = write_spec(root, name="safe", seeds=[0], conditions=CONDITIONS)
    return spec, run_study(spec, study_root=root / "studies", console=_quiet())


def _runs(study_dir: Path) -> dict[str, dict[str, str]]:
    return {d.name: folder_digest(d) for d in sorted((study_dir / "runs").iterdir())}


@pytest.mark.parametrize("how", ["move", "copy"])
def test_a_moved_or_copied_study_resumes_without_rerunning(
    finished: tuple[Path, Path], tmp_path: Path, how: str
) -> None:
    spec, original = finished
    source = tmp_path / "before" / "safe"
    shutil.copytree(original, source)
    before = _runs(source)
    target = tmp_path / "after" / "safe"
    target.parent.mkdir()
    if how == "move":
        shutil.move(source, target)
    else:
        shutil.copytree(source, target)
    console = _quiet()
    run_study(spec, resume=True, study_root=target.parent, console=console)
    assert "3 already complete, 0 to run" in _output(console)
    assert _runs(target) == before
    assert read_json(target / "results.json")["progress"]["completed"] == 3
    evaluated = runner.invoke(app, ["evaluate", str(target / "runs" / "pretrained-s0")])  # its encoder file moved
    assert evaluated.exit_code == 0, evaluated.output


def test_resume_without_a_study_is_an_error(finished: tuple[Path, Path], tmp_path: Path) -> None:
    spec, _ = finished
    with pytest.raises(ConfigError, match=r"Nothing to resume: .* holds no study"):
        run_study(spec, resume=True, study_root=tmp_path / "elsewhere", console=_quiet())
    assert not (tmp_path / "elsewhere" / "safe").exists()
    result = runner.invoke(app, ["study", str(spec), "--root", str(tmp_path / "elsewhere"), "--resume"])
    assert result.exit_code == 2 and "Nothing to resume" in result.output


def test_a_failed_re_evaluation_does_not_make_resume_retrain(finished: tuple[Path, Path], tmp_path: Path) -> None:
    spec, original = finished
    study_dir = tmp_path / "safe"
    shutil.copytree(original, study_dir)
    run_dir = study_dir / "runs" / "scratch-s0"
    (run_dir / "checkpoints" / "best.ckpt").write_bytes(b"\x00" * 64)  # corrupted after training
    result = runner.invoke(app, ["evaluate", str(run_dir)])
    assert result.exit_code == 2 and "is truncated or not a PyTorch checkpoint" in result.output, result.output
    assert read_json(run_dir / "status.json")["state"] == "completed"
    assert read_json(run_dir / "evaluation.json")["state"] == "failed"
    before = _runs(study_dir)
    console = _quiet()
    run_study(spec, resume=True, study_root=tmp_path, console=console)
    assert "3 already complete, 0 to run" in _output(console) and _runs(study_dir) == before


def test_a_completed_run_whose_config_changed_is_moved_aside_not_deleted(
    finished: tuple[Path, Path], tmp_path: Path
) -> None:
    spec, original = finished
    study_dir = tmp_path / "safe"
    shutil.copytree(original, study_dir)
    old = folder_digest(study_dir / "runs" / "scratch-s0")
    changed = write_spec(
        tmp_path,
        name="safe",
        seeds=[0],
        conditions={**CONDITIONS, "scratch": {"overrides": ["training.optimizer.lr=0.002"]}},
    )
    console = _quiet()
    run_study(changed, resume=True, study_root=tmp_path, console=console)
    assert "2 already complete, 1 to run" in _output(console) and "superseded:" in _output(console)
    assert folder_digest(study_dir / "superseded" / "scratch-s0-1") == old
    assert read_json(study_dir / "runs" / "scratch-s0" / "status.json")["state"] == "completed"


def test_a_study_root_that_is_a_file_is_one_error(finished: tuple[Path, Path], tmp_path: Path) -> None:
    spec, _ = finished
    (tmp_path / "root").write_text("a file")
    result = runner.invoke(app, ["study", str(spec), "--root", str(tmp_path / "root")])
    assert result.exit_code == 2 and "`--root` needs" in result.output and "is a file" in result.output


def test_the_report_renders_when_a_whole_condition_and_a_pre_training_failed(tmp_path: Path) -> None:
    from tests.study.test_spec import TINY

    from fusebench.study.report import render_report

    pretrain = {
        "configs": {"image": TINY["pretrain"]["configs"]["image"]},
        "overrides": ["training.epochs=1", "training.optimizer.lr=1e30"],
    }  # diverges at run time
    conditions = {
        "scratch": {},
        "broken": {"overrides": ["training.optimizer.lr=1e30"]},
        "pretrained": {"pretrained": ["image"]},
    }
    spec = write_spec(tmp_path, name="partial", seeds=[0], pretrain=pretrain, conditions=conditions)
    study_dir = run_study(spec, study_root=tmp_path / "studies", console=_quiet())
    html, markdown = render_report(study_dir)
    text = markdown.read_text()
    assert "- **pre-training image:** 0 of 1 nodes completed\n" in text
    assert "| broken | no completed run |" in text and "| pretrained | no completed run |" in text
    for node in ("broken-s0", "pretrained-s0"):
        assert f"| {node} |" in text and node in html.read_text()
    assert "3 of 4 runs did not complete" in text


def test_an_unreachable_ray_address_fails_in_seconds(finished: tuple[Path, Path], tmp_path: Path) -> None:
    import os
    import socket
    import subprocess
    import sys

    pytest.importorskip("ray")
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    spec, _ = finished
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "fusebench",
            "study",
            str(spec),
            "--root",
            str(tmp_path),
            "--backend",
            "ray",
            "--address",
            f"127.0.0.1:{port}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(root / "src")},
    )  # it used to hang
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"Could not reach the Ray cluster at `--address 127.0.0.1:{port}`" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


def test_an_address_that_does_not_answer_times_out(tmp_path: Path) -> None:
    from fusebench.study.ray_backend import check_reachable

    with pytest.raises(ConfigError, match=r"Could not reach the Ray cluster at `--address 192\.0\.2\.1:6379`"):
        check_reachable("192.0.2.1:6379", timeout=0.5)  # TEST-NET-1 (RFC 5737): never routed
    with pytest.raises(ConfigError, match=r"Expected `--address` as `auto`, `host:port`"):
        check_reachable("no-port-here")
