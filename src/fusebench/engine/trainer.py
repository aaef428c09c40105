"""The Lightning side of a run: its Trainer, its data as a LightningDataModule, and the epoch record.

Lightning keeps what DESIGN.md chose it for — checkpoints, early stopping, the progress bar,
DDP/FSDP, mixed precision — while the per-step work stays lean: the module optimises
manually and reduces its outputs once per epoch (:mod:`fusebench.engine.module`), the
progress bar redraws about :data:`PROGRESS_UPDATES` times per epoch instead of every step,
and batches come from whole tensors (:class:`~fusebench.data.loader.TensorLoader`), cut on
the device when the data was moved there.

Every object here pickles, because ``strategy: ddp_spawn`` sends the module, the data and
the callbacks to freshly started processes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint, TQDMProgressBar

from fusebench.config import RunConfig
from fusebench.data.amputation import realised_rates
from fusebench.data.batch import Batch
from fusebench.data.loader import TensorLoader
from fusebench.data.registry import Split
from fusebench.engine.checkpoint import StoreConfig
from fusebench.engine.datasets import DataSplits, eval_loader, train_loader
from fusebench.engine.scale import Placement, fits_on_device, pin_batches, tensor_bytes
from fusebench.errors import ConfigError
from fusebench.io import atomic_write_json, read_json

#: Progress-bar redraws per training epoch (Lightning's default redraws after every step).
PROGRESS_UPDATES = 50
EPOCH_FILE = "epoch_metrics.json"


def _on_device(split: Split, device: str) -> Split:
    lengths = None if split.lengths is None else {m: v.to(device) for m, v in split.lengths.items()}
    return Split({m: x.to(device) for m, x in split.inputs.items()}, split.target.to(device), lengths)


class RunData(L.LightningDataModule):
    """The run's training and validation loaders, built in each training process for its rank.

    On a GPU the training and validation splits move to the device once when they fit
    (:func:`~fusebench.engine.scale.fits_on_device`); otherwise batches are cut into pinned
    memory and copied without blocking. Under DDP each process gets its part of every
    training batch and its block of the validation rows (``TensorLoader(shard=...)``).
    """

    def __init__(self, data: DataSplits, config: RunConfig, placement: Placement) -> None:
        super().__init__()
        self.data = data
        self.config = config
        self.placement = placement
        self.train_loader: TensorLoader | None = None
        self._splits: tuple[Split, Split] = (data.train, data.validation)
        self.on_device = False

    def setup(self, stage: str) -> None:
        threads = self.config.experiment.threads
        if threads:  # a launched process starts with Lightning's thread count, not the run's
            torch.set_num_threads(threads)
        nbytes = sum(tensor_bytes(s.inputs) for s in self._splits)
        if fits_on_device(nbytes, self.placement.device):
            device = f"cuda:{torch.cuda.current_device()}"
            self._splits = (_on_device(self.data.train, device), _on_device(self.data.validation, device))
            self.on_device = True

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        """CPU: the batch as it is; GPU: ``non_blocking`` copies from the pinned batches."""
        if isinstance(batch, Batch):
            return batch if batch.target.device == device else batch.to(device, non_blocking=True)
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    def _shard(self) -> tuple[int, int] | None:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None and trainer.world_size > 1 else None

    def train_dataloader(self) -> TensorLoader:
        pin = pin_batches(self.placement.device) and not self.on_device
        self.train_loader = train_loader(
            self._splits[0], self.config.data, self.config.experiment.seed, shard=self._shard(), pin_memory=pin
        )
        return self.train_loader

    def val_dataloader(self) -> TensorLoader:
        shard = self._shard()
        validation = self._splits[1]
        if shard is not None and 0 < len(validation) < shard[1]:
            raise ConfigError(
                f"Expected at least one validation sample per training process, got {len(validation)} "
                f"samples for `experiment.devices` x `experiment.num_nodes` = {shard[1]} processes."
            )
        pin = pin_batches(self.placement.device) and not self.on_device
        return eval_loader(validation, self.config.data, shard=shard, pin_memory=pin)


class EpochRecorder:
    """Writes ``epoch_metrics.json`` after every epoch, with the epoch's realised train-time missingness."""

    def __init__(self, run_dir: Path, data: RunData, config: RunConfig) -> None:
        self.run_dir = run_dir
        self.data = data
        self.record_missingness = config.monitoring.enabled
        self.resample = config.data.missing_resample
        self.history: list[dict[str, Any]] = []

    def __call__(self, epoch: dict[str, Any]) -> None:
        loader = self.data.train_loader
        if loader is not None and loader.last_masks is not None and self.record_missingness:
            masks = loader.last_masks
            pairs = len(self.data.data.train)  # with `missing_resample: fixed` the split pairs' parts follow
            epoch["missingness"] = {
                **realised_rates(masks[:pairs], self.data.data.modalities),
                "resample": self.resample,
                "training_samples": int(len(masks)),
            }
        self.history.append(epoch)
        atomic_write_json(self.run_dir / EPOCH_FILE, self.history)

    def recorded(self) -> list[dict[str, Any]]:
        """The epochs: this process's, or — when the training ran in spawned processes — the file's."""
        if self.history or not (self.run_dir / EPOCH_FILE).is_file():
            return self.history
        return list(read_json(self.run_dir / EPOCH_FILE))


