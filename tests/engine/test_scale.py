"""Scale-out settings: checked before Lightning sees them, ranks read from the launcher's variables."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tests._helpers.runs import tiny_config

from fusebench.engine.scale import autocast, is_follower, placement, process_rank


def test_defaults_are_one_cpu_process_at_float32(tmp_path: Path) -> None:
    where = placement(tiny_config(tmp_path), "cpu")
    assert where.trainer_arguments() == {
        "accelerator": "cpu",
        "devices": 1,
        "num_nodes": 1,
        "strategy": "auto",
        "precision": "32-true",
        "sync_batchnorm": False,
    }
    assert where.world_size == 1


def test_settings_reach_the_trainer(tmp_path: Path) -> None:
    config = tiny_config(
        tmp_path,
        [
            "experiment.devices=2",
            "experiment.num_nodes=3",
            "experiment.strategy=ddp",
            "experiment.precision=bf16-mixed",
        ],
    )
    where = placement(config, "cpu")
    assert where.world_size == 6
    assert where.trainer_arguments()["precision"] == "bf16-mixed" and where.trainer_arguments()["strategy"] == "ddp"
    assert not where.sync_batchnorm  # torch's SyncBatchNorm does not run on CPUs


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["experiment.strategy=fsdp"], "fsdp.*needs `experiment.device: cuda`"),
        (["experiment.precision=16-mixed"], "16-mixed.*on a CPU use `bf16-mixed`"),
        (["experiment.devices=2", "training.strategy.gradient_blending=auto"], "run the estimate with one device"),
    ],
)
def test_combinations_that_cannot_run_are_named(tmp_path: Path, overrides: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        placement(tiny_config(tmp_path, overrides), "cpu")


def test_an_unknown_strategy_is_a_config_error(tmp_path: Path) -> None:
    from fusebench.config import ConfigError

    with pytest.raises(ConfigError, match="ddp_spawn"):
        tiny_config(tmp_path, ["experiment.strategy=horovod"])


@pytest.mark.parametrize(
    ("env", "rank"),
    [
        ({}, 0),
        ({"LOCAL_RANK": "0"}, 0),
        ({"LOCAL_RANK": "1"}, 1),
        ({"NODE_RANK": "2", "LOCAL_RANK": "0"}, 2),
        ({"RANK": "3"}, 3),
        ({"SLURM_PROCID": "1"}, 1),
    ],
)
def test_rank_from_the_launchers_variables(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], rank: int) -> None:
    for name in ("RANK", "NODE_RANK", "LOCAL_RANK", "SLURM_PROCID"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert process_rank() == rank and is_follower() == (rank > 0)


def test_a_malformed_rank_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCAL_RANK", "one")
    with pytest.raises(ValueError, match="`LOCAL_RANK`.*got `one`"):
        process_rank()


def test_autocast_evaluates_like_the_training_precision() -> None:
    layer = torch.nn.Linear(4, 2)
    x = torch.rand(3, 4)
    with autocast("bf16-mixed", "cpu"):
        assert layer(x).dtype == torch.bfloat16
    with autocast("32", "cpu"):
        assert layer(x).dtype == torch.float32


@pytest.mark.slow
def test_bf16_mixed_trains_on_cpu(tmp_path: Path) -> None:
    from fusebench.engine.run import execute_run

    result = execute_run(
        tiny_config(tmp_path, ["experiment.precision=bf16-mixed", "training.epochs=1"]), tmp_path / "run"
    )
    assert result.test_metrics["audio+image"]["count"] == 400
    assert result.epoch_metrics[0]["train"]["loss"] > 0


@pytest.mark.slow
def test_deterministic_is_a_switch(tmp_path: Path) -> None:
    from fusebench.engine.run import execute_run

    was = torch.are_deterministic_algorithms_enabled()
    try:
        execute_run(tiny_config(tmp_path, ["experiment.deterministic=false", "training.epochs=1"]), tmp_path / "off")
        assert not torch.are_deterministic_algorithms_enabled()
        execute_run(tiny_config(tmp_path, ["training.epochs=1"]), tmp_path / "on")  # the default
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(was)
