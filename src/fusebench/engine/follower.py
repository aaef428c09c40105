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

from fusebench.config import RunConfig
from fusebench.engine.datasets import DataSplits, run_splits, run_task
from fusebench.engine.run_setup import build_cached, fusion_module, start_process, steps_per_epoch
from fusebench.engine.trainer import RunData, make_trainer


def follow_run(config: RunConfig, run_dir: str | Path, data: DataSplits | None = None) -> None:
    """Train ``config`` as one of several processes, leaving ``run_dir`` to global rank 0.

    Raises:
        ConfigError: settings that cannot train in several processes (``engine.scale.placement``).
    """
    import lightning as L

    device, where = start_process(config)
    L.seed_everything(config.experiment.seed, workers=True, verbose=False)
    if data is None:
        data = run_splits(config)
    metric_names, primary = run_task(config, data.task)
    model, data, _ = build_cached(config, data, device)
    module = fusion_module(config, model, data, metric_names=metric_names, primary=primary)
    folder = Path(run_dir)
    trainer = make_trainer(config, where, folder, folder / "checkpoints", steps_per_epoch(config, data))
    trainer.fit(module, datamodule=RunData(data, config, where))
