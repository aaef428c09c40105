"""Every shipped fusion config trains on real AV-digits from the CLI, under missingness, and reloads.

One test is parametrised over ``configs/avdigits/fusion/*.yaml``, so shipping a config adds
its test. Each config runs as a user would run it (``fusebench train CONFIG overrides``),
with tiny overrides: a 600-sample train split with 30% of the audio missing (MCAR), small
widths, 3 epochs. Then ``fusebench evaluate RUN_DIR`` reloads ``checkpoints/best.ckpt`` and
must reproduce the test metrics. The other tests pin frozen-feature caching with pre-trained
extractors, fine-tuning pre-trained encoders under a fusion, and what token models refuse.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from tests._helpers.fusion_cases import ALL_FUSIONS, single_thread
from tests._helpers.runs import tiny_pretrain_config
from typer.testing import CliRunner

from fusebench.cli import app
from fusebench.config import ConfigError, RunConfig, load_config
from fusebench.engine.build import build_model
from fusebench.engine.run import execute_run
from fusebench.models.encoder_specs import CNNOptions, build_encoder_from
from fusebench.models.weights import save_encoder

ROOT = Path(__file__).resolve().parents[2]
FUSION_CONFIGS = sorted((ROOT / "configs" / "avdigits" / "fusion").glob("*.yaml"))
PATTERNS = ["audio+image", "audio", "image"]
INPUT_SHAPES = {"audio": (1, 40, 40), "image": (1, 28, 28)}
CHANCE = 0.1
TEST_SIZE = 200

runner = CliRunner()

#: Real data, but a few hundred samples, 30% of them without audio, and 3 quick epochs.
TINY_RUN = [
    "data.recipe.subset=1200",
    "data.limit.train=600",
    "data.limit.validation=200",
    f"data.limit.test={TEST_SIZE}",
    "data.batch_size=50",
    "data.missing_rate.audio=0.3",
    "training.epochs=3",
    "training.optimizer.lr=0.003",
    "experiment.threads=1",
    "logging.progress_bar=false",
]
_SMALL_CNNS = [
    "model.encoders.audio.widths=[8,16]",
    "model.encoders.image.widths=[8,16]",
    "model.encoders.audio.out_dim=32",
    "model.encoders.image.out_dim=32",
    "model.fusion.hidden_dim=64",
]
# 16 image patches of 7x7 and 25 spectrogram patches of 8x8 instead of 49 + 40 tokens.
_SMALL_TOKENS = [
    "model.fusion.params.dim=32",
    "model.fusion.params.heads=4",
    "model.fusion.params.image_patch=[7,7]",
    "model.fusion.params.spectrogram_mode=patches",
    "model.fusion.params.spectrogram_patch=[8,8]",
]
#: fusion family (or family/method) -> (small-model overrides, the model class a run builds).
SMALL_MODEL: dict[str, tuple[list[str], str]] = {
    "late": (_SMALL_CNNS, "MultimodalModel"),
    "early/feature": (_SMALL_CNNS, "FeatureEarlyFusionModel"),
    "early/token": ([*_SMALL_TOKENS, "model.fusion.params.depth=2"], "TokenEarlyFusionModel"),
    "mid/where_to_fuse": (
        [*_SMALL_TOKENS, "model.fusion.params.num_layers=2", "model.fusion.params.fusion_layer=1"],
        "WhereToFuseModel",
    ),
}


@pytest.fixture(autouse=True)
def _single_thread() -> Iterator[None]:
    with single_thread():
        yield


def small_model(config: RunConfig) -> tuple[list[str], str]:
    """The small-model overrides and expected model class for a shipped config's fusion."""
    fusion = config.model.fusion
    for key in (f"{fusion.type}/{fusion.method}", fusion.type):
        if key in SMALL_MODEL:
            return SMALL_MODEL[key]
    raise AssertionError(
        f"No small-model overrides for fusion `{fusion.type}/{fusion.method}`; add them to SMALL_MODEL "
        f"(keys {sorted(SMALL_MODEL)})."
    )


def tiny_overrides(path: Path, runs_dir: Path) -> list[str]:
    overrides, _ = small_model(load_config(path))
    return [*TINY_RUN, *overrides, f"experiment.runs_dir={runs_dir}"]


