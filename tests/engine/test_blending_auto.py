"""``gradient_blending: auto``: offline G-Blend (Wang et al., CVPR 2020, Algorithm 1) in one run."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import pytest
import torch
from torch.nn import functional as F

from fusebench.config import RunConfig, apply_overrides, validate_config
from fusebench.data.loader import TensorLoader
from fusebench.engine.build import build_model
from fusebench.engine.datasets import DataSplits, load_splits
from fusebench.engine.evaluate import evaluate_patterns
from fusebench.engine.run import execute_run
from fusebench.engine.strategies import GradientBlending, build_strategies
from fusebench.engine.strategies.blending_auto import _head_config, estimate_auto_blending, holdout_split

MODALITIES = ("audio", "image")


def config(runs_dir: Path, overrides: list[str] | None = None) -> RunConfig:
    raw = {
        "experiment": {"name": "gblend", "seed": 0, "runs_dir": str(runs_dir), "threads": 1},
        "data": {"limit": {"train": 300, "validation": 100, "test": 100}, "batch_size": 64},
        "model": {
            "encoders": {
                "audio": {"kind": "cnn", "out_dim": 32, "widths": [8, 16]},
                "image": {"kind": "cnn", "out_dim": 24, "widths": [8, 16]},
            },
            "fusion": {"type": "late", "method": "concat", "hidden_dim": 64, "dropout": 0.1},
        },
        "training": {
            "epochs": 1,
            "optimizer": {"lr": 0.003},
            "strategy": {"gradient_blending": "auto", "gradient_blending_auto": {"epochs": 2}},
        },
        "logging": {"progress_bar": False},
    }
    return validate_config(apply_overrides(raw, overrides or []))


@pytest.fixture(scope="module")
def data() -> DataSplits:
    return load_splits(config(Path("unused")).data, MODALITIES, seed=0)


def test_holdout_split_is_seeded_disjoint_and_complete(data: DataSplits) -> None:
    train, held = holdout_split(data.train, 0.2, seed=0)
    assert (len(train), len(held)) == (240, 60)
    again = holdout_split(data.train, 0.2, seed=0)[1]
    torch.testing.assert_close(again.target, held.target)
    rows = torch.cat([train.inputs["image"], held.inputs["image"]]).flatten(1)
    assert torch.unique(rows, dim=0).shape[0] == torch.unique(data.train.inputs["image"].flatten(1), dim=0).shape[0]
    assert holdout_split(data.train, 0.2, seed=1)[1].target.tolist() != held.target.tolist()
    with pytest.raises(ValueError, match=r"holdout_fraction` 0.001 of 300 training samples leaves 0 held out"):
        holdout_split(data.train, 0.001, seed=0)


def test_auto_weights_are_dg_over_do_squared_from_epoch_zero_to_n(data: DataSplits) -> None:
    cfg = config(Path("unused"))
    estimate = estimate_auto_blending(cfg, data)
    assert set(estimate.weights) == {"audio+image", "audio", "image"}
    assert (estimate.train_samples, estimate.holdout_samples, estimate.epochs) == (240, 60, 2)
    raw = {}
    for head in estimate.weights:  # Algorithm 1 by hand from the recorded losses, epochs 0 and N = 2
        train, held = estimate.train_loss[head], estimate.holdout_loss[head]
        assert len(train) == len(held) == 3
        gained = held[0] - held[2]
        over = (held[2] - train[2]) - (held[0] - train[0])
        assert estimate.statistics[head] == pytest.approx(
            {"generalization": gained, "overfitting": over, "ratio": abs(over / gained)}
        )
        raw[head] = max(gained, 0.0) / over**2
    assert estimate.weights == pytest.approx({h: v / sum(raw.values()) for h, v in raw.items()})
    # epoch 0 is the untrained naive fused model on the held-out part, in eval mode
    L.seed_everything(0, workers=True, verbose=False)
    model = build_model(_head_config(cfg, None), data.input_shapes, data.task.output_size)
    held = holdout_split(data.train, 0.2, seed=0)[1]
    logits = evaluate_patterns(model, TensorLoader(held.inputs, held.target, 256), MODALITIES, [MODALITIES])
    expected = float(F.cross_entropy(logits.logits["audio+image"], held.target))
    assert estimate.holdout_loss["audio+image"][0] == pytest.approx(expected, rel=1e-5)


@pytest.mark.slow
def test_auto_blending_estimates_then_trains_and_reevaluation_reuses_the_weights(
    tmp_path: Path, data: DataSplits
) -> None:
    cfg = config(tmp_path)
    result = execute_run(cfg, tmp_path / "run", data=data)
    record = json.loads((tmp_path / "run" / "gradient_blending.json").read_text())
    assert sum(record["weights"].values()) == pytest.approx(1.0)
    assert record["train_samples"] == 240 and len(record["holdout_loss"]["audio"]) == 3
    assert result.timing["gradient_blending_estimate"] > 0
    weighted = cfg.training.strategy.model_copy(update={"gradient_blending": record["weights"]})
    model = build_model(cfg, data.input_shapes, data.task.output_size)
    (strategy,) = build_strategies(
        cfg.model_copy(update={"training": cfg.training.model_copy(update={"strategy": weighted})}),
        model,
        MODALITIES,
        data.task,
    )
    assert isinstance(strategy, GradientBlending) and strategy.fused_weight == record["weights"]["audio+image"]
    again = execute_run(cfg, tmp_path / "run", skip_train=True, data=data)  # `fusebench evaluate`
    assert again.test_metrics == result.test_metrics
    assert json.loads((tmp_path / "run" / "gradient_blending.json").read_text()) == record


def test_auto_is_resolved_by_the_run_not_by_build_strategies(data: DataSplits) -> None:
    cfg = config(Path("unused"))
    with pytest.raises(ValueError, match="gradient_blending: auto` is resolved before the strategies are built"):
        build_strategies(cfg, build_model(cfg, data.input_shapes, data.task.output_size), MODALITIES, data.task)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        pytest.param(["training.strategy.aux_heads.audio=0.5"], "either `training.strategy.aux_heads` or", id="aux"),
        pytest.param(
            [
                "model.fusion.type=early",
                "model.fusion.method=token",
                "model.fusion.hidden_dim=128",
                "model.fusion.dropout=0.2",
                "model.fusion.params={dim: 16, heads: 2, depth: 1}",
            ],
            "has no per-modality encoders",
            id="token",
        ),
        pytest.param(
            ["training.strategy.gradient_blending_auto.holdout=0.3"],
            r"gradient_blending_auto.holdout` \(did you mean `training.strategy.gradient_blending_auto"
            r".holdout_fraction`\?\)",
            id="unknown-key",
        ),
    ],
)
def test_auto_rejects_what_it_cannot_estimate_before_training(
    data: DataSplits, overrides: list[str], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        estimate_auto_blending(config(Path("unused"), overrides), data)
