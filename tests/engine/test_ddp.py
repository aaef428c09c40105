"""DDP on 2 CPU processes (gloo) trains exactly what one process trains with the same global batch.

The model has no BatchNorm (torch's SyncBatchNorm supports accelerators only, so on CPUs
each process would normalise its half of the batch by its own statistics) and no dropout
(each process draws its own masks): with those two, the processes' averaged gradients are
the one process's gradients, and every loss and metric agrees to float32 rounding. Stated
tolerance: 1e-5 on losses and metrics after 2 epochs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests._helpers.runs import tiny_raw

from fusebench.config import RunConfig, apply_overrides, validate_config
from fusebench.engine.run import execute_run

TOLERANCE = 1e-5
REPO = Path(__file__).resolve().parents[2]


def ddp_raw(tmp_path: Path) -> dict:
    raw = tiny_raw(tmp_path, name="ddp")
    raw["model"]["encoders"] = {m: {"kind": "mlp", "out_dim": 16, "hidden": [32]} for m in ("audio", "image")}
    raw["model"]["fusion"]["dropout"] = 0.0
    # 4 global batches of 64 (32 per process); 101 validation rows: blocks of 51 and 50, gathered back in order
    raw["data"].update(
        {"limit": {"train": 256, "validation": 101, "test": 100}, "eval_batch_size": 32, "missing_rate": {"audio": 0.3}}
    )
    raw["training"]["epochs"] = 2
    return raw


def ddp_config(tmp_path: Path, overrides: list[str]) -> RunConfig:
    return validate_config(apply_overrides(ddp_raw(tmp_path), overrides))


def assert_same_numbers(one: list[dict], two: list[dict]) -> None:
    assert len(one) == len(two) == 2
    for a, b in zip(one, two, strict=True):
        for split in ("train", "validation"):
            assert a[split]["loss"] == pytest.approx(b[split]["loss"], abs=TOLERANCE)
            patterns = set(a[split]) - {"loss", "timing"}
            assert patterns == set(b[split]) - {"loss", "timing"}
            for pattern in patterns:  # every pattern's metrics over all samples of both processes
                assert a[split][pattern]["count"] == b[split][pattern]["count"]
                for name, value in a[split][pattern].items():
                    assert value == pytest.approx(b[split][pattern][name], abs=TOLERANCE), (split, pattern, name)
        assert a["missingness"] == b["missingness"]


@pytest.mark.slow
def test_ddp_spawn_on_two_cpu_processes_matches_one_process(tmp_path: Path) -> None:
    one = execute_run(ddp_config(tmp_path, []), tmp_path / "one")
    two = execute_run(ddp_config(tmp_path, ["experiment.devices=2", "experiment.strategy=ddp_spawn"]), tmp_path / "two")
    assert_same_numbers(one.epoch_metrics, two.epoch_metrics)
    assert one.epoch_metrics[0]["validation"]["audio+image"]["count"] == 101  # both blocks, nothing twice
    assert (
        one.epoch_metrics[0]["train"]["image"]["count"] + one.epoch_metrics[0]["train"]["audio+image"]["count"] == 256
    )
    for pattern, metrics in one.test_metrics.items():
        for name, value in metrics.items():
            assert value == pytest.approx(two.test_metrics[pattern][name], abs=TOLERANCE)
    assert json.loads((tmp_path / "two" / "status.json").read_text())["state"] == "completed"
    assert len((tmp_path / "two" / "monitoring.jsonl").read_text().splitlines()) == 2  # written once per epoch


@pytest.mark.slow
def test_ddp_from_the_cli_relaunches_followers_that_write_nothing(tmp_path: Path) -> None:
    """``strategy: ddp`` re-runs the command with LOCAL_RANK=1; that process trains but leaves the folder alone."""
    import yaml

    config_file = tmp_path / "ddp.yaml"
    config_file.write_text(yaml.safe_dump(ddp_raw(tmp_path)))
    env = {**os.environ, "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("LOCAL_RANK", None)
    command = [
        sys.executable,
        "-m",
        "fusebench",
        "train",
        str(config_file),
        "--run-id",
        "two",
        "experiment.devices=2",
        "experiment.strategy=ddp",
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("results:") == 1  # the follower reports nothing
    run = tmp_path / "ddp" / "two"
    assert [p.name for p in (tmp_path / "ddp").iterdir()] == ["two"]
    one = execute_run(ddp_config(tmp_path, []), tmp_path / "one")
    assert_same_numbers(one.epoch_metrics, json.loads((run / "epoch_metrics.json").read_text()))
