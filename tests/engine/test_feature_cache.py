"""Frozen-feature caching trains only the fusion, and gives the results of the uncached run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tests._helpers.runs import tiny_config

from fusebench.engine.run import execute_run
from fusebench.models.encoder_specs import CNNOptions, build_encoder_from
from fusebench.models.weights import save_encoder


@pytest.fixture
def frozen_overrides(tmp_path: Path) -> list[str]:
    torch.manual_seed(0)
    overrides = []
    for modality, shape in (("audio", (1, 40, 40)), ("image", (1, 28, 28))):
        encoder = build_encoder_from(CNNOptions(out_dim=32, widths=[8, 16]), shape)
        path = save_encoder(encoder, tmp_path / f"{modality}.safetensors")
        overrides += [f"model.pretrained.{modality}={path}", f"model.freeze.{modality}=true"]
    return [*overrides, "training.epochs=2"]


def test_cached_features_give_the_uncached_results(tmp_path: Path, frozen_overrides: list[str]) -> None:
    cached = execute_run(tiny_config(tmp_path, frozen_overrides), tmp_path / "cached")
    plain = execute_run(
        tiny_config(tmp_path, [*frozen_overrides, "training.cache_frozen_features=false"]), tmp_path / "plain"
    )
    assert json.loads((tmp_path / "cached" / "timing.json").read_text())["feature_cache"] > 0
    assert json.loads((tmp_path / "plain" / "timing.json").read_text())["feature_cache"] == 0
    for pattern, metrics in plain.test_metrics.items():
        assert cached.test_metrics[pattern]["accuracy"] == pytest.approx(metrics["accuracy"], abs=2 / 400)
        assert cached.test_metrics[pattern]["loss"] == pytest.approx(metrics["loss"], rel=1e-3)
    for a, b in zip(cached.epoch_metrics, plain.epoch_metrics, strict=True):
        assert a["validation"]["loss"] == pytest.approx(b["validation"]["loss"], rel=1e-3)
    facts = json.loads((tmp_path / "cached" / "model.json").read_text())
    assert facts["trainable_parameters"] < facts["parameters"]


def test_partly_frozen_model_is_not_cached(tmp_path: Path, frozen_overrides: list[str]) -> None:
    overrides = [o for o in frozen_overrides if o != "model.freeze.audio=true"] + ["training.epochs=1"]
    result = execute_run(tiny_config(tmp_path, overrides), tmp_path / "partial")
    assert result.timing["feature_cache"] == 0
