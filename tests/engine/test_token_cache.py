"""Where-to-fuse tokens from a pre-trained, frozen encoder (002 Sec. 2.2), cached once per split."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from tests._helpers.runs import tiny_config

from fusebench.config import ConfigError
from fusebench.engine.build import build_model
from fusebench.engine.run import execute_run
from fusebench.models.encoder_specs import CNNOptions, build_encoder_from
from fusebench.models.encoder_tokens import EncoderTokenizer
from fusebench.models.weights import save_encoder

MID = [
    "model.fusion={type: mid, method: where_to_fuse, params: {primary: image, dim: 16, num_layers: 2, heads: 2, "
    "fusion_layer: 1, pooled_tokens: 4, image_patch: [7, 7], dropout: 0.0, encoder_tokens: [audio]}}",
    "data.limit={train: 300, validation: 100, test: 100}",
    "training.epochs=2",
    "monitoring.enabled=false",
]


def test_encoder_tokens_are_the_cnn_feature_map_positions_projected() -> None:
    torch.manual_seed(0)
    encoder = build_encoder_from(CNNOptions(out_dim=32, widths=[8, 16]), (1, 40, 40))
    tokenizer = EncoderTokenizer(encoder, (1, 40, 40), dim=12).eval()
    assert (tokenizer.num_tokens, tokenizer.channels) == (16, 16)  # 4x4 pooled grid of 16 channels
    x = torch.randn(2, 1, 40, 40)
    grid = encoder.features[:-1](x)  # [2, 16, 4, 4]: conv blocks + the 4x4 adaptive pooling
    tokens = tokenizer(x)
    for i, j in ((0, 0), (1, 3), (3, 2)):  # token i * 4 + j is grid position (i, j), projected
        assert torch.allclose(tokens[:, i * 4 + j], tokenizer.proj(grid[:, :, i, j]), atol=1e-6)


def test_a_frozen_encoder_stays_in_eval_mode_while_the_model_trains() -> None:
    encoder = build_encoder_from(CNNOptions(out_dim=32, widths=[8, 16]), (1, 40, 40))
    tokenizer = EncoderTokenizer(encoder, (1, 40, 40), dim=12)
    assert tokenizer.train().encoder.training  # trainable: trains
    encoder.requires_grad_(False)
    assert not tokenizer.train().encoder.training and tokenizer.proj.training


def test_pretrained_frozen_encoder_tokens_are_cached_and_give_the_uncached_results(tmp_path: Path) -> None:
    torch.manual_seed(0)
    encoder = build_encoder_from(CNNOptions(out_dim=32, widths=[8, 16]), (1, 40, 40))
    path = save_encoder(encoder, tmp_path / "audio.safetensors")
    frozen = [*MID, f"model.pretrained.audio={path}", "model.freeze.audio=true"]
    cached = execute_run(tiny_config(tmp_path, frozen), tmp_path / "cached")
    plain = execute_run(tiny_config(tmp_path, [*frozen, "training.cache_frozen_features=false"]), tmp_path / "plain")
    assert json.loads((tmp_path / "cached" / "timing.json").read_text())["feature_cache"] > 0
    assert json.loads((tmp_path / "plain" / "timing.json").read_text())["feature_cache"] == 0
    for pattern, metrics in plain.test_metrics.items():
        assert cached.test_metrics[pattern]["loss"] == pytest.approx(metrics["loss"], rel=1e-3)
    loaded = load_file(str(path))
    for run, prefix in (("cached", "model.inner."), ("plain", "model.")):
        state = torch.load(tmp_path / run / "checkpoints" / "best.ckpt", weights_only=True)["state_dict"]
        for key, value in loaded.items():  # the frozen encoder (BatchNorm statistics included) never changed
            assert torch.equal(state[f"{prefix}tokenizers.audio.encoder.{key}"], value), (run, key)
    facts = json.loads((tmp_path / "cached" / "model.json").read_text())
    assert facts["trainable_parameters"] < facts["parameters"] and facts["cost"]["tokens_per_layer"] == [17, 21]
    timing = json.loads((tmp_path / "cached" / "timing.json").read_text())
    steps = 2 * 5  # 2 epochs of ceil(300 / 64) optimiser steps: 002 Fig. 17's measure, steps per second
    assert timing["train_steps_per_second"] == pytest.approx(steps / timing["training"])
    assert timing["train_steps_per_cpu_second"] == pytest.approx(steps / timing["training_cpu"])


def test_pretrained_weights_reach_only_an_encoder_that_gives_tokens(tmp_path: Path) -> None:
    encoder = build_encoder_from(CNNOptions(out_dim=32, widths=[8, 16]), (1, 28, 28))
    path = save_encoder(encoder, tmp_path / "image.safetensors")
    with pytest.raises(ValueError, match="no `image` encoder"):
        execute_run(tiny_config(tmp_path, [*MID, f"model.pretrained.image={path}"]), tmp_path / "bad")


def test_fusion_spec_and_per_modality_pooling_from_a_config(tmp_path: Path) -> None:
    spec = [
        "model.fusion={type: mid, method: where_to_fuse, params: {fusion_spec: {image: 0, audio: 2}, "
        "pooled_tokens: {audio: 5, image: 8}, dim: 16, num_layers: 2, heads: 2, decoder_layers: 2}}"
    ]
    config = tiny_config(tmp_path, spec)
    model = build_model(config, {"audio": (1, 40, 40), "image": (1, 28, 28)}, 10)
    assert model.join == {"audio": 2, "image": 0} and model.pooled == {"audio": 5, "image": 8}
    assert model.tokens_per_layer() == [9, 9] and len(model.decoder) == 2
    with pytest.raises(ConfigError, match=r"fusion layers must be in 0..num_layers \(0..2\), got \[0, 3\]"):
        tiny_config(tmp_path, [spec[0].replace("audio: 2", "audio: 3")])
    with pytest.raises(ConfigError, match=r"did you mean `model.fusion.params.fusion_spec`"):
        tiny_config(tmp_path, [spec[0].replace("fusion_spec:", "fusion_spce:")])
