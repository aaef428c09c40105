"""What a model predicts and how it is judged: the task every dataset declares.

A dataset says its task kind and output size; the run config may choose the loss and the
multilabel threshold (``task:`` section). Everything downstream — the head's width, the
training loss, metrics, the prediction rule, the best constant predictor that Shapley
values and the MMPT weakness floor start from, probes — reads this object, so nothing
outside it assumes classes or accuracy.

Target conventions (what readers produce and :meth:`Task.check_target` enforces):

- ``multiclass``: long ``[N]`` class indices in ``[0, output_size)``;
- ``multilabel``: ``[N, L]`` multi-hot with values in {0, 1} (float32);
- ``regression``: float32 ``[N]`` scores (e.g. MOSI sentiment in [-3, 3]).

Model outputs are ``[N, output_size]``: logits for classification, the score for
regression (``output_size == 1``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor
from torch.nn import functional as F

from fusebench.errors import ConfigError, DataError
from fusebench.tasks.metrics import MetricContext, TaskKind, get_metric, metric_names

LossName = Literal["cross_entropy", "bce", "l1", "mse"]
#: The default loss of each kind: cross-entropy, BCE with logits, L1 (as MMSA trains MOSI).
DEFAULT_LOSS: dict[TaskKind, LossName] = {"multiclass": "cross_entropy", "multilabel": "bce", "regression": "l1"}
_LOSSES_OF: dict[TaskKind, tuple[LossName, ...]] = {
    "multiclass": ("cross_entropy",),
    "multilabel": ("bce",),
    "regression": ("l1", "mse"),
}
#: The metric a study compares on unless it names another.
DEFAULT_PRIMARY: dict[TaskKind, str] = {"multiclass": "accuracy", "multilabel": "f1_samples", "regression": "mae"}


@dataclass(frozen=True)
class Task:
    """A prediction task.

    Attributes:
        kind: ``multiclass``, ``multilabel`` or ``regression``.
        output_size: classes, labels, or 1 for a scalar regression target.
        loss: training loss; ``None`` takes the kind's default (:data:`DEFAULT_LOSS`).
        threshold: multilabel decision threshold on the sigmoid probability.
        label_names: optional names of the classes or labels (reports, exports).
        target_range: optional closed range of regression targets, checked by readers.
    """

    kind: TaskKind
    output_size: int
    loss: LossName | None = None
    threshold: float = 0.5
    label_names: tuple[str, ...] | None = None
    target_range: tuple[float, float] | None = field(default=None)

    def __post_init__(self) -> None:
        if self.kind not in _LOSSES_OF:
            raise ValueError(f"Expected task `kind` in {list(_LOSSES_OF)}, got `{self.kind}`.")
        if self.output_size < 1 or (self.kind == "regression" and self.output_size != 1):
            raise ValueError(
                f"Expected `output_size` >= 1 (exactly 1 for regression), got {self.output_size} for a "
                f"`{self.kind}` task."
            )
        if self.kind == "multiclass" and self.output_size < 2:
            raise ValueError(f"Expected at least 2 classes for a multiclass task, got {self.output_size}.")
        if self.loss is not None and self.loss not in _LOSSES_OF[self.kind]:
            raise ValueError(f"Expected a `{self.kind}` loss in {list(_LOSSES_OF[self.kind])}, got `{self.loss}`.")
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"Expected the multilabel `threshold` in (0, 1), got {self.threshold}.")
        if self.label_names is not None and len(self.label_names) != self.output_size:
            raise ValueError(
                f"Expected {self.output_size} label names, got {len(self.label_names)}: {list(self.label_names)}."
            )

    # ------------------------------------------------------------------ naming
    @property
    def loss_name(self) -> LossName:
        return self.loss or DEFAULT_LOSS[self.kind]

    @property
    def context(self) -> MetricContext:
        return MetricContext(self.kind, self.output_size, self.threshold)

    @property
    def metric_names(self) -> list[str]:
        """Every registered metric for this kind (the default ``metrics.names``)."""
        return metric_names(self.kind)

    @property
    def primary_metric(self) -> str:
        return DEFAULT_PRIMARY[self.kind]

    def check_metrics(self, names: Sequence[str], where: str = "`metrics.names`") -> None:
        """Raise if a name is unknown or does not apply to this task."""
        for name in names:
            metric = get_metric(name)
            if name != "loss" and self.kind not in metric.compute:
                raise ConfigError(
                    f"{where} names `{name}`, which does not apply to a {self.kind} task; "
                    f"choose from {self.metric_names}."
                )

    def describe(self) -> dict[str, Any]:
        """JSON-ready summary, written to the run directory."""
        return {
            "kind": self.kind,
            "output_size": self.output_size,
            "loss": self.loss_name,
            "threshold": self.threshold if self.kind == "multilabel" else None,
            "label_names": list(self.label_names) if self.label_names is not None else None,
        }

    @classmethod
    def from_description(cls, described: dict[str, Any]) -> Task:
        """The task :meth:`describe` wrote (a run's ``data.json``)."""
        names = described.get("label_names")
        return cls(
            kind=described["kind"],
            output_size=int(described["output_size"]),
            loss=described.get("loss"),
            threshold=float(described.get("threshold") or 0.5),
            label_names=tuple(names) if names is not None else None,
        )

    # ------------------------------------------------------------------ maths
    def compute_loss(self, outputs: Tensor, target: Tensor) -> Tensor:
        """Mean training loss of ``outputs [B, output_size]`` against ``target``."""
        loss = self.loss_name
        if loss == "cross_entropy":
            return F.cross_entropy(outputs, target)
        if loss == "bce":
            return F.binary_cross_entropy_with_logits(outputs, target.to(outputs.dtype))
        values = outputs.reshape(len(outputs), -1)[:, 0]
        if loss == "l1":
            return F.l1_loss(values, target.to(values.dtype))
        return F.mse_loss(values, target.to(values.dtype))

    def predict(self, outputs: Tensor) -> Tensor:
        """The prediction rule: class index, multi-hot labels at ``threshold``, or the score."""
        ctx = self.context
        if self.kind == "multiclass":
            return ctx.classes(outputs)
        if self.kind == "multilabel":
            return ctx.labels(outputs)
        return ctx.values(outputs)

    def metrics(self, outputs: Tensor, target: Tensor, names: Sequence[str]) -> dict[str, float]:
        """``{loss, <each name>, count}`` of ``outputs`` against ``target``; ``{}`` for no samples."""
        if len(target) == 0:
            return {}
        outputs = outputs.float()
        result: dict[str, float] = {"loss": float(self.compute_loss(outputs, target))}
        ctx = self.context
        for name in names:
            result[name] = get_metric(name)(outputs, target, ctx)
        result["count"] = int(len(target))
        return result

    def score(self, outputs: Tensor, target: Tensor, metric: str) -> float:
        """One metric (or ``loss``) of ``outputs`` against ``target``."""
        if metric == "loss":
            return float(self.compute_loss(outputs.float(), target))
        return get_metric(metric)(outputs.float(), target, self.context)

    def constant_output(self, train_target: Tensor) -> Tensor:
        """Outputs ``[output_size]`` of the best input-free predictor, fitted on training targets.

        This is what a model knows with no modality at all: the empty set's value for
        Shapley values and the floor of the MMPT weakness score.

        - multiclass: log class frequencies (the constant minimising cross-entropy; its
          argmax is the majority class);
        - multilabel: logit of each label's frequency (minimises BCE; thresholded at 0.5 it
          predicts each label's majority value);
        - regression: the training median (minimises the L1 loss and the MAE).
        """
        if len(train_target) == 0:
            raise ValueError("Expected a non-empty training target to fit the constant predictor.")
        if self.kind == "multiclass":
            counts = torch.bincount(train_target.long(), minlength=self.output_size).double()
            return torch.log((counts / counts.sum()).clamp(min=1e-12)).float()
        if self.kind == "multilabel":
            rate = train_target.double().mean(dim=0).clamp(1e-6, 1 - 1e-6)
            return torch.logit(rate).float()
        return train_target.double().median().reshape(1).float()

    def constant_score(self, constant: Tensor, target: Tensor, metric: str) -> float:
        """``metric`` of the constant predictor ``constant [output_size]`` on every sample of ``target``."""
        outputs = constant.reshape(1, -1).expand(len(target), -1)
        return self.score(outputs, target, metric)

    def check_target(self, target: Tensor, where: str) -> None:
        """Raise a one-paragraph error if ``target`` does not fit this task (dtype, shape, range)."""
        shape = tuple(target.shape)
        if self.kind == "multiclass":
            if target.ndim != 1 or target.is_floating_point():
                raise DataError(f"{where}: expected integer class labels of shape [N], got {target.dtype} {shape}.")
            if len(target) and (int(target.min()) < 0 or int(target.max()) >= self.output_size):
                raise DataError(
                    f"{where}: expected class labels in 0..{self.output_size - 1}, got values from "
                    f"{int(target.min())} to {int(target.max())}."
                )
        elif self.kind == "multilabel":
            if target.ndim != 2 or target.shape[1] != self.output_size:
                raise DataError(f"{where}: expected a multi-hot target [N, {self.output_size}], got {shape}.")
            if len(target) and not bool(((target == 0) | (target == 1)).all()):
                raise DataError(f"{where}: expected multi-hot values 0 or 1, got others.")
        else:
            if target.ndim != 1 or not target.is_floating_point():
                raise DataError(f"{where}: expected float regression targets of shape [N], got {target.dtype} {shape}.")
            if len(target) and not bool(torch.isfinite(target).all()):
                raise DataError(f"{where}: expected finite regression targets, got NaN or Inf.")
            if self.target_range is not None and len(target):
                low, high = self.target_range
                if float(target.min()) < low or float(target.max()) > high:
                    raise DataError(
                        f"{where}: expected targets in [{low}, {high}], got values from {float(target.min())} "
                        f"to {float(target.max())}."
                    )
