"""What every training process of a run sets up the same way: rank 0 and its DDP followers.

Rank 0 (:mod:`fusebench.engine.run_steps`) and the processes of rank > 0
(:mod:`fusebench.engine.follower`) must agree on the device, the placement, the model, the
inputs it trains on and the LightningModule around it — the collectives need every process
to train the same thing. Both build through here, so they cannot drift apart.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable

import torch

from fusebench.config import RunConfig
from fusebench.engine.build import build_model, frozen_modalities
from fusebench.engine.datasets import DataSplits
from fusebench.engine.feature_cache import cache_features, can_cache
from fusebench.engine.module import FusionModule
from fusebench.engine.scale import Placement, placement
from fusebench.engine.token_cache import cache_tokens, frozen_token_modalities
from fusebench.errors import ConfigError


def resolve_device(name: str) -> str:
    """``experiment.device`` resolved: ``auto`` picks CUDA when there is one."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("`experiment.device` is `cuda` but no CUDA device is available; use `cpu` or `auto`.")
    return name


def quiet_lightning() -> None:
    """Lightning's start-up banner lines say nothing a fusebench user needs."""
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*module\\(s\\) in eval mode at the start of training.*")


def start_process(config: RunConfig) -> tuple[str, Placement]:
    """Quiet Lightning, set the thread count, and resolve the device and its checked placement.

    Raises:
        ConfigError: no such device, or settings that cannot run on it (``engine.scale.placement``).
    """
    quiet_lightning()
    if config.experiment.threads:
        torch.set_num_threads(config.experiment.threads)
    device = resolve_device(config.experiment.device)
    return device, placement(config, device)


def build_cached(config: RunConfig, data: DataSplits, device: str) -> tuple[torch.nn.Module, DataSplits, float]:
    """The run's model and the splits it trains on, with the seconds spent caching frozen outputs.

    With ``training.cache_frozen_features`` a frozen late-fusion encoder's features, or a
    where-to-fuse model's frozen encoder tokens (002 Sec. 2.2), are computed once and replace
    the raw inputs.
    """
    model = build_model(config, data.input_shapes, data.task.output_size, data.modality_info)
    if not config.training.cache_frozen_features:
        return model, data, 0.0
    cache_start = time.perf_counter()
    if can_cache(model, frozen_modalities(config)):
        model, data = cache_features(model, data, config.data.eval_batch_size, device)
    elif frozen_token_modalities(model):
        model, data = cache_tokens(model, data, config.data.eval_batch_size)
    else:
        return model, data, 0.0
    return model, data, time.perf_counter() - cache_start


def fusion_module(
    config: RunConfig,
    model: torch.nn.Module,
    data: DataSplits,
    *,
    metric_names: list[str],
    primary: str,
    training: bool = True,
    on_epoch_record: Callable[[dict[str, float]], None] | None = None,
) -> FusionModule:
    """The LightningModule that trains ``model`` on ``data`` as ``config`` says.

    ``training=False`` (re-evaluating a trained run) leaves out the training strategies:
    they only add losses and gradient changes, and their attached modules are not in the
    checkpoint's evaluation path.
    """
    from fusebench.engine.strategies import build_strategies

    return FusionModule(
        model,
        data.modalities,
        data.task,
        optimizer=config.training.optimizer,
        scheduler=config.training.scheduler,
        metric_names=metric_names,
        primary=primary,
        frozen=frozen_modalities(config),
        strategies=(
            build_strategies(config, model, data.modalities, data.task, dataset_modalities=data.dataset_modalities)
            if training
            else []
        ),
        on_epoch_record=on_epoch_record,
        gradient_clip=config.training.gradient_clip,
    )


def steps_per_epoch(config: RunConfig, data: DataSplits) -> int:
    """Optimiser steps in one epoch of one process (a last partial batch included)."""
    return -(-len(data.train) // config.data.batch_size)
