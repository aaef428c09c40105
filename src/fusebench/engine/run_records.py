"""What a run's record files say: ``env.json``, ``timing.json``, ``model.json``, ``resources.json``.

Pure functions of the finished run's objects; :mod:`fusebench.engine.run_steps` writes their
results, so every file's keys live in one place.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

import fusebench
from fusebench.config import RunConfig
from fusebench.data.patterns import pattern_names
from fusebench.engine.build import used_settings
from fusebench.engine.feature_cache import unwrap
from fusebench.engine.footprint import inference_throughput, peak_memory, weights_bytes
from fusebench.models.midfusion import WhereToFuseModel
from fusebench.models.weights import read_encoder_metadata


def environment(config: RunConfig, device: str, command: Sequence[str] | None) -> dict[str, Any]:
    import lightning

    return {
        "fusebench": fusebench.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "platform": platform.platform(),
        "device": device,
        "threads": torch.get_num_threads(),
        "seed": config.experiment.seed,
        "command": list(command) if command is not None else sys.argv,
        "pid": os.getpid(),
    }


def pretraining_seconds(config: RunConfig) -> dict[str, float]:
    """Seconds each loaded pre-trained encoder cost, read from its safetensors header."""
    seconds: dict[str, float] = {}
    for modality, path in used_settings(config, config.model.pretrained).items():
        metadata = read_encoder_metadata(path)
        seconds[modality] = float(metadata.get("pretraining_seconds", "nan"))
    return seconds


def resources(
    model: torch.nn.Module,
    test: Any,
    modalities: Sequence[str],
    config: RunConfig,
    device: str,
    checkpoints: Path,
    memory_scope: str,
) -> dict[str, Any]:
    """``resources.json``: model size on disk, peak memory, inference throughput (``engine.footprint``)."""
    from fusebench.engine.strategies.base import ATTACHED_MODULES

    inner = unwrap(model)
    best = checkpoints / "best.ckpt"
    record: dict[str, Any] = {
        "weights_bytes": weights_bytes(inner, ATTACHED_MODULES),
        "checkpoint_bytes": best.stat().st_size if best.is_file() else None,
    }
    if len(test):
        record |= inference_throughput(
            inner, test.inputs, test.target, modalities, config.data.eval_batch_size, device, test.lengths
        )
    return record | peak_memory(device, memory_scope)


def timing(
    config: RunConfig,
    history: list[dict[str, Any]],
    data_seconds: float,
    fit_seconds: float,
    test_seconds: float,
    total: float,
    train_samples: int,
    steps_per_epoch: int | None = None,
) -> dict[str, Any]:
    training = sum(e["train"]["timing"]["seconds"] for e in history)
    training_cpu = sum(e["train"]["timing"].get("cpu_seconds", 0.0) for e in history)  # process CPU seconds
    validation = sum(e.get("validation", {}).get("timing", {}).get("seconds", 0.0) for e in history)
    validation_cpu = sum(e.get("validation", {}).get("timing", {}).get("cpu_seconds", 0.0) for e in history)
    pretraining = pretraining_seconds(config)
    return {
        "pretraining": pretraining,
        "pretraining_total": sum(pretraining.values()),
        "data": data_seconds,
        "fit": fit_seconds,
        "training": training,
        "training_cpu": training_cpu,  # this process's CPU seconds (all its threads) in the training epochs
        "validation": validation,
        "validation_cpu": validation_cpu,
        "test": test_seconds,
        "total": total,
        "epochs": len(history),
        "train_samples_per_second": (train_samples * len(history) / training) if training > 0 else None,
        # optimiser steps per second of training (the measure of "Where to fuse", 002 Fig. 17)
        "train_steps_per_second": (steps_per_epoch * len(history) / training)
        if training > 0 and steps_per_epoch
        else None,
        # the same per CPU second of the run's process: other jobs on a shared machine do not inflate it
        "train_steps_per_cpu_second": (steps_per_epoch * len(history) / training_cpu)
        if training_cpu > 0 and steps_per_epoch
        else None,
    }


def model_facts(model: torch.nn.Module, modalities: Sequence[str]) -> dict[str, Any]:
    """What ``model.json`` says about the model: class, parameter counts, patterns, compute cost.

    ``cost`` is present for models with a ``cost()`` method (``WhereToFuseModel``): tokens per
    main block, tokens per block of each side stack, and the multiply-accumulates per sample
    of the transformer blocks (main, side, total) with every modality present, so reports
    can set accuracy against compute.
    """
    parameters = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    facts: dict[str, Any] = {
        "class": type(model).__name__,
        "parameters": parameters,
        "trainable_parameters": trainable,
        "patterns": pattern_names(modalities),
    }
    inner = unwrap(model)  # a where-to-fuse model on cached frozen tokens keeps its cost
    if isinstance(inner, WhereToFuseModel):
        cost = inner.cost()
        facts["cost"] = {
            "tokens_per_layer": [int(n) for n in cost.tokens_per_layer],
            "side_tokens_per_layer": {m: [int(n) for n in t] for m, t in sorted(cost.side_tokens_per_layer.items())},
            "main_macs": int(cost.main_macs),
            "side_macs": int(cost.side_macs),
            "decoder_macs": int(cost.decoder_macs),
            "total_macs": int(cost.total_macs),
        }
    return facts
