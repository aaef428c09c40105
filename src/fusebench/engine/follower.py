"""A run's part in a DDP process of rank > 0: train with the others, write nothing.

``strategy: ddp`` starts its other processes by running the same command again (with
``LOCAL_RANK`` set); on several machines every machine runs the command (``NODE_RANK``).
Those processes build the same data, model and Trainer as global rank 0 — the collectives
need every process — but the run folder (its lock, ``status.json``, every result file and
checkpoint) belongs to rank 0 alone; Lightning writes checkpoints from rank 0 only, and the
epoch record and monitoring are written only where ``trainer.is_global_zero``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from fusebench.config import RunConfig
from fusebench.engine.build import frozen_modalities
from fusebench.engine.datasets import DataSplits, run_splits, run_task
from fusebench.engine.module import FusionModule
from fusebench.engine.scale import placement
from fusebench.engine.trainer import RunData, make_trainer


def follow_run(config: RunConfig, run_dir: str | Path, data: DataSplits | None = None) -> None:
    """Train ``config`` as one of several processes, leaving ``run_dir`` to global rank 0.

    Raises:
        ConfigError: settings that cannot train in several processes (``engine.scale.placement``).
    """
    import lightning as L

    from fusebench.engine.run_steps import build_cached, quiet_lightning, resolve_device, training_strategies

    quiet_lightning()
    if config.experiment.threads:
        torch.set_num_threads(config.experiment.threads)
    device = resolve_device(config.experiment.device)
    where = placement(config, device)
    L.seed_everything(config.experiment.seed, workers=True, verbose=False)
    if data is None:
        data = run_splits(config)
    metric_names, primary = run_task(config, data.task)
    model, data, _ = build_cached(config, data, device)
    run_data = RunData(data, config, where)
    module = FusionModule(
        model,
        data.modalities,
        data.task,
        optimizer=config.training.optimizer,
        scheduler=config.training.scheduler,
        metric_names=metric_names,
        primary=primary,
        frozen=frozen_modalities(config),
        strategies=training_strategies(config, model, data),
        gradient_clip=config.training.gradient_clip,
    )
    folder = Path(run_dir)
    steps = -(-len(data.train) // config.data.batch_size)
    make_trainer(config, where, folder, folder / "checkpoints", steps).fit(module, datamodule=run_data)