def make_trainer(
    config: RunConfig, placement: Placement, run_dir: Path, checkpoints: Path, steps_per_epoch: int
) -> L.Trainer:
    """The run's ``lightning.Trainer``: checkpoints, monitoring, early stopping, progress bar, scale-out."""
    callbacks: list[L.Callback] = [
        ModelCheckpoint(
            dirpath=checkpoints,
            filename="best",
            monitor=config.monitoring.checkpoint_monitor,
            mode=config.monitoring.checkpoint_mode,
            save_last=True,
            save_top_k=1,
            enable_version_counter=False,
        ),
        StoreConfig(config),  # the resolved config travels with the weights
    ]
    if config.monitoring.enabled:  # gradients, weights, updates, activations per epoch (monitoring.jsonl)
        from fusebench.engine.monitoring import TrainingMonitor

        callbacks.append(TrainingMonitor(run_dir))
    stop = config.training.early_stopping
    if stop.enabled:
        callbacks.append(EarlyStopping(monitor=stop.monitor, patience=stop.patience, mode=stop.mode))
    if config.logging.progress_bar:
        callbacks.append(TQDMProgressBar(refresh_rate=max(1, steps_per_epoch // PROGRESS_UPDATES)))
    return L.Trainer(
        **placement.trainer_arguments(),
        max_epochs=config.training.epochs,
        deterministic=config.experiment.deterministic,
        callbacks=callbacks,
        logger=make_logger(config, run_dir),
        enable_progress_bar=config.logging.progress_bar,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=config.logging.log_every_n_steps,
        default_root_dir=str(run_dir),
    )


def make_logger(config: RunConfig, run_dir: Path) -> Any:
    """The configured Lightning logger (``False`` for none); an uninstalled backend is a named error."""
    kind = config.logging.logger
    if kind == "none" or not config.monitoring.enabled:
        return False
    if kind == "csv":
        from lightning.pytorch.loggers import CSVLogger

        return CSVLogger(save_dir=str(run_dir), name="logs", version="")
    try:
        if kind == "tensorboard":
            from lightning.pytorch.loggers import TensorBoardLogger

            return TensorBoardLogger(save_dir=str(run_dir), name="logs", version="")
        from lightning.pytorch.loggers import MLFlowLogger

        return MLFlowLogger(experiment_name=config.experiment.name, tracking_uri=f"file:{run_dir / 'mlruns'}")
    except ModuleNotFoundError as error:
        raise ConfigError(
            f"`logging.logger: {kind}` needs the `{error.name}` package; install it or set `logging.logger: csv`."
        ) from None
