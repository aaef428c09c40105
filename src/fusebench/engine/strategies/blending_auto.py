"""``gradient_blending: auto``: the two steps of offline Gradient-Blending in one command.

Wang, Tran and Feiszli, "What makes training multi-modal classification networks hard?",
CVPR 2020, Sec. 3.3 and Algorithm 1 (offline G-Blend): hold out part of the training set
(``V``, the paper's proxy for the true distribution), train each unimodal branch and the
naive fused model for ``N`` epochs on the rest, measure on both parts how much each head
generalised (``dG = L^V(0) - L^V(N)``) and overfitted (``dO = O(N) - O(0)`` with
``O = L^V - L^T``), set ``w_k ∝ dG_k / dO_k^2`` (summing to 1) and train the blended
model with those weights (``blending.GradientBlending``).

How fusebench maps the recipe:

- the held-out part is a seeded random ``holdout_fraction`` of the training split; the
  estimation never sees the validation or test split;
- a unimodal branch is that modality's encoder plus a linear head (the model ``fusebench
  pretrain`` trains, with ``model.pretrained``/``model.freeze`` applied to it); the fused
  model is the configured model trained with the task loss alone (no strategies);
- ``L^T`` and ``L^V`` are eval-mode losses over the whole train and held-out parts, measured
  before training (epoch 0) and after each epoch, so ``O(0)`` is the untrained model's gap;
- the estimation trains on complete samples (the paper's setting), with the configured
  optimiser at a constant learning rate.

Everything measured goes to ``gradient_blending.json`` in the run directory; ``fusebench
evaluate`` reads the weights from there instead of estimating again.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import lightning as L
import torch
from torch import nn

from fusebench.config import RunConfig, SchedulerConfig, validate_config
from fusebench.data.loader import TensorLoader
from fusebench.data.patterns import pattern_name
from fusebench.engine.datasets import DataSplits, Split
from fusebench.engine.evaluate import evaluate_patterns
from fusebench.engine.metrics import metrics_by_pattern
from fusebench.engine.strategies.base import Stream, seeded_generator
from fusebench.engine.strategies.blending import blending_statistics, estimate_blending_weights
from fusebench.errors import ConfigError
from fusebench.io import atomic_write_json, read_json
from fusebench.models.contract import as_fusion_model
from fusebench.tasks import Task

RESULT_FILE = "gradient_blending.json"
_STREAM = Stream.BLENDING_HOLDOUT


@dataclass(frozen=True)
class BlendingEstimate:
    """What the offline estimation measured.

    Attributes:
        weights: head (``audio+image``, ``audio``, ...) -> blending weight, summing to 1.
        train_loss: head -> eval-mode loss on the training part, epochs 0..N.
        holdout_loss: head -> the same on the held-out part.
        statistics: head -> ``generalization`` (dG), ``overfitting`` (dO) and their ``ratio`` (OGR).
        epochs, holdout_fraction, overfitting: the settings used.
        train_samples, holdout_samples: sizes of the two parts.
        seconds: wall time of the whole estimation.
    """

    weights: dict[str, float]
    train_loss: dict[str, list[float]]
    holdout_loss: dict[str, list[float]]
    statistics: dict[str, dict[str, float]]
    epochs: int
    holdout_fraction: float
    overfitting: str
    train_samples: int
    holdout_samples: int
    seconds: float


def holdout_split(split: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    """``(train part, held-out part)``: a seeded random ``fraction`` of ``split`` held out."""
    n = len(split)
    held = round(fraction * n)
    if held < 1 or held >= n:
        raise ConfigError(
            f"`training.strategy.gradient_blending_auto.holdout_fraction` {fraction} of {n} training samples "
            f"leaves {held} held out and {n - held} to train on; both need at least one sample."
        )
    order = torch.randperm(n, generator=seeded_generator(seed, 0, _STREAM))
    return split.rows(order[held:].sort().values), split.rows(order[:held].sort().values)


class _HeadLosses(L.Callback):
    """Eval-mode loss of one head on the train and held-out parts: at fit start and after every epoch."""

    def __init__(self, parts: Mapping[str, Split], modalities: Sequence[str], batch_size: int, task: Task) -> None:
        self.parts = parts
        self.modalities = tuple(modalities)
        self.batch_size = batch_size
        self.task = task
        self.losses: dict[str, list[float]] = {name: [] for name in parts}

    def _record(self, module: L.LightningModule) -> None:
        pattern = pattern_name(self.modalities)
        for name, part in self.parts.items():
            loader = TensorLoader(part.inputs, part.target, self.batch_size, shuffle=False, lengths=part.lengths)
            evaluation = evaluate_patterns(
                cast(nn.Module, module.model), loader, self.modalities, [self.modalities], device=module.device
            )
            metrics = metrics_by_pattern(evaluation.logits, evaluation.target, self.task, [])
            self.losses[name].append(float(metrics[pattern]["loss"]))  # the task's loss

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._record(pl_module)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._record(pl_module)


def _head_config(config: RunConfig, modality: str | None) -> RunConfig:
    """The config of one estimation head: no strategies; a pre-training config for a modality."""
    raw: dict[str, Any] = config.model_dump(mode="json")
    raw["training"]["strategy"] = {}
    raw["training"]["early_stopping"] = {"enabled": False}
    if modality is not None:
        raw["pretrain"] = {"modality": modality, "data_fraction": 1.0}
        for section in ("pretrained", "freeze"):
            raw["model"][section] = {k: v for k, v in raw["model"][section].items() if k == modality}
    return validate_config(raw, "<gradient_blending: auto>")


def check_auto_blending(
    config: RunConfig, modalities: Sequence[str], train_samples: int, model: nn.Module | None = None
) -> dict[str, float]:
    """Raise now what the estimation would raise later; return stand-in weights to check the strategy with.

    Args:
        config: the run config (``gradient_blending: auto``).
        modalities: the run's modalities.
        train_samples: the size of the training split the estimate splits in two.
        model: the run's model, whose per-modality encoders the unimodal branches train.

    Raises:
        ConfigError: fewer than two modalities, ``aux_heads`` as well, a hold-out fraction
            that leaves a part empty, or a model without per-modality encoders.
    """
    if len(modalities) < 2:
        raise ConfigError(
            f"`training.strategy.gradient_blending: auto` needs at least two modalities, got {list(modalities)}."
        )
    if config.training.strategy.aux_heads:
        raise ConfigError(
            "Set either `training.strategy.aux_heads` or `training.strategy.gradient_blending: auto`: both weight "
            "the same unimodal heads."
        )
    fraction = config.training.strategy.gradient_blending_auto.holdout_fraction
    held = round(fraction * train_samples)
    if held < 1 or held >= train_samples:
        raise ConfigError(
            f"`training.strategy.gradient_blending_auto.holdout_fraction` {fraction} of {train_samples} training "
            f"samples leaves {held} held out and {train_samples - held} to train on; both need at least one sample."
        )
    if model is not None and as_fusion_model(model).encoder_modules() is None:
        raise ConfigError(_NO_ENCODERS.format(model=type(model).__name__))
    names = sorted(modalities)
    return {pattern_name(names): 1.0, **dict.fromkeys(names, 1.0)}


_NO_ENCODERS = (
    "`training.strategy.gradient_blending: auto` trains each modality's encoder alone as a unimodal "
    "branch, but `{model}` has no per-modality encoders (late fusion and feature early fusion have "
    "them); give fixed weights instead."
)


def _train_head(
    config: RunConfig, modality: str | None, parts: Mapping[str, Split], data: DataSplits, device: str
) -> dict[str, list[float]]:
    from fusebench.engine.build import build_model, frozen_modalities, load_pretrained
    from fusebench.engine.module import FusionModule

    head_config = _head_config(config, modality)
    modalities = (modality,) if modality is not None else data.modalities
    model: nn.Module = build_model(head_config, data.input_shapes, data.task.output_size, data.modality_info)
    if modality is not None:  # build_model leaves a pre-training model as initialised
        load_pretrained(model, head_config)
    elif as_fusion_model(model).encoder_modules() is None:
        raise ConfigError(_NO_ENCODERS.format(model=type(model).__name__))
    views = {name: part.only(tuple(modalities)) for name, part in parts.items()}
    recorder = _HeadLosses(views, modalities, head_config.data.eval_batch_size, data.task)
    module = FusionModule(
        model,
        modalities,
        data.task,
        optimizer=head_config.training.optimizer,
        scheduler=SchedulerConfig(name="none"),
        metric_names=[],
        frozen=frozen_modalities(head_config),
    )
    trainer = L.Trainer(
        accelerator="gpu" if device == "cuda" else "cpu",
        devices=1,
        max_epochs=config.training.strategy.gradient_blending_auto.epochs,
        deterministic=True,
        callbacks=[recorder],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
    )
    train = views["train"]
    loader = TensorLoader(
        train.inputs,
        train.target,
        head_config.data.batch_size,
        shuffle=True,
        seed=config.experiment.seed,
        lengths=train.lengths,
    )
    with warnings.catch_warnings():  # no validation loop on purpose: the recorder measures both parts
        warnings.filterwarnings("ignore", message=".*no `val_dataloader`.*")
        trainer.fit(module, train_dataloaders=loader)
    return recorder.losses


def estimate_auto_blending(config: RunConfig, data: DataSplits, device: str = "cpu") -> BlendingEstimate:
    """Run offline G-Blend (module docstring) and return the weights and what they rest on.

    Raises:
        ValueError: for a run with fewer than two modalities, a hold-out split that leaves a
            part empty, or heads none of which generalised in the epochs given.
    """
    settings = config.training.strategy.gradient_blending_auto
    started = time.perf_counter()
    check_auto_blending(config, data.modalities, len(data.train))
    train, holdout = holdout_split(data.train, settings.holdout_fraction, config.experiment.seed)
    parts = {"train": train, "holdout": holdout}
    train_loss: dict[str, list[float]] = {}
    holdout_loss: dict[str, list[float]] = {}
    heads: list[str | None] = [None, *data.modalities]
    for modality in heads:
        L.seed_everything(config.experiment.seed, workers=True, verbose=False)
        losses = _train_head(config, modality, parts, data, device)
        name = modality or pattern_name(data.modalities)
        train_loss[name], holdout_loss[name] = losses["train"], losses["holdout"]
    end = settings.epochs  # the window from epoch 0 (initialisation) to epoch N, Algorithm 1
    statistics = blending_statistics(train_loss, holdout_loss, 0, end, settings.overfitting)
    weights = estimate_blending_weights(train_loss, holdout_loss, 0, end, settings.overfitting)
    return BlendingEstimate(
        weights,
        train_loss,
        holdout_loss,
        statistics,
        settings.epochs,
        settings.holdout_fraction,
        settings.overfitting,
        len(train),
        len(holdout),
        time.perf_counter() - started,
    )


def resolve_auto_blending(
    config: RunConfig, data: DataSplits, device: str, run_dir: Path, reuse: bool
) -> tuple[RunConfig, float]:
    """``config`` with ``gradient_blending: auto`` replaced by estimated weights, and the seconds spent.

    The estimate is written to ``run_dir/gradient_blending.json``; with ``reuse`` (re-evaluating
    a trained run) the weights are read back from it instead.
    """
    file = run_dir / RESULT_FILE
    if reuse:
        if not file.is_file():
            raise FileNotFoundError(
                f"`gradient_blending: auto` was trained with weights recorded in `{file}`, which does not exist."
            )
        weights = {str(k): float(v) for k, v in read_json(file)["weights"].items()}
        seconds = 0.0
    else:
        estimate = estimate_auto_blending(config, data, device)
        atomic_write_json(file, {"method": "offline G-Blend, Wang et al. CVPR 2020, Algorithm 1", **asdict(estimate)})
        weights, seconds = estimate.weights, estimate.seconds
    strategy = config.training.strategy.model_copy(update={"gradient_blending": weights})
    training = config.training.model_copy(update={"strategy": strategy})
    return config.model_copy(update={"training": training}), seconds
