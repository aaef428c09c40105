"""The five steps of one run — data, build, fit, export, test — each returning a typed record.

:func:`fusebench.engine.run.execute_run` calls them in that order inside the run folder's
lock. Each step writes its own files as soon as they exist, in the order a run always wrote
them (``config.yaml``, ``env.json``, ``data.json``; checkpoints and ``epoch_metrics.json``;
the pre-trained encoder; ``test_logits.safetensors``, ``test_metrics.json``, ``timing.json``,
``model.json``, ``resources.json``), and hands the next step what it needs and nothing else.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from safetensors.torch import save as save_tensors

from fusebench.config import RunConfig, dump_config
from fusebench.engine import run_records
from fusebench.engine.checkpoint import load_model_state
from fusebench.engine.datasets import DataSplits, eval_loader, recipe_digest, run_splits, run_task
from fusebench.engine.evaluate import evaluate_patterns
from fusebench.engine.footprint import RESOURCES_FILE, reset_peak_memory
from fusebench.engine.metrics import metrics_by_pattern
from fusebench.engine.run_folder import RunState
from fusebench.engine.run_result import RunResult
from fusebench.engine.run_setup import build_cached, fusion_module, start_process, steps_per_epoch
from fusebench.engine.run_step_records import BuiltModel, ExportedEncoder, FittedModel, PreparedData
from fusebench.engine.scale import autocast
from fusebench.engine.strategies.base import ATTACHED_MODULES
from fusebench.engine.trainer import EpochRecorder, RunData, make_trainer
from fusebench.io import atomic_write_bytes, atomic_write_json, atomic_write_text, read_json
from fusebench.models.contract import as_fusion_model
from fusebench.models.weights import save_encoder


def encoder_of(model: torch.nn.Module, modality: str) -> torch.nn.Module:
    """The ``modality`` encoder of a model that has per-modality encoders."""
    encoders = as_fusion_model(model).encoder_modules()
    if encoders is None or modality not in encoders:
        raise ValueError(f"Expected a model with a `{modality}` encoder, got `{type(model).__name__}`.")
    return encoders[modality]


def prepare_data(
    config: RunConfig,
    run_dir: Path,
    skip_train: bool,
    skip_test: bool,
    command: Sequence[str] | None,
    data: DataSplits | None,
) -> PreparedData:
    """Data: device, ``config.yaml``/``env.json``, the seeded splits, ``data.json``, auto blending."""
    started = time.perf_counter()
    device, where = start_process(config)
    memory_scope = reset_peak_memory(device)
    if skip_train:  # re-evaluation: config.yaml, env.json and timing.json describe the training; keep them
        atomic_write_json(run_dir / "env.evaluate.json", run_records.environment(config, device, command))
    else:
        atomic_write_text(run_dir / "config.yaml", dump_config(config))
        atomic_write_json(run_dir / "env.json", run_records.environment(config, device, command))
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
    return PreparedData(
        config=config,
        run_dir=run_dir,
        skip_train=skip_train,
        skip_test=skip_test,
        device=device,
        where=where,
        memory_scope=memory_scope,
        started=started,
        data=data,
        metric_names=metric_names,
        primary=primary,
        seconds=data_seconds,
        blending_seconds=blending_seconds,
    )


def build(prepared: PreparedData) -> BuiltModel:
    """Build: the model, and — with ``cache_frozen_features`` — frozen encoders' outputs cached once."""
    config, data = prepared.config, prepared.data
    if prepared.skip_train:  # the checkpoint holds every weight; the pre-trained files may have moved or gone
        config = config.model_copy(deep=True)
        config.model.pretrained = {}
    model, cached, cache_seconds = build_cached(config, data, prepared.device)
    # inference throughput is measured from raw inputs, even when training uses cached features
    return BuiltModel(model, cached, data.input_shapes, data.test, cache_seconds)


def fit(prepared: PreparedData, built: BuiltModel) -> FittedModel:
    """Fit: train with Lightning (unless re-evaluating), then load the best checkpoint onto the device."""
    config, run_dir, skip_train = prepared.config, prepared.run_dir, prepared.skip_train
    model, data = built.model, built.data
    run_data = RunData(data, config, prepared.where)
    recorder = EpochRecorder(run_dir, run_data, config)
    module = fusion_module(
        config,
        model,
        data,
        metric_names=prepared.metric_names,
        primary=prepared.primary,
        training=not skip_train,
        on_epoch_record=recorder,
    )
    fit_seconds = 0.0
    checkpoints = run_dir / "checkpoints"
    steps = steps_per_epoch(config, data)  # for the progress bar's redraws
    if not skip_train:
        trainer = make_trainer(config, prepared.where, run_dir, checkpoints, steps)
        fit_start = time.perf_counter()
        trainer.fit(module, datamodule=run_data)
        fit_seconds = time.perf_counter() - fit_start
    history = recorder.recorded()
    best = checkpoints / "best.ckpt"
    if best.is_file():
        load_model_state(module.model, best, drop=ATTACHED_MODULES if skip_train else ())
    elif skip_train:
        raise FileNotFoundError(f"Re-evaluation needs the trained checkpoint `{best}`, but there is none.")
    model.to(prepared.device)
    steps_run = len(run_data.train_loader) if run_data.train_loader is not None else steps
    return FittedModel(module, history, fit_seconds, checkpoints, steps_run)


