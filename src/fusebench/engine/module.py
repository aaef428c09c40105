"""The LightningModule that trains any fusebench model and measures it per modality pattern.

Training metrics are grouped by the pattern each sample actually had (train-time
missingness); validation and test evaluate every sample under every pattern.

Nothing per step leaves the device or goes through ``self.log``: each step keeps references
to its loss, logits, targets and masks (:class:`~fusebench.engine.epoch_outputs.EpochOutputs`),
and the epoch's end reduces them once — gathered from every process under DDP — into the
loss, the per-pattern metrics and one ``self.log`` per value (``benchmarks/results.md`` has
the per-step cost this removed).
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
from fusebench.engine.epoch_outputs import EpochOutputs, cat_rows, distributed, gather_rows, gather_sum
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
        on_epoch_record: called with each finished epoch's record (the run directory writes it at once);
            under DDP only in the global rank 0 process.
        gradient_clip: clip the gradients' total L2 norm to this value before each step.
    """

    def __init__(
        self,
        model: nn.Module,
        modalities: Sequence[str],
        task: Task,
        *,
        optimizer: OptimizerConfig,
        scheduler: SchedulerConfig,
        metric_names: Sequence[str],
        primary: str | None = None,
        frozen: Sequence[str] = (),
        strategies: Sequence[TrainingStrategy] = (),
        on_epoch_record: Callable[[dict[str, Any]], None] | None = None,
        gradient_clip: float | None = None,
    ) -> None:
        super().__init__()
        # manual optimisation: one explicit zero_grad/backward/step per batch, without the automatic
        # loop's closure (Lightning's precision plugin, DDP and step counting still run)
        self.automatic_optimization = False
        self.gradient_clip = gradient_clip
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
        """Per-epoch buffers: references to device tensors, reduced once when the epoch ends."""
        self._train = EpochOutputs()
        self._extras: dict[str, Tensor] = {}
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
                weighted = extra.detach() * batch.size
                self._extras[name] = self._extras[name] + weighted if name in self._extras else weighted
                loss = loss + extra
        if loss.device.type == "cpu":  # free on a CPU; on a GPU the check waits for the epoch (no sync per step)
            if not torch.isfinite(loss):
                where = f", step {self.global_step + 1}"
                raise NonFiniteLossError(self._non_finite("training", float(loss.detach()), where))
        self._train.add(loss.detach(), output.logits.detach(), batch.target, batch.mask, self.global_step)
        optimizer = self.optimizers()
        optimizer.zero_grad()  # type: ignore[union-attr]
        self.manual_backward(loss)  # calls on_after_backward (the strategies' gradient changes)
        optimizer.step()  # type: ignore[union-attr]  # calls on_before_optimizer_step (monitoring, clipping)
        return loss.detach()

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Clip after the monitor read the gradients (callback hooks run first) and after AMP unscaled them."""
        if self.gradient_clip is not None:
            self.clip_gradients(optimizer, gradient_clip_val=self.gradient_clip, gradient_clip_algorithm="norm")

    def _step_schedulers(self, validation_loss: float | None) -> None:
        """Step the learning-rate schedule once per epoch (manual optimisation steps none by itself)."""
        schedulers = self.lr_schedulers()
        for scheduler in schedulers if isinstance(schedulers, list) else [schedulers]:
            if scheduler is None:
                continue
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                if validation_loss is not None:  # an epoch without validation leaves the plateau count alone
                    scheduler.step(validation_loss)
            else:
                scheduler.step()

    def _check_train_losses(self) -> None:
        """Fail on the first non-finite training loss of the epoch (where the steps did not check it)."""
        bad = self._train.first_non_finite()
        if bad is not None:
            step, value = bad
            raise NonFiniteLossError(self._non_finite("training", value, f", step {step + 1}"))

    def on_after_backward(self) -> None:
        for strategy in self.strategies:
            strategy.after_backward(self.model)

    # --------------------------------------------------------------- evaluation
    def _eval_step(self, batch: Batch) -> None:
        for name, logits in batch_pattern_logits(self.model, batch, self.patterns).items():
            self._eval[name].append(logits)
        self._eval_target.append(batch.target)

    def _collect_eval(self) -> PatternEvaluation:
        """The epoch's validation outputs of every process, in row order, on the CPU."""
        target = cat_rows(self._eval_target)
        evaluation = PatternEvaluation(
            logits={name: gather_rows(self, cat_rows(parts).float()).cpu() for name, parts in self._eval.items()},
            target=gather_rows(self, target).cpu(),
            modalities=self.modalities,
        )
        self._eval = {name: [] for name in self.pattern_names}
        self._eval_target = []
        return evaluation

    def on_validation_epoch_start(self) -> None:
        self._check_train_losses()  # before validation could checkpoint broken weights
        self._eval_start = time.perf_counter()
        self._eval_cpu_start = time.process_time()

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._eval_step(batch)

    def on_validation_epoch_end(self) -> None:
        if not self._eval_target and not distributed(self):
            return
        evaluation = self._collect_eval()
        if not len(evaluation.target):
            return
        self._validation = metrics_by_pattern(evaluation.logits, evaluation.target, self.task, self.metric_names)
        full = self._validation[self.pattern_names[0]]  # the all-modalities pattern comes first
        if not math.isfinite(full["loss"]):  # raised before the checkpoint callback could save these weights
            raise NonFiniteLossError(self._non_finite("validation", full["loss"], ""))
        sync = distributed(self)  # every process computed the same numbers from the gathered outputs
        self.log("validation/loss", full["loss"], prog_bar=True, sync_dist=sync)
        for name in self.metric_names:
            self.log(f"validation/{name}", full[name], prog_bar=name == self.primary, sync_dist=sync)
        self._eval_seconds = time.perf_counter() - self._eval_start
        self._eval_cpu_seconds = time.process_time() - self._eval_cpu_start

    def on_train_epoch_end(self) -> None:
        self._check_train_losses()
        outputs = self._train.gathered(self)
        train = (
            grouped_metrics(
                outputs.logits,
                outputs.target,
                mask_to_pattern_index(outputs.mask, self.modalities),
                self.pattern_names,
                self.task,
                self.metric_names,
            )
            if len(outputs.target)
            else {}
        )
        sync = distributed(self)
        self.log("train/loss", outputs.loss, prog_bar=True, sync_dist=sync)
        for name, total in self._extras.items():
            self.log(f"train/{name}", float(gather_sum(self, total)) / max(outputs.count, 1), sync_dist=sync)
        train_seconds = time.perf_counter() - self._epoch_start - self._eval_seconds
        train_cpu = time.process_time() - self._epoch_cpu_start - self._eval_cpu_seconds
        record: dict[str, Any] = {
            "epoch": self.current_epoch + 1,
            "train": {
                "loss": outputs.loss,
                **train,
                "timing": {"seconds": train_seconds, "cpu_seconds": train_cpu},
            },
        }
        validation_loss = None
        if self._validation is not None:
            validation_loss = self._validation[self.pattern_names[0]]["loss"]
            record["validation"] = {
                "loss": self._validation[self.pattern_names[0]]["loss"],
                **self._validation,
                "timing": {"seconds": self._eval_seconds, "cpu_seconds": self._eval_cpu_seconds},
            }
            self._validation = None
        strategy_values: dict[str, float] = {}
        for strategy in self.strategies:
            strategy_values.update(strategy.log_values())
        for name, value in strategy_values.items():
            self.log(f"train/{name}", value, sync_dist=sync)
        if strategy_values:
            record["strategy"] = strategy_values
        record["learning_rate"] = [group["lr"] for group in self.optimizers().optimizer.param_groups]  # type: ignore[union-attr]
        self.history.append(record)
        self._step_schedulers(validation_loss)  # after the record, which holds the LR this epoch trained with
        if self.on_epoch_record is not None and self.trainer.is_global_zero:
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
