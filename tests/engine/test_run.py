"""Runs end to end on real AV-digits data: run directory, pre-training, loading, determinism, crashes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from tests._helpers.runs import tiny_config, tiny_pretrain_config

from fusebench.engine.run import execute_run
from fusebench.models.encoder_specs import CNNOptions, ResNet18Options, build_encoder_from
from fusebench.models.weights import load_encoder, save_encoder

CHANCE = 0.1


@pytest.mark.slow
def test_pretrain_then_train_then_evaluate_beats_chance(tmp_path: Path) -> None:
    encoders = {}
    for modality in ("audio", "image"):
        result = execute_run(tiny_pretrain_config(tmp_path, modality), tmp_path / f"pre_{modality}")
        assert list(result.test_metrics) == [modality]
        encoders[modality] = result.run_dir / "encoders" / f"{modality}.safetensors"
        expected = build_encoder_from(CNNOptions(out_dim=32, widths=[8, 16]), (1, 40, 40))
        assert set(load_file(encoders[modality])) == set(expected.state_dict())
    overrides = [f"model.pretrained.{m}={p}" for m, p in encoders.items()]
    scratch = execute_run(tiny_config(tmp_path), tmp_path / "scratch")
    pretrained = execute_run(tiny_config(tmp_path, overrides), tmp_path / "pretrained")
    for result in (scratch, pretrained):
        assert list(result.test_metrics) == ["audio+image", "audio", "image"]
        assert result.test_metrics["audio+image"]["accuracy"] > CHANCE + 0.3, result.test_metrics
        assert result.test_metrics["audio+image"]["count"] == 400
    timing = json.loads((tmp_path / "pretrained" / "timing.json").read_text())
    assert set(timing["pretraining"]) == {"audio", "image"} and timing["pretraining_total"] > 0
    assert timing["training"] > 0 and timing["test"] > 0


def test_run_directory_contents_and_epoch_records(tmp_path: Path) -> None:
    config = tiny_config(tmp_path, ["data.missing_rate.audio=0.3", "training.epochs=2"])
    result = execute_run(config, tmp_path / "run")
    names = {p.name for p in result.run_dir.iterdir()}
    assert {
        "config.yaml",
        "epoch_metrics.json",
        "test_metrics.json",
        "timing.json",
        "env.json",
        "status.json",
        "checkpoints",
        "test_logits.safetensors",
    } <= names
    assert {p.name for p in (result.run_dir / "checkpoints").iterdir()} == {"best.ckpt", "last.ckpt"}
    epochs = json.loads((result.run_dir / "epoch_metrics.json").read_text())
    assert [e["epoch"] for e in epochs] == [1, 2]
    first = epochs[0]
    # MCAR at 0.3 on audio: train metrics are grouped by the pattern each sample had (no all-missing pattern)
    assert set(first["train"]) - {"loss", "timing"} == {"audio+image", "image"}
    realised = first["missingness"]["missing_rate"]
    assert abs(realised["audio"] - 0.3) < 0.08 and realised["image"] == 0.0
    counts = first["missingness"]["pattern_counts"]
    assert counts["audio+image"] == first["train"]["audio+image"]["count"]
    assert set(first["validation"]) - {"loss", "timing"} == {"audio+image", "audio", "image"}
    assert json.loads((result.run_dir / "status.json").read_text())["state"] == "completed"
    logits = load_file(result.run_dir / "test_logits.safetensors")
    assert logits["logits/audio"].shape == (400, 10) and logits["target"].shape == (400,)


def test_same_config_and_seed_give_the_same_numbers(tmp_path: Path) -> None:
    config = tiny_config(tmp_path, ["training.epochs=1", "data.missing_rate.image=0.2"])
    first = execute_run(config, tmp_path / "a")
    second = execute_run(config, tmp_path / "b")
    assert first.test_metrics == second.test_metrics
    strip = [{k: v for k, v in e.items() if k != "timing"} for e in first.epoch_metrics]
    for a, b in zip(first.epoch_metrics, second.epoch_metrics, strict=True):
        assert a["train"]["audio+image"] == b["train"]["audio+image"]
        assert a["validation"]["audio+image"] == b["validation"]["audio+image"]
    assert strip  # one epoch was recorded
    other_seed = execute_run(tiny_config(tmp_path, ["training.epochs=1", "experiment.seed=1"]), tmp_path / "c")
    assert other_seed.test_metrics != first.test_metrics


def test_frozen_pretrained_encoder_is_unchanged_by_training(tmp_path: Path) -> None:
    encoder = build_encoder_from(CNNOptions(out_dim=32, widths=[8, 16]), (1, 28, 28))
    path = save_encoder(encoder, tmp_path / "image.safetensors", {"pretraining_seconds": "1.0"})
    config = tiny_config(tmp_path, [f"model.pretrained.image={path}", "model.freeze.image=true", "training.epochs=1"])
    result = execute_run(config, tmp_path / "frozen")
    checkpoint = torch.load(result.run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    trained = {
        k.removeprefix("model.encoders.image."): v
        for k, v in checkpoint["state_dict"].items()
        if k.startswith("model.encoders.image.")
    }
    for key, value in encoder.state_dict().items():
        torch.testing.assert_close(trained[key], value, msg=f"frozen layer {key} changed")


def test_crashed_run_says_so_in_its_directory(tmp_path: Path) -> None:
    bogus = tmp_path / "audio.safetensors"
    bogus.write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match=r"Pre-trained weights for `audio` at .* are not a safetensors file"):
        execute_run(tiny_config(tmp_path, [f"model.pretrained.audio={bogus}"]), tmp_path / "crash")
    status = json.loads((tmp_path / "crash" / "status.json").read_text())
    assert status["state"] == "failed" and "not a safetensors file" in status["error"]


def test_weight_shape_mismatch_names_modality_and_layer(tmp_path: Path) -> None:
    path = save_encoder(
        build_encoder_from(CNNOptions(out_dim=32, widths=[8, 16]), (1, 40, 40)), tmp_path / "audio.safetensors"
    )
    wider = build_encoder_from(CNNOptions(out_dim=32, widths=[8, 32]), (1, 40, 40))
    with pytest.raises(ValueError, match=r"`audio` encoder: layer `features.4.weight` has shape"):
        load_encoder(wider, path, "audio")
    with pytest.raises(ValueError, match=r"missing layers .*unexpected layers"):
        load_encoder(build_encoder_from(ResNet18Options(out_dim=32), (1, 40, 40)), path, "audio")


def test_data_modalities_select_the_runs_modalities(tmp_path: Path) -> None:
    """`data.modalities` is an ablation over subsets: only those encoders are built, only their patterns tested."""
    config = tiny_config(tmp_path, ["data.modalities=[image]", "training.epochs=1", "model.pretrained.audio=x.st"])
    result = execute_run(config, tmp_path / "image-only")
    assert list(result.test_metrics) == ["image"]
    facts = json.loads((tmp_path / "image-only" / "model.json").read_text())
    assert facts["patterns"] == ["image"]
    recorded = json.loads((tmp_path / "image-only" / "data.json").read_text())
    assert recorded["modalities"] == ["image"] and recorded["task"]["kind"] == "multiclass"
    assert recorded["metrics"] == {"names": ["accuracy", "f1_macro", "f1_micro", "f1_weighted"], "primary": "accuracy"}


def test_data_modalities_the_dataset_lacks_are_refused(tmp_path: Path) -> None:
    config = tiny_config(tmp_path, ["data.modalities=[text]", "model.encoders.text={kind: mlp}"])
    with pytest.raises(
        ValueError,
        match=r"`data.modalities` names `text`, which dataset `avdigits` does not have; "
        r"it has `audio`, `image`",
    ):
        execute_run(config, tmp_path / "text")


def test_fixed_missing_resample_trains_on_the_split_pairs_and_records_it(tmp_path: Path) -> None:
    config = tiny_config(
        tmp_path, ["data.missing_rate={audio: 0.4}", "data.missing_resample=fixed", "training.epochs=2"]
    )
    result = execute_run(config, tmp_path / "fixed")
    first, second = (epoch["missingness"] for epoch in result.epoch_metrics)
    assert first == second and first["resample"] == "fixed"  # the same split pairs every epoch
    pairs = first["samples"]
    assert pairs == 1200 and first["training_samples"] == pairs + first["pattern_counts"]["image"]
    assert abs(first["missing_rate"]["audio"] - 0.4) < 0.05
    assert list(result.test_metrics) == ["audio+image", "audio", "image"]
