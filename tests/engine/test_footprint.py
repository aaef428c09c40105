"""Per-run resources: size on disk, peak memory and inference throughput, checked against direct measurements."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from tests._helpers.runs import tiny_config
from torch import nn

from fusebench.engine.build import build_model
from fusebench.engine.footprint import inference_throughput, peak_memory, reset_peak_memory, weights_bytes
from fusebench.engine.run import execute_run

SHAPES = {"audio": (1, 40, 40), "image": (1, 28, 28)}


def test_weights_bytes_is_the_size_of_the_safetensors_file_on_disk(tmp_path: Path) -> None:
    model = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1))
    model.add_module("aux_heads", nn.Linear(5, 5))
    kept = {k: v.contiguous() for k, v in model.state_dict().items() if not k.startswith("aux_heads")}
    save_file(kept, tmp_path / "weights.safetensors")
    assert weights_bytes(model, ["aux_heads"]) == (tmp_path / "weights.safetensors").stat().st_size
    assert weights_bytes(model) > weights_bytes(model, ["aux_heads"]) + 4 * 30  # 30 more float32 values


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-run RSS peaks need /proc/self/clear_refs")
def test_peak_memory_is_reset_per_run() -> None:
    assert reset_peak_memory("cpu") == "run"
    block = torch.ones(64 * 1024 * 1024 // 4)  # 64 MiB touched
    big = peak_memory("cpu", "run")["peak_rss_bytes"]
    del block
    reset_peak_memory("cpu")
    small = peak_memory("cpu", "run")
    assert big - small["peak_rss_bytes"] > 48 * 1024 * 1024
    assert small["peak_rss_scope"] == "run" and small["peak_cuda_bytes"] is None


def test_inference_throughput_runs_every_test_sample_once_with_every_modality_present() -> None:
    config = tiny_config(Path("unused"))
    model = build_model(config, SHAPES, 10)
    seen: list[tuple[int, bool]] = []
    model.fusion.register_forward_hook(lambda m, args, out: seen.append((args[1].shape[0], bool(args[1].all()))))
    inputs = {m: torch.randn(10, *shape) for m, shape in SHAPES.items()}
    result = inference_throughput(model, inputs, torch.zeros(10, dtype=torch.long), ("audio", "image"), 4, "cpu")
    assert seen == [(4, True), (4, True), (4, True), (2, True)]  # one warm-up batch, then 4 + 4 + 2 samples
    assert result["inference_samples"] == 10 and result["inference_samples_per_second"] == pytest.approx(
        10 / result["inference_seconds"]
    )
    assert model.training  # the model's mode is restored


def test_a_run_records_its_resources(tmp_path: Path) -> None:
    config = tiny_config(tmp_path, ["training.epochs=1", "data.limit.train=128", "monitoring.enabled=false"])
    result = execute_run(config, tmp_path / "run")
    resources = json.loads((result.run_dir / "resources.json").read_text())
    state = torch.load(result.run_dir / "checkpoints" / "best.ckpt", weights_only=True)["state_dict"]
    save_file({k.removeprefix("model."): v.contiguous() for k, v in state.items()}, tmp_path / "model.safetensors")
    assert resources["weights_bytes"] == (tmp_path / "model.safetensors").stat().st_size
    assert resources["checkpoint_bytes"] == (result.run_dir / "checkpoints" / "best.ckpt").stat().st_size
    assert resources["inference_samples"] == result.test_metrics["audio+image"]["count"]
    assert resources["inference_samples_per_second"] > 0 and resources["peak_rss_bytes"] > 50 * 1024 * 1024
    again = execute_run(config, tmp_path / "run", skip_train=True)  # `fusebench evaluate` keeps the record
    assert json.loads((again.run_dir / "resources.json").read_text()) == resources