def export(prepared: PreparedData, built: BuiltModel, fitted: FittedModel) -> ExportedEncoder:
    """Export: a pre-training run saves its encoder, with the seconds it cost (data plus fit)."""
    config, run_dir = prepared.config, prepared.run_dir
    if config.pretrain is None or prepared.skip_train:
        return ExportedEncoder(None)
    seconds = fitted.seconds + prepared.seconds
    path = run_dir / "encoders" / f"{config.pretrain.modality}.safetensors"
    save_encoder(
        encoder_of(built.model, config.pretrain.modality),
        path,
        {
            "modality": config.pretrain.modality,
            "pretraining_seconds": f"{seconds:.3f}",
            "source_run": str(run_dir),
            "kind": config.model.encoders[config.pretrain.modality].kind,
            "input_shape": json.dumps(list(built.input_shapes[config.pretrain.modality])),
        },
    )
    return ExportedEncoder(path)


def final_test(prepared: PreparedData, built: BuiltModel, fitted: FittedModel) -> RunResult:
    """Test: every missing-modality pattern on the test split, then the run's record files.

    The result's status is ``completed``: every step succeeded; ``execute_run`` records it in
    ``status.json`` once this returns.
    """
    test_metrics, test_seconds = _test_patterns(prepared, built)
    timing = _write_records(prepared, built, fitted, test_seconds)
    return RunResult(prepared.run_dir, RunState.COMPLETED, test_metrics, fitted.history, timing, prepared.primary)


def _test_patterns(prepared: PreparedData, built: BuiltModel) -> tuple[dict[str, dict[str, float]], float]:
    """``test_metrics.json`` and ``test_logits.safetensors`` (unless ``skip_test``), and the seconds they took."""
    test_metrics: dict[str, dict[str, float]] = {}
    test_seconds = 0.0
    if prepared.skip_test:
        return test_metrics, test_seconds
    config, run_dir, device, data = prepared.config, prepared.run_dir, prepared.device, built.data
    test_start = time.perf_counter()
    with autocast(config.experiment.precision, device):  # the numerics the model trained with
        evaluation = evaluate_patterns(built.model, eval_loader(data.test, config.data), data.modalities, device=device)
    test_metrics = metrics_by_pattern(evaluation.logits, evaluation.target, data.task, prepared.metric_names)
    test_seconds = time.perf_counter() - test_start
    tensors = {f"logits/{name}": t.contiguous() for name, t in evaluation.logits.items()}
    # the best input-free predictor (fitted on the training targets): Shapley's empty set, MMPT's floor
    tensors["constant"] = data.task.constant_output(data.train.target).contiguous()
    atomic_write_bytes(run_dir / "test_logits.safetensors", save_tensors({**tensors, "target": evaluation.target}))
    atomic_write_json(run_dir / "test_metrics.json", test_metrics)
    return test_metrics, test_seconds


def _write_records(
    prepared: PreparedData, built: BuiltModel, fitted: FittedModel, test_seconds: float
) -> dict[str, Any]:
    """``timing.json``, ``model.json``, ``resources.json`` and the probes; returns the timing written.

    Re-evaluation keeps the training's timing (with the new ``test`` seconds) and resources.
    """
    config, run_dir, skip_train = prepared.config, prepared.run_dir, prepared.skip_train
    model, data = built.model, built.data
    timing = run_records.timing(
        config,
        fitted.history,
        prepared.seconds,
        fitted.seconds,
        test_seconds,
        time.perf_counter() - prepared.started,
        len(data.train),
        steps_per_epoch=fitted.steps_per_epoch,
    )
    timing["feature_cache"] = built.cache_seconds
    timing["gradient_blending_estimate"] = prepared.blending_seconds
    if skip_train and (run_dir / "timing.json").exists():
        timing = {**read_json(run_dir / "timing.json"), "test": test_seconds, "reevaluated": True}
    atomic_write_json(run_dir / "timing.json", timing)
    atomic_write_json(run_dir / "model.json", run_records.model_facts(model, data.modalities))
    if not (skip_train and (run_dir / RESOURCES_FILE).exists()):  # re-evaluation keeps the training's record
        atomic_write_json(
            run_dir / RESOURCES_FILE,
            run_records.resources(
                model,
                built.raw_test,
                data.modalities,
                config,
                prepared.device,
                fitted.checkpoints,
                prepared.memory_scope,
            ),
        )
    if config.probe.enabled and not prepared.skip_test and len(data.modalities) > 1:
        from fusebench.engine.probe import probe_run

        probe_run(run_dir)  # reloads the best checkpoint: probes see exactly what was tested
    return timing
