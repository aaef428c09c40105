"""The LightningModule that trains any fusebench model and measures it per modality pattern.

Training metrics are grouped by the pattern each sample actually had (train-time
missingness); validation and test evaluate every sample under every pattern.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn

from fusebench.config import OptimizerConfig, SchedulerConfig
from fusebench.data.batch import Batch
from fusebench.data.patterns import all_patterns, mask_to_pattern_index, pattern_names
from fusebench.engine.evaluate import PatternEvaluation, batch_pattern_logits
from fusebench.engine.metrics import grouped_metrics, metrics_by_pattern
from fusebench.engine.strategies.base import TrainingStrategy
from fusebench.errors import NonFiniteLossError
from fusebench.models.contract import as_fusion_model
from fusebench.models.multimodal import ModelOutput
from fusebench.tasks import Task


class FusionModule(L.LightningModule):
    """Wraps a model with its optimiser, losses and per-pattern bookkeeping.

    Args:
        model: a model following the ``encode``/``fuse``/``forward`` contract.
        modalities: sorted modality names of the data the model sees.
        task: what the model predicts: its loss and its metrics.
        optimizer: optimiser settings (``encoder_lr`` applies to ``model.encoders``).
        scheduler: learning-rate schedule.
        metric_names: metrics to compute per pattern (checked against ``task``).
        primary: the metric shown in the progress bar.
        frozen: modalities whose encoders stay in eval mode (BatchNorm statistics fixed).
        strategies: optional training strategies.
        on_epoch_record: called with each finished epoch's record (the run directory writes it at once).
    """

    def __init__(
        self,
        model: nn.Module,
        modalities: Sequence[str],
        task: Task,
        optimizer: OptimizerConfig,
        scheduler: SchedulerConfig,
        metric_names: Sequence[str],
        primary: str | None = None,
        frozen: Sequence[str] = (),
        strategies: Sequence[TrainingStrategy] = (),
        on_epoch_record: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.modalities = tuple(sorted(modalities))
        self.patterns = all_patterns(self.modalities)
        self.pattern_names = pattern_names(self.modalities)
        self.task = task
        self.optimizer_config = optimizer
        self.scheduler_config = scheduler
        task.check_metrics(metric_names)
        self.metric_names = list(metric_names)
        self.primary = primary or task.primary_metric
        self.frozen = list(frozen)
        self.strategies = list(strategies)
        self.history: list[dict[str, Any]] = []
        self.on_epoch_record = on_epoch_record
        self._validation: dict[str, dict[str, float]] | None = None  # the last validation, until its epoch is recorded
        self._reset_epoch_buffers()

    def _reset_epoch_buffers(self) -> None:
        self._train: dict[str, list[Tensor]] = {"logits": [], "target": [], "pattern": []}
        self._eval: dict[str, list[Tensor]] = {name: [] for name in self.pattern_names}
        self._eval_target: list[Tensor] = []
        self._epoch_start = time.perf_counter()
        self._eval_seconds = 0.0
        self._epoch_cpu_start = time.process_time()  # CPU seconds: what other jobs on the machine do not inflate
        self._eval_cpu_seconds = 0.0

    def _non_finite(self, split: str, value: float, where: str) -> str:
        return (
            f"The {split} loss is {value} at epoch {self.current_epoch + 1}{where}; the run fails here and keeps "
            "the checkpoints of its last finished epoch (checkpoints/). Lower `training.optimizer.lr`, set "
            "`training.gradient_clip`, or check the data."
        )

    # ----------------------------------------------------------------- training
    def on_train_epoch_start(self) -> None:
        self._reset_epoch_buffers()
        for strategy in self.strategies:
            strategy.on_epoch_start(self.current_epoch + 1)
        encoders = as_fusion_model(self.model).encoder_modules()  # None when training on cached frozen features
        for modality in self.frozen:
            if encoders is not None and modality in encoders:
                encoders[modality].eval()

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        for strategy in self.strategies:
            batch = strategy.transform_batch(batch, self.global_step)
        output: ModelOutput = self.model(batch.inputs, batch.mask, batch.lengths)
        loss = self.task.compute_loss(output.logits, batch.target)
        for strategy in self.strategies:  # gradient blending's fused weight; 0 in a contrastive-only stage
            loss = loss * strategy.task_loss_scale()
        for strategy in self.strategies:
            for name, extra in strategy.extra_losses(self.model, output, batch).items():
                self.log(f"train/{name}", extra.detach(), on_step=False, on_epoch=True, batch_size=batch.size)
                loss = loss + extra
        if not torch.isfinite(loss):
            where = f", step {self.global_step + 1}"
            raise NonFiniteLossError(self._non_finite("training", float(loss.detach()), where))
        self._train["logits"].append(output.logits.detach().float().cpu())
        self._train["target"].append(batch.target.cpu())
        self._train["pattern"].append(mask_to_pattern_index(batch.mask, self.modalities).cpu())
        self.log("train/loss", loss.detach(), on_step=False, on_epoch=True, prog_bar=True, batch_size=batch.size)
        return loss

    def on_after_backward(self) -> None:
        for strategy in self.strategies:
            strategy.after_backward(self.model)

    # --------------------------------------------------------------- evaluation
    def _eval_step(self, batch: Batch) -> None:
        for name, logits in batch_pattern_logits(self.model, batch, self.patterns).items():
            self._eval[name].append(logits.float().cpu())
        self._eval_target.append(batch.target.cpu())

    def _collect_eval(self) -> PatternEvaluation:
        evaluation = PatternEvaluation(
            logits={name: torch.cat(parts) for name, parts in self._eval.items()},
            target=torch.cat(self._eval_target),
            modalities=self.modalities,
        )
        self._eval = {name: [] for name in self.pattern_names}
        self._eval_target = []
        return evaluation

    def on_validation_epoch_start(self) -> None:
        self._eval_start = time.perf_counter()
        self._eval_cpu_start = time.process_time()

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._eval_step(batch)

    def on_validation_epoch_end(self) -> None:
        if not self._eval_target:
            return
        evaluation = self._collect_eval()
        self._validation = metrics_by_pattern(evaluation.logits, evaluation.target, self.task, self.metric_names)
        full = self._validation[self.pattern_names[0]]  # the all-modalities pattern comes first
        if not math.isfinite(full["loss"]):  # raised before the checkpoint callback could save these weights
            raise NonFiniteLossError(self._non_finite("validation", full["loss"], ""))
        self.log("validation/loss", full["loss"], prog_bar=True)
        for name in self.metric_names:
            self.log(f"validation/{name}", full[name], prog_bar=name == self.primary)
        self._eval_seconds = time.perf_counter() - self._eval_start
        self._eval_cpu_seconds = time.process_time() - self._eval_cpu_start

    def on_train_epoch_end(self) -> None:
        logits = torch.cat(self._train["logits"])
        target = torch.cat(self._train["target"])
        index = torch.cat(self._train["pattern"])
        train = grouped_metrics(logits, target, index, self.pattern_names, self.task, self.metric_names)
        train_seconds = time.perf_counter() - self._epoch_start - self._eval_seconds
        train_cpu = time.process_time() - self._epoch_cpu_start - self._eval_cpu_seconds
        record: dict[str, Any] = {
            "epoch": self.current_epoch + 1,
            "train": {
                "loss": float(self.trainer.callback_metrics.get("train/loss", torch.nan)),
                **train,
                "timing": {"seconds": train_seconds, "cpu_seconds": train_cpu},
            },
        }
        if self._validation is not None:
            record["validation"] = {
                "loss": self._validation[self.pattern_names[0]]["loss"],
                **self._validation,
                "timing": {"seconds": self._eval_seconds},
            }
            self._validation = None
        strategy_values: dict[str, float] = {}
        for strategy in self.strategies:
            strategy_values.update(strategy.log_values())
        for name, value in strategy_values.items():
            self.log(f"train/{name}", value)
        if strategy_values:
            record["strategy"] = strategy_values
        record["learning_rate"] = [group["lr"] for group in self.optimizers().optimizer.param_groups]  # type: ignore[union-attr]
        self.history.append(record)
        if self.on_epoch_record is not None:
            self.on_epoch_record(record)

    # ---------------------------------------------------------------- optimiser
    def configure_optimizers(self) -> Any:
        cfg = self.optimizer_config
        encoders = as_fusion_model(self.model).encoder_modules()
        encoder_ids = {id(p) for p in encoders.parameters()} if encoders is not None else set()
        encoder_params = [p for p in self.model.parameters() if id(p) in encoder_ids and p.requires_grad]
        other_params = [p for p in self.model.parameters() if id(p) not in encoder_ids and p.requires_grad]
        groups = [{"params": other_params, "lr": cfg.lr}]
        if encoder_params:
            groups.append({"params": encoder_params, "lr": cfg.encoder_lr or cfg.lr})
        if cfg.name == "sgd":
            optimizer: torch.optim.Optimizer = torch.optim.SGD(
                groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
            )
        elif cfg.name == "adamw":
            optimizer = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
        else:
            optimizer = torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
        sched = self.scheduler_config
        if sched.name == "none":
            return optimizer
        if sched.name == "cosine":
            scheduler: Any = torch.optim.lr_scheduler.CosineAnnealingLR(
                optimizer, T_max=max(1, self.trainer.max_epochs or 1)
            )
        elif sched.name == "step":
            scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=sched.step_size, gamma=sched.gamma)
        else:
            scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer, factor=sched.gamma, patience=sched.patience
            )
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "monitor": "validation/loss"}}
        return {"optimizer": optimizer, "lr_scheduler": scheduler}
