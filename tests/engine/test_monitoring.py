"""Training monitoring: every quantity by hand on a tiny module, then a real run writes monitoring.jsonl."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from tests._helpers.runs import tiny_config
from torch import nn

from fusebench.engine.build import build_model
from fusebench.engine.monitoring import MONITORING_FILE, TrainingMonitor, monitored_modules, read_monitoring
from fusebench.engine.run import execute_run
from fusebench.models.multimodal import ModelOutput


class _Tiny(nn.Module):
    """Two 'encoders' (linear 2 -> 2, no bias) and a head with a bias; a model-level parameter.

    It keeps the model contract (``fusebench.models.contract.FusionModel``) the monitor reads
    the encoders through.
    """

    modalities = ("audio", "image")
    reruns_per_pattern = False

    def __init__(self) -> None:
        super().__init__()
        self.encoders = nn.ModuleDict({m: nn.Linear(2, 2, bias=False) for m in self.modalities})
        self.head = nn.Linear(2, 1)
        self.token = nn.Parameter(torch.zeros(2))

    def encoder_modules(self) -> nn.ModuleDict:
        return self.encoders

    def embedding_dims(self) -> dict[str, int]:
        return dict.fromkeys(self.modalities, 2)

    def forward(self, inputs: dict[str, torch.Tensor], mask: torch.Tensor, lengths: Any = None) -> ModelOutput:
        embeddings = {m: self.encoders[m](inputs[m]) for m in self.modalities}
        return ModelOutput(self.head(sum(embeddings.values())), embeddings)


def _module(model: nn.Module, epoch: int = 0) -> Any:
    return SimpleNamespace(model=model, current_epoch=epoch)


def test_groups_split_module_dicts_per_modality_and_keep_model_parameters() -> None:
    groups = monitored_modules(_Tiny())
    assert list(groups) == ["encoders.audio", "encoders.image", "head", "parameters"]
    assert [p.shape for p in groups["head"]] == [(1, 2), (1,)]


def test_epoch_record_by_hand(tmp_path: Path) -> None:
    model = _Tiny()
    with torch.no_grad():
        model.encoders["audio"].weight.copy_(torch.tensor([[3.0, 0.0], [0.0, 4.0]]))  # norm 5
        model.head.weight.copy_(torch.tensor([[1.0, 2.0]]))
        model.head.bias.fill_(2.0)  # head norm sqrt(1 + 4 + 4) = 3
    monitor = TrainingMonitor(tmp_path, tensorboard=False)
    module = _module(model)
    monitor.on_fit_start(None, module)  # type: ignore[arg-type]
    monitor.on_train_epoch_start(None, module)  # type: ignore[arg-type]
    for grad in ([[3.0, 0.0], [0.0, 4.0]], [[0.0, 1.0], [0.0, 0.0]]):  # step norms 5 and 1
        monitor.on_train_batch_start(None, module, None, 0)  # type: ignore[arg-type]
        model.encoders["audio"](torch.tensor([[1.0, 1.0], [-1.0, 3.0]]))  # outputs (3, 4), (-3, 12)
        model.encoders["audio"].weight.grad = torch.tensor(grad)
        monitor.on_before_optimizer_step(None, module, None)  # type: ignore[arg-type]
        monitor.on_train_batch_end(None, module, None, None, 0)  # type: ignore[arg-type]
    model.encoders["image"](torch.ones(1, 2))  # outside a training step: not an activation record
    with torch.no_grad():
        model.encoders["audio"].weight.add_(torch.tensor([[0.0, 0.0], [0.0, 1.0]]))  # update norm 1 on norm 5
    monitor.on_train_epoch_end(None, module)  # type: ignore[arg-type]
    (record,) = read_monitoring(tmp_path)
    audio = record["modules"]["encoders.audio"]
    assert audio["grad_norm"] == pytest.approx(3.0) and audio["grad_norm_max"] == pytest.approx(5.0)
    assert audio["weight_norm"] == pytest.approx(math.sqrt(9 + 25)) and audio["update_ratio"] == pytest.approx(0.2)
    assert record["modules"]["head"]["weight_norm"] == pytest.approx(3.0)
    assert record["modules"]["head"]["grad_norm"] is None and record["modules"]["head"]["update_ratio"] == 0.0
    assert record["steps"] == 2 and record["epoch"] == 1
    values = [3.0, 4.0, 3.0, 4.0, -3.0, 12.0, -3.0, 12.0]  # two steps of the same outputs
    mean = sum(values) / 8
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / 8)
    assert record["activations"] == {"audio": pytest.approx({"mean": mean, "std": std, "count": 8})}
    monitor.close()


def test_a_run_writes_one_record_per_epoch_and_disable_monitoring_writes_none(tmp_path: Path) -> None:
    config = tiny_config(tmp_path, ["training.epochs=2", "data.limit.train=256"])
    result = execute_run(config, tmp_path / "run")
    records = read_monitoring(result.run_dir)
    assert [r["epoch"] for r in records] == [1, 2] and records[0]["steps"] == 4  # 256 samples / 64
    model = build_model(config, {"audio": (1, 40, 40), "image": (1, 28, 28)}, 10)
    assert set(records[0]["modules"]) == set(monitored_modules(model))
    for record in records:
        for name in ("encoders.audio", "encoders.image", "fusion", "head"):
            entry = record["modules"][name]
            assert entry["grad_norm"] > 0 and entry["grad_norm_max"] >= entry["grad_norm"] and entry["update_ratio"] > 0
        assert set(record["activations"]) == {"audio", "image"}
        assert record["activations"]["audio"]["count"] == 256 * 32  # every training sample, 32 features
    state = torch.load(result.run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    head = torch.cat([state["model.head.weight"].flatten(), state["model.head.bias"]])
    assert records[1]["modules"]["head"]["weight_norm"] == pytest.approx(float(head.norm()), rel=1e-5)
    lines = (result.run_dir / MONITORING_FILE).read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]
    quiet = execute_run(
        tiny_config(tmp_path, ["training.epochs=1", "data.limit.train=128", "monitoring.enabled=false"]),
        tmp_path / "quiet",
    )
    assert not (quiet.run_dir / MONITORING_FILE).exists() and not (quiet.run_dir / "tensorboard").exists()


def test_tensorboard_scalars_when_installed(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = tiny_config(tmp_path, ["training.epochs=1", "data.limit.train=128"])
    result = execute_run(config, tmp_path / "run")
    events = EventAccumulator(str(result.run_dir / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"monitoring/grad_norm/head", "monitoring/activation_std/audio"} <= tags
    (record,) = read_monitoring(result.run_dir)
    assert events.Scalars("monitoring/weight_norm/head")[0].value == pytest.approx(
        record["modules"]["head"]["weight_norm"], rel=1e-6
    )
