"""One run, start to finish: data, model, Lightning fit, all-pattern test, and the run directory.

Every result file is written atomically as soon as it exists (epoch metrics after each
epoch), and ``status.json`` says whether the run is running, completed or failed — with
the error — so a crashed or killed run never passes for a finished one.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import sys
import time
import traceback
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from safetensors.torch import save as save_tensors

import fusebench
from fusebench.config import RunConfig, dump_config
from fusebench.data.patterns import pattern_names
from fusebench.engine.build import build_model, frozen_modalities, used_settings
from fusebench.engine.checkpoint import load_model_state
from fusebench.engine.datasets import DataSplits, eval_loader, recipe_digest, run_splits, run_task
from fusebench.engine.evaluate import evaluate_patterns
from fusebench.engine.feature_cache import cache_features, can_cache, unwrap
from fusebench.engine.footprint import (
    RESOURCES_FILE,
    inference_throughput,
    peak_memory,
    reset_peak_memory,
    weights_bytes,
)
from fusebench.engine.metrics import metrics_by_pattern
from fusebench.engine.module import FusionModule
from fusebench.engine.run_folder import (
    RunState,
    locked,
    prepare_for_training,
    require_completed_training,
    write_evaluation,
    write_status,
)
from fusebench.engine.run_result import RunResult
from fusebench.engine.scale import autocast, is_follower, placement
from fusebench.engine.strategies.base import ATTACHED_MODULES, TrainingStrategy
from fusebench.engine.token_cache import cache_tokens, frozen_token_modalities
from fusebench.engine.trainer import EpochRecorder, RunData, make_trainer
from fusebench.errors import ConfigError
from fusebench.io import atomic_write_bytes, atomic_write_json, atomic_write_text, read_json
from fusebench.models.contract import as_fusion_model
from fusebench.models.midfusion import WhereToFuseModel
from fusebench.models.weights import read_encoder_metadata, save_encoder


def resolve_device(name: str) -> str:
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


def execute_run(
    config: RunConfig,
    run_dir: str | Path,
    *,
    skip_train: bool = False,
    skip_test: bool = False,
    command: Sequence[str] | None = None,
    data: DataSplits | None = None,
    overwrite: bool = False,
) -> RunResult:
    """Train (or with ``skip_train`` re-evaluate) ``config`` in ``run_dir``, holding the folder's lock.

    Training refuses a folder that already holds a run unless ``overwrite`` (which clears it
    first), and records its state in ``status.json``: ``completed``, ``failed`` with the error,
    or ``interrupted`` (Ctrl-C, SIGTERM). Re-evaluation needs a completed training and records
    its own state in ``evaluation.json``; it never changes ``status.json``.

    Raises:
        RunFolderError: the folder is in use, holds a run (without ``overwrite``), or — for
            re-evaluation — its training did not complete.
        KeyboardInterrupt: the run was interrupted (also for SIGTERM and Lightning's exit on Ctrl-C).
    """
    run_dir = Path(run_dir)
    if is_follower() and not skip_train:  # a DDP process of rank > 0: global rank 0 owns the folder
        from fusebench.engine.follower import follow_run

        follow_run(config, run_dir, data)
        return RunResult(run_dir, RunState.FOLLOWER)
    if skip_train:  # before the lock, which would create the folder
        require_completed_training(run_dir)
    with locked(run_dir, "experiment.runs_dir"):
        if skip_train:
            require_completed_training(run_dir)
            record = write_evaluation
        else:
            prepare_for_training(run_dir, overwrite)
            record = write_status
        record(run_dir, RunState.RUNNING)
        try:
            result = _execute(config, run_dir, skip_train, skip_test, command, data)
        except (KeyboardInterrupt, SystemExit) as error:  # Lightning turns Ctrl-C into `sys.exit(1)`
            record(run_dir, RunState.INTERRUPTED, error="Interrupted (Ctrl-C or SIGTERM) before it finished.")
            raise KeyboardInterrupt from error
        except BaseException as error:
            record(run_dir, RunState.FAILED, error=f"{type(error).__name__}: {error}", traceback=traceback.format_exc())
            raise
        record(run_dir, RunState.COMPLETED)
    return RunResult(run_dir, RunState.COMPLETED, *result)


def _execute(
    config: RunConfig,
    run_dir: Path,
    skip_train: bool,
    skip_test: bool,
    command: Sequence[str] | None,
    data: DataSplits | None,
) -> tuple[dict[str, dict[str, float]], list[dict[str, Any]], dict[str, Any], str]:
    quiet_lightning()
    started = time.perf_counter()
    if config.experiment.threads:
        torch.set_num_threads(config.experiment.threads)
    device = resolve_device(config.experiment.device)
    where = placement(config, device)
    memory_scope = reset_peak_memory(device)
    if skip_train:  # re-evaluation: config.yaml, env.json and timing.json describe the training; keep them
        atomic_write_json(run_dir / "env.evaluate.json", environment(config, device, command))
    else:
        atomic_write_text(run_dir / "config.yaml", dump_config(config))
        atomic_write_json(run_dir / "env.json", environment(config, device, command))
    L.seed_everything(config.experiment.seed, workers=True, verbose=False)
    if data is None:
        data = run_splits(config)
    metric_names, primary = run_task(config, data.task)
    data_seconds = time.perf_counter() - started
    if not skip_train:  # which data the training saw; `--resume` re-runs a study node whose data changed
        atomic_write_json(
            run_dir / "data.json",
            {
                "recipe_digest": recipe_digest(config.data),
                "dataset": config.data.dataset,
                "modalities": list(data.modalities),
                "task": data.task.describe(),
                "metrics": {"names": metric_names, "primary": primary},
                "samples": {name: len(data.split(name)) for name in ("train", "validation", "test")},
                "constant_output": data.task.constant_output(data.train.target).tolist(),
            },
        )
    blending_seconds = 0.0
    if config.training.strategy.gradient_blending == "auto":  # offline G-Blend first (Wang et al., 2020)
        from fusebench.engine.strategies.blending_auto import resolve_auto_blending

        config, blending_seconds = resolve_auto_blending(config, data, device, run_dir, reuse=skip_train)
        L.seed_everything(config.experiment.seed, workers=True, verbose=False)
    if skip_train:  # the checkpoint holds every weight; the pre-trained files may have moved or gone
        built = config.model_copy(deep=True)
        built.model.pretrained = {}
        model = build_model(built, data.input_shapes, data.task.output_size, data.modality_info)
    else:
        model = build_model(config, data.input_shapes, data.task.output_size, data.modality_info)
    input_shapes = data.input_shapes  # of the raw inputs (cached features replace `data` below)
    cache_seconds = 0.0
    raw_test = data.test  # inference throughput is measured from raw inputs, even when training uses cached features
    if config.training.cache_frozen_features and can_cache(model, frozen_modalities(config)):
        cache_start = time.perf_counter()
        model, data = cache_features(model, data, config.data.eval_batch_size, device)
        cache_seconds = time.perf_counter() - cache_start
    elif config.training.cache_frozen_features and frozen_token_modalities(model):  # where-to-fuse, 002 Sec. 2.2
        cache_start = time.perf_counter()
        model, data = cache_tokens(model, data, config.data.eval_batch_size)
        cache_seconds = time.perf_counter() - cache_start
    run_data = RunData(data, config, where)
    recorder = EpochRecorder(run_dir, run_data, config)
    module = FusionModule(
        model,
        data.modalities,
        data.task,
        config.training.optimizer,
        config.training.scheduler,
        metric_names,
        primary,
        frozen_modalities(config),
        strategies=[] if skip_train else _strategies(config, model, data),  # training-only additions
        on_epoch_record=recorder,
        gradient_clip=config.training.gradient_clip,
    )
    fit_seconds = 0.0
    checkpoints = run_dir / "checkpoints"
    steps = -(-len(data.train) // config.data.batch_size)  # per epoch, for the progress bar's redraws
    if not skip_train:
        trainer = make_trainer(config, where, run_dir, checkpoints, steps)
        fit_start = time.perf_counter()
        trainer.fit(module, datamodule=run_data)
        fit_seconds = time.perf_counter() - fit_start
    history = recorder.recorded()
    best = checkpoints / "best.ckpt"
    if best.is_file():
        load_model_state(module.model, best, drop=ATTACHED_MODULES if skip_train else ())
    elif skip_train:
        raise FileNotFoundError(f"Re-evaluation needs the trained checkpoint `{best}`, but there is none.")
    model.to(device)
    if config.pretrain is not None and not skip_train:
        seconds = fit_seconds + data_seconds
        save_encoder(
            encoder_of(model, config.pretrain.modality),
            run_dir / "encoders" / f"{config.pretrain.modality}.safetensors",
            {
                "modality": config.pretrain.modality,
                "pretraining_seconds": f"{seconds:.3f}",
                "source_run": str(run_dir),
                "kind": config.model.encoders[config.pretrain.modality].kind,
                "input_shape": json.dumps(list(input_shapes[config.pretrain.modality])),
            },
        )
    test_metrics: dict[str, dict[str, float]] = {}
    test_seconds = 0.0
    if not skip_test:
        test_start = time.perf_counter()
        with autocast(config.experiment.precision, device):  # the numerics the model trained with
            evaluation = evaluate_patterns(model, eval_loader(data.test, config.data), data.modalities, device=device)
        test_metrics = metrics_by_pattern(evaluation.logits, evaluation.target, data.task, metric_names)
        test_seconds = time.perf_counter() - test_start
        tensors = {f"logits/{name}": t.contiguous() for name, t in evaluation.logits.items()}
        # the best input-free predictor (fitted on the training targets): Shapley's empty set, MMPT's floor
        tensors["constant"] = data.task.constant_output(data.train.target).contiguous()
        atomic_write_bytes(run_dir / "test_logits.safetensors", save_tensors({**tensors, "target": evaluation.target}))
        atomic_write_json(run_dir / "test_metrics.json", test_metrics)
    timing = _timing(
        config,
        history,
        data_seconds,
        fit_seconds,
        test_seconds,
        time.perf_counter() - started,
        len(data.train),
        steps_per_epoch=len(run_data.train_loader) if run_data.train_loader is not None else steps,
    )
    timing["feature_cache"] = cache_seconds
    timing["gradient_blending_estimate"] = blending_seconds
    if skip_train and (run_dir / "timing.json").exists():
        timing = {**read_json(run_dir / "timing.json"), "test": test_seconds, "reevaluated": True}
    atomic_write_json(run_dir / "timing.json", timing)
    atomic_write_json(run_dir / "model.json", _model_facts(model, data.modalities))
    if not (skip_train and (run_dir / RESOURCES_FILE).exists()):  # re-evaluation keeps the training's record
        atomic_write_json(
            run_dir / RESOURCES_FILE,
            _resources(model, raw_test, data.modalities, config, device, checkpoints, memory_scope),
        )
    if config.probe.enabled and not skip_test and len(data.modalities) > 1:
        from fusebench.engine.probe import probe_run

        probe_run(run_dir)  # reloads the best checkpoint: probes see exactly what was tested
    return test_metrics, history, timing, primary


def _resources(
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


def _strategies(config: RunConfig, model: torch.nn.Module, data: DataSplits) -> list[TrainingStrategy]:
    from fusebench.engine.strategies import build_strategies

    return build_strategies(config, model, data.modalities, data.task)


def load_lightning_weights(module: FusionModule, path: Path) -> None:
    """Load model weights from our own Lightning checkpoint, without unpickling arbitrary objects."""
    load_model_state(module.model, path)


def encoder_of(model: torch.nn.Module, modality: str) -> torch.nn.Module:
    """The ``modality`` encoder of a model that has per-modality encoders."""
    encoders = as_fusion_model(model).encoder_modules()
    if encoders is None or modality not in encoders:
        raise ValueError(f"Expected a model with a `{modality}` encoder, got `{type(model).__name__}`.")
    return encoders[modality]


def _timing(
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


def _model_facts(model: torch.nn.Module, modalities: Sequence[str]) -> dict[str, Any]:
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
