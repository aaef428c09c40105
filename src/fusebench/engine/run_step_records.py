"""The typed records the steps of one run hand each other (:mod:`fusebench.engine.run_steps`).

data -> :class:`PreparedData`, build -> :class:`BuiltModel`, fit -> :class:`FittedModel`,
export -> :class:`ExportedEncoder`, test -> :class:`~fusebench.engine.run_result.RunResult`.
Frozen, so a step cannot change what an earlier one measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from fusebench.config import RunConfig
from fusebench.data.registry import Split
from fusebench.engine.datasets import DataSplits
from fusebench.engine.module import FusionModule
from fusebench.engine.scale import Placement


@dataclass(frozen=True)
class PreparedData:
    """The data step's record: the run's settings, splits and task, and where it runs.

    Attributes:
        config: the run's config, with ``gradient_blending: auto`` resolved to weights.
        run_dir: the run folder.
        skip_train: re-evaluation of a completed training (nothing is trained or saved).
        skip_test: no test-split evaluation.
        device: the resolved device (``cpu``/``cuda``).
        where: the scale-out placement (``engine.scale.placement``).
        memory_scope: the scope of the memory peak ``resources.json`` reports.
        started: ``time.perf_counter()`` at the run's start (``timing.json``'s ``total``).
        data: the splits, restricted to the run's modalities.
        metric_names: the metrics the run reports.
        primary: the metric it checkpoints and reports on.
        seconds: seconds to load the data (``timing.json``'s ``data``).
        blending_seconds: seconds of the offline gradient-blending estimate (0 without one).
    """

    config: RunConfig
    run_dir: Path
    skip_train: bool
    skip_test: bool
    device: str
    where: Placement
    memory_scope: str
    started: float
    data: DataSplits
    metric_names: list[str]
    primary: str
    seconds: float
    blending_seconds: float


@dataclass(frozen=True)
class BuiltModel:
    """The build step's record: the model and the splits it trains on.

    Attributes:
        model: the model (wrapped around cached frozen features or tokens when those are cached).
        data: the splits the model consumes (cached features replace frozen modalities' inputs).
        input_shapes: the raw inputs' shapes, per modality.
        raw_test: the raw test split; inference throughput is measured from raw inputs.
        cache_seconds: seconds spent caching frozen features or tokens (0 without a cache).
    """

    model: torch.nn.Module
    data: DataSplits
    input_shapes: dict[str, tuple[int, ...]]
    raw_test: Split
    cache_seconds: float


@dataclass(frozen=True)
class FittedModel:
    """The fit step's record: the trained module (best checkpoint loaded) and its epochs.

    Attributes:
        module: the Lightning module; its ``model`` is :attr:`BuiltModel.model`, on the device.
        history: one record per epoch (``epoch_metrics.json``).
        seconds: seconds in ``trainer.fit`` (0 for re-evaluation).
        checkpoints: the run's checkpoint folder.
        steps_per_epoch: optimiser steps per epoch.
    """

    module: FusionModule
    history: list[dict[str, Any]]
    seconds: float
    checkpoints: Path
    steps_per_epoch: int


@dataclass(frozen=True)
class ExportedEncoder:
    """The export step's record.

    Attributes:
        path: the saved pre-trained encoder (``encoders/<modality>.safetensors``), or None
            when the run pre-trains nothing or only re-evaluates.
    """

    path: Path | None
