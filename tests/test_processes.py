"""Processes: pool workers die with a killed study, SIGTERM stops like Ctrl-C, Ctrl-C of a train says one line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml
from tests._helpers.processes import MARKER, alive, as_from_a_terminal, kill_marked, wait_until_gone
from tests._helpers.runs import tiny_raw

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def _env(marker: str) -> dict[str, str]:
    return {**os.environ, MARKER: marker, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}


def _wait_for(path: Path, patience: float = 60.0) -> None:
    deadline = time.monotonic() + patience
    while not path.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} did not appear within {patience} s")
        time.sleep(0.1)


PARENT = """
import sys
from fusebench.study.local_pool import _pool
from tests._helpers.processes import record_pid_and_sleep
pool = _pool(1)
pool.submit(record_pid_and_sleep, sys.argv[1], 300).result()
"""


def test_a_pool_worker_dies_when_the_study_process_is_killed(tmp_path: Path) -> None:
    marker = uuid.uuid4().hex
    pid_file = tmp_path / "worker.pid"
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(pid_file)], env=_env(marker), cwd=tmp_path)
    try:
        _wait_for(pid_file)
        worker = int(pid_file.read_text())
        assert alive(worker)
        parent.kill()  # kill -9: no chance to clean up
        parent.wait()
        assert wait_until_gone(marker) == []
    finally:
        parent.kill()
        kill_marked(marker)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_stopping_a_train_prints_one_line_and_marks_the_run_interrupted(tmp_path: Path, sig: signal.Signals) -> None:
    raw = tiny_raw(tmp_path / "runs", name="stop")
    raw["training"]["epochs"] = 200  # far longer than the test waits
    config = tmp_path / "stop.yaml"
    config.write_text(yaml.safe_dump(raw))
    run_dir = tmp_path / "runs" / "stop" / "1"
    train = subprocess.Popen(
        [sys.executable, "-m", "fusebench", "train", str(config), "--run-id", "1"],
        env=_env(uuid.uuid4().hex),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=as_from_a_terminal,
    )
    try:
        _wait_for(run_dir / "epoch_metrics.json")  # well inside the training loop
        train.send_signal(sig)
        output, _ = train.communicate(timeout=120)
    finally:
        train.kill()
    assert train.returncode == 130, output
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if line.strip()]
    assert lines == [f"interrupted: run `{run_dir}` marked interrupted; its files are kept."], output
    status = yaml.safe_load((run_dir / "status.json").read_text())
    assert status["state"] == "interrupted"
