"""engine/module: FusionModule in a real (tiny) Lightning fit — epoch records, optimiser groups, frozen encoders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from tests._helpers.runs import tiny_config

from fusebench.engine.build import build_model, frozen_modalities
from fusebench.engine.datasets import DataSplits, eval_loader, run_splits, train_loader
from fusebench.engine.module import FusionModule


def _fit(tmp_path: Path, overrides: list[str]) -> tuple[FusionModule, DataSplits, list[dict[str, Any]], dict[str, Any]]:
    config = tiny_config(
        tmp_path,
        ["data.limit={train: 96, validation: 32, test: 8}", "training.epochs=2", "data.batch_size=32", *overrides],
    )
    L.seed_everything(0, workers=True, verbose=False)
    data = run_splits(config)
    model = build_model(config, data.input_shapes, data.task.output_size)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    records: list[dict[str, Any]] = []
    module = FusionModule(
        model,
        data.modalities,
        data.task,
        optimizer=config.training.optimizer,
        scheduler=config.training.scheduler,
        metric_names=["accuracy"],
        primary="accuracy",
        frozen=frozen_modalities(config),
        on_epoch_record=records.append,
    )
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        deterministic=True,
        default_root_dir=str(tmp_path),
    )
    trainer.fit(
        module,
        train_dataloaders=train_loader(data.train, config.data, 0),
        val_dataloaders=eval_loader(data.validation, config.data),
    )
    return module, data, records, before


def test_each_epoch_is_recorded_with_train_and_validation_metrics_per_pattern(tmp_path: Path) -> None:
    module, data, records, _ = _fit(tmp_path, [])
    assert [r["epoch"] for r in records] == [1, 2] and module.history == records
    for record in records:
        assert torch.isfinite(torch.tensor(record["train"]["loss"]))
        validation = record["validation"]
        assert set(module.pattern_names) <= set(validation) and module.pattern_names[0] == "audio+image"
        for pattern in module.pattern_names:
            assert 0.0 <= validation[pattern]["accuracy"] <= 1.0 and validation[pattern]["loss"] > 0
        assert validation["loss"] == validation["audio+image"]["loss"]
        assert record["train"]["timing"]["seconds"] > 0
    assert data.modalities == ("audio", "image")


def test_encoder_lr_is_its_own_parameter_group_and_a_frozen_encoder_does_not_change(tmp_path: Path) -> None:
    module, _, records, before = _fit(tmp_path, ["training.optimizer.encoder_lr=0.0005", "model.freeze.image=true"])
    assert records[-1]["learning_rate"] == pytest.approx([0.003, 0.0005])  # the fusion + head, then the encoders
    after = module.model.state_dict()
    image = [k for k in before if k.startswith("encoders.image.")]
    audio = [k for k in before if k.startswith("encoders.audio.") and before[k].is_floating_point()]
    assert image and all(torch.equal(before[k], after[k]) for k in image)  # weights and BatchNorm statistics
    assert any(not torch.equal(before[k], after[k]) for k in audio)