def cli(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def read(run_dir: Path, name: str) -> Any:
    return json.loads((run_dir / name).read_text())


def train_ce(epoch: dict[str, Any]) -> float:
    """Mean cross-entropy over the epoch's training samples, from the per-pattern records."""
    groups = [v for k, v in epoch["train"].items() if k in PATTERNS]
    return sum(g["loss"] * g["count"] for g in groups) / sum(g["count"] for g in groups)


def assert_same_metrics(got: dict[str, dict[str, float]], expected: dict[str, dict[str, float]]) -> None:
    assert list(got) == list(expected)
    for pattern, metrics in expected.items():
        assert got[pattern] == pytest.approx(metrics, rel=1e-6, abs=1e-6), pattern


def test_every_fusion_method_has_a_shipped_config() -> None:
    shipped = {(c.model.fusion.type, c.model.fusion.method) for c in map(load_config, FUSION_CONFIGS)}
    assert set(ALL_FUSIONS) <= shipped, sorted(set(ALL_FUSIONS) - shipped)
    contrastive = load_config(ROOT / "configs" / "avdigits" / "fusion" / "contrastive.yaml")
    assert contrastive.training.strategy.contrastive.kind in ("hard_negative", "infonce")
    assert (contrastive.model.fusion.type, contrastive.model.fusion.method) in (
        ("late", "concat"),
        ("early", "feature"),
    )


@pytest.mark.parametrize("path", FUSION_CONFIGS, ids=[p.stem for p in FUSION_CONFIGS])
def test_shipped_config_trains_under_missing_audio_and_reloads(path: Path, tmp_path: Path) -> None:
    overrides = tiny_overrides(path, tmp_path / "runs")
    config = load_config(path, overrides)
    output = cli("train", str(path), "--run-id", "1", *overrides)
    assert "audio+image" in output
    run_dir = tmp_path / "runs" / config.experiment.name / "1"

    epochs = read(run_dir, "epoch_metrics.json")
    assert [e["epoch"] for e in epochs] == [1, 2, 3]
    assert epochs[-1]["train"]["loss"] < epochs[0]["train"]["loss"], [e["train"]["loss"] for e in epochs]
    # 30% of the training samples had no audio, and were trained on as such
    assert set(epochs[0]["train"]) & set(PATTERNS) == {"audio+image", "image"}
    assert abs(epochs[0]["missingness"]["missing_rate"]["audio"] - 0.3) < 0.08
    for epoch in epochs:  # the logged loss is the task loss, plus the contrastive term when it is on
        if config.training.strategy.contrastive:
            assert epoch["train"]["loss"] > train_ce(epoch) + 1e-3
        else:
            assert epoch["train"]["loss"] == pytest.approx(train_ce(epoch), rel=1e-4)

    test = read(run_dir, "test_metrics.json")
    assert list(test) == PATTERNS
    for pattern, metrics in test.items():
        assert metrics["count"] == TEST_SIZE
        assert all(math.isfinite(v) for v in metrics.values()), (pattern, metrics)
    assert test["audio+image"]["accuracy"] > CHANCE + 0.1, test

    _, model_class = small_model(config)
    facts = read(run_dir, "model.json")
    assert facts["class"] == model_class and facts["patterns"] == PATTERNS
    if model_class == "WhereToFuseModel":
        cost = build_model(config, INPUT_SHAPES, 10).cost()  # type: ignore[operator]
        assert facts["cost"] == {
            "tokens_per_layer": list(cost.tokens_per_layer),
            "side_tokens_per_layer": {m: list(t) for m, t in cost.side_tokens_per_layer.items()},
            "main_macs": cost.main_macs,
            "side_macs": cost.side_macs,
            "total_macs": cost.total_macs,
        }
    else:
        assert "cost" not in facts

    assert (run_dir / "checkpoints" / "best.ckpt").is_file()
    cli("evaluate", str(run_dir))
    assert_same_metrics(read(run_dir, "test_metrics.json"), test)


def _frozen_extractor_overrides(folder: Path) -> tuple[list[str], dict[str, dict[str, torch.Tensor]]]:
    """Weights of freshly built encoders of the small shape, saved as pre-trained encoders."""
    torch.manual_seed(0)
    overrides, states = [], {}
    for modality, shape in INPUT_SHAPES.items():
        encoder = build_encoder_from(CNNOptions(out_dim=32, widths=[8, 16]), shape)
        path = save_encoder(encoder, folder / f"{modality}.safetensors", {"pretraining_seconds": "2.5"})
        states[modality] = {k: v.clone() for k, v in encoder.state_dict().items()}
        overrides += [f"model.pretrained.{modality}={path}", f"model.freeze.{modality}=true"]
    return overrides, states


def test_early_feature_with_frozen_pretrained_extractors_encodes_each_split_once(tmp_path: Path) -> None:
    path = ROOT / "configs" / "avdigits" / "fusion" / "early_feature.yaml"
    frozen, states = _frozen_extractor_overrides(tmp_path)
    config = load_config(path, [*tiny_overrides(path, tmp_path / "runs"), *frozen])
    result = execute_run(config, tmp_path / "frozen")

    timing = read(result.run_dir, "timing.json")
    assert timing["feature_cache"] > 0
    assert timing["pretraining"] == {"audio": 2.5, "image": 2.5}
    facts = read(result.run_dir, "model.json")
    assert facts["class"] == "CachedFeatureModel"
    assert 0 < facts["trainable_parameters"] < facts["parameters"]
    assert result.epoch_metrics[-1]["train"]["loss"] < result.epoch_metrics[0]["train"]["loss"]
    assert list(result.test_metrics) == PATTERNS
    # the extractors hold the pre-trained weights, untouched by training
    checkpoint = torch.load(result.run_dir / "checkpoints" / "best.ckpt", weights_only=True)
    for modality, state in states.items():
        prefix = f"model.inner.extractors.{modality}."
        trained = {k.removeprefix(prefix): v for k, v in checkpoint["state_dict"].items() if k.startswith(prefix)}
        assert trained.keys() == state.keys()
        for key, value in state.items():
            torch.testing.assert_close(trained[key], value, msg=f"{modality} layer {key}")
    reloaded = execute_run(config, result.run_dir, skip_train=True)
    assert_same_metrics(reloaded.test_metrics, result.test_metrics)


def test_partly_frozen_extractors_train_without_the_cache(tmp_path: Path) -> None:
    path = ROOT / "configs" / "avdigits" / "fusion" / "early_feature.yaml"
    frozen, _ = _frozen_extractor_overrides(tmp_path)
    overrides = [o for o in frozen if o != "model.freeze.audio=true"]
    config = load_config(path, [*tiny_overrides(path, tmp_path / "runs"), *overrides, "training.epochs=1"])
    result = execute_run(config, tmp_path / "partial")
    assert result.timing["feature_cache"] == 0
    assert read(result.run_dir, "model.json")["class"] == "FeatureEarlyFusionModel"


@pytest.fixture(scope="module")
def pretrained_encoders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Run folders of both encoders pre-trained on the tiny subset (as ``fusebench pretrain``), shared."""
    folder = tmp_path_factory.mktemp("pretrain")
    with single_thread():
        return {
            m: execute_run(tiny_pretrain_config(folder, m, ["experiment.seed=1"]), folder / m).run_dir
            for m in INPUT_SHAPES
        }


@pytest.mark.slow
@pytest.mark.parametrize("name", ["late_attention", "contrastive"])
def test_fusion_fine_tunes_encoders_pretrained_by_fusebench(
    name: str, pretrained_encoders: dict[str, Path], tmp_path: Path
) -> None:
    path = ROOT / "configs" / "avdigits" / "fusion" / f"{name}.yaml"
    loads = [f"model.pretrained.{m}={d / 'encoders' / f'{m}.safetensors'}" for m, d in pretrained_encoders.items()]
    config = load_config(path, [*tiny_overrides(path, tmp_path / "runs"), *loads, "training.epochs=1"])
    for modality, run_dir in pretrained_encoders.items():  # same kind and shape, or loading would fail
        assert config.model.encoders[modality] == load_config(run_dir / "config.yaml").model.encoders[modality]
    pretrained = execute_run(config, tmp_path / "pretrained")
    scratch = execute_run(
        load_config(path, [*tiny_overrides(path, tmp_path / "runs"), "training.epochs=1"]), tmp_path / "scratch"
    )
    timing = read(pretrained.run_dir, "timing.json")
    assert set(timing["pretraining"]) == {"audio", "image"} and timing["pretraining_total"] > 0
    # one epoch on top of encoders that already know some digits beats one epoch from scratch
    first = [r.epoch_metrics[0]["validation"]["audio+image"]["accuracy"] for r in (pretrained, scratch)]
    assert first[0] > first[1] + 0.1, first


@pytest.mark.parametrize("name", ["early_token", "mid_where_to_fuse"])
def test_token_models_refuse_pretrained_encoder_weights(name: str, tmp_path: Path) -> None:
    path = ROOT / "configs" / "avdigits" / "fusion" / f"{name}.yaml"
    config = load_config(path, [f"model.pretrained.audio={tmp_path / 'audio.safetensors'}"])
    with pytest.raises(ValueError, match=r"`model.pretrained.audio` is set but .* builds its own tokenisers"):
        build_model(config, INPUT_SHAPES, 10)


@pytest.mark.parametrize(
    ("override", "match"),
    [
        pytest.param("model.missing_strategy=learned", r"applies to late fusion only.*params.missing", id="missing"),
        pytest.param("model.fusion.hidden_dim=32", r"do not apply to fusion `mid/where_to_fuse`", id="hidden-dim"),
    ],
)
def test_late_fusion_settings_are_not_silently_ignored_by_mid_fusion(override: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):  # at validation, before any data or model
        load_config(ROOT / "configs" / "avdigits" / "fusion" / "mid_where_to_fuse.yaml", [override])
