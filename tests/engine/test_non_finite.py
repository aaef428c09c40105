"""A loss that becomes NaN or infinite fails the run, naming where, and keeps the last good checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tests._helpers.runs import tiny_config

from fusebench.engine.module import NonFiniteLossError
from fusebench.engine.run import execute_run

#: Epoch 1 trains at lr 1e-3; the step schedule then multiplies it by 1e30, which blows the weights up.
EXPLODE_IN_EPOCH_2 = [
    "training.epochs=3",
    "training.scheduler={name: step, step_size: 1, gamma: 1.0e+30}",
    "monitoring.enabled=false",
]


def test_a_nan_loss_fails_the_run_naming_epoch_and_step(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    with pytest.raises(NonFiniteLossError, match=r"The training loss is (nan|inf) at epoch 2, step \d+"):
        execute_run(tiny_config(tmp_path, EXPLODE_IN_EPOCH_2), run_dir)
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "failed" and "at epoch 2, step" in status["error"]
    assert [e["epoch"] for e in json.loads((run_dir / "epoch_metrics.json").read_text())] == [1]
    assert not (run_dir / "test_metrics.json").exists()
    for name in ("best.ckpt", "last.ckpt"):  # epoch 1's weights, all finite
        checkpoint = torch.load(run_dir / "checkpoints" / name, weights_only=True)
        assert checkpoint["epoch"] == 0
        assert all(torch.isfinite(v).all() for v in checkpoint["state_dict"].values() if v.is_floating_point())
