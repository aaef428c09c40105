"""Fault injection: `train` and `study` killed at random points by SIGKILL, SIGTERM or SIGINT.

After every kill no process of the command is left, every run that had completed is
byte-identical after ``--resume``, and the resumed study has exactly the numbers of an
uninterrupted one. The kill points are drawn from a seeded generator (reproducible), at a
random number of finished runs plus a random delay, so kills land in start-up, data
loading, training and result writing alike.
"""

from __future__ import annotations

import io
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console
from tests._helpers.processes import MARKER, as_from_a_terminal, kill_marked, wait_until_gone
from tests._helpers.runs import tiny_raw
from tests._helpers.snapshots import folder_digest
from tests.study.test_spec import write_spec
from typer.testing import CliRunner

from fusebench.cli import app
from fusebench.engine.run_folder import live_state
from fusebench.io import read_json
from fusebench.study.execute import run_study

ROOT = Path(__file__).resolve().parents[1]
CONDITIONS = {"scratch": {}, "pretrained": {"pretrained": ["image"]}}
SIGNALS = [signal.SIGKILL, signal.SIGTERM, signal.SIGINT]
runner = CliRunner()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")]


def _env(marker: str) -> dict[str, str]:
    return {**os.environ, MARKER: marker, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}


def numbers(results: dict[str, Any]) -> dict[str, Any]:
    """What an interruption must not change: status, test metrics, learning curves and model per node."""
    return {r["node"]: (r["status"], r["test"], r["curves"], r["model"]) for r in results["runs"]}


def _completed_runs(runs: Path) -> dict[str, dict[str, str]]:
    if not runs.is_dir():
        return {}
    return {d.name: folder_digest(d) for d in sorted(runs.iterdir()) if live_state(d) == "completed"}


def _kill_at_random_point(
    command: list[str], runs: Path, sig: signal.Signals, rng: random.Random, finished_runs: int, delay: float
) -> tuple[int, str]:
    """Start ``command``; once a random number (up to ``finished_runs``) of runs completed and a random part
    of ``delay`` seconds passed, send ``sig``. Its return code and output."""
    marker = uuid.uuid4().hex
    wanted, delay = rng.randint(0, finished_runs), rng.uniform(0.0, delay)
    process = subprocess.Popen(
        command,
        env=_env(marker),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=as_from_a_terminal,
    )
    try:
        deadline = time.monotonic() + 120
        while len(_completed_runs(runs)) < wanted and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(delay)
        if process.poll() is None:
            process.send_signal(sig)
        output, _ = process.communicate(timeout=120)
        assert wait_until_gone(marker) == [], f"processes left after {sig.name}"  # no orphan worker
    finally:
        process.kill()
        kill_marked(marker)
    return process.returncode, output


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The tiny study (1 seed, 3 nodes, 1 epoch) run uninterrupted: its spec and numbers."""
    root = tmp_path_factory.mktemp("uninterrupted")
    spec = write_spec(root, name="faults", seeds=[0], conditions=CONDITIONS)
    study_dir = run_study(spec, study_root=root / "studies", console=Console(file=io.StringIO()))
    return spec, numbers(read_json(study_dir / "results.json"))


@pytest.mark.parametrize("sig", SIGNALS, ids=[s.name for s in SIGNALS])
def test_a_killed_study_leaves_no_process_and_resumes_to_the_same_numbers(
    reference: tuple[Path, dict[str, Any]], tmp_path: Path, sig: signal.Signals
) -> None:
    spec, expected = reference
    rng = random.Random(f"study-{sig.name}")
    root = tmp_path / "studies"
    command = [sys.executable, "-m", "fusebench", "study", str(spec), "--root", str(root), "--workers", "2"]
    code, output = _kill_at_random_point(command, root / "faults" / "runs", sig, rng, finished_runs=2, delay=4.0)
    assert "Traceback" not in output, output
    if sig is signal.SIGKILL:
        assert code in (-signal.SIGKILL, 0), output
    else:  # the same clean stop for SIGTERM as for Ctrl-C (or it had finished)
        assert code in (130, 0), output
        assert code == 0 or "interrupted:" in output, output
    before = _completed_runs(root / "faults" / "runs")
    console = Console(file=io.StringIO(), width=200)
    study_dir = run_study(spec, resume=True, study_root=root, console=console)  # in-process: same numbers
    after = _completed_runs(study_dir / "runs")
    assert {name: after[name] for name in before} == before  # finished runs were not touched
    assert numbers(read_json(study_dir / "results.json")) == expected


def test_a_killed_train_leaves_nothing_running_and_no_completed_run_changes(tmp_path: Path) -> None:
    raw = tiny_raw(tmp_path / "runs", name="faults")
    raw["training"]["epochs"] = 3
    config = tmp_path / "faults.yaml"
    config.write_text(yaml.safe_dump(raw))
    runs = tmp_path / "runs" / "faults"
    done = runner.invoke(app, ["train", str(config), "--run-id", "done", "training.epochs=1", "--disable-monitoring"])
    assert done.exit_code == 0, done.output
    finished = folder_digest(runs / "done")
    train = [sys.executable, "-m", "fusebench", "train", str(config), "--disable-monitoring"]
    for sig in SIGNALS:
        run_id = f"killed-{sig.name}"
        # `done` is the one completed run already: the kill lands anywhere in the first 10 s (start-up to results)
        code, output = _kill_at_random_point(
            [*train, "--run-id", run_id], runs, sig, random.Random(run_id), finished_runs=0, delay=10.0
        )
        assert "Traceback" not in output, output
        state = live_state(runs / run_id) if (runs / run_id).exists() else "missing"
        if code == 0:
            assert state == "completed"
        else:
            assert state in ("interrupted", "missing"), (sig, state, output)  # never `completed` or `running`
            if sig is not signal.SIGKILL and (runs / run_id / "status.json").is_file():
                assert read_json(runs / run_id / "status.json")["state"] == "interrupted"
        assert folder_digest(runs / "done") == finished
    again = runner.invoke(
        app,
        [
            "train",
            str(config),
            "--run-id",
            "killed-SIGKILL",
            "--overwrite",
            "--disable-monitoring",
            "training.epochs=1",
        ],
    )
    assert again.exit_code == 0 and live_state(runs / "killed-SIGKILL") == "completed", again.output
