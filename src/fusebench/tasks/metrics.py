"""The one metric registry: every metric fusebench computes, its direction and the tasks it fits.

Training, evaluation, MMPT curves, Shapley values, probes, study statistics and the report
all look a metric up here, so a metric's name, the tasks it fits and whether a larger
value is better are registered in one place (torchmetrics' ``higher_is_better`` and
optuna's study direction are the models).

A metric takes the model's raw ``outputs`` (logits for classification, values for
regression) and the ``target`` and returns a float; the task supplies the prediction rule
(argmax, threshold, identity) through :class:`MetricContext`.

The metrics fusebench ships are defined and registered in
:mod:`fusebench.tasks.builtin_metrics`, which the ``fusebench.tasks`` package imports, so
they are in :data:`METRICS` whenever this module is.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor

from fusebench.errors import ConfigError

TaskKind = Literal["multiclass", "multilabel", "regression"]
TASK_KINDS: tuple[TaskKind, ...] = ("multiclass", "multilabel", "regression")


@dataclass(frozen=True)
class MetricContext:
    """What a metric needs to know about the task besides outputs and target.

    Attributes:
        kind: the task kind.
        output_size: classes (multiclass), labels (multilabel) or 1 (regression).
        threshold: probability above which a label is predicted (multilabel).
    """

    kind: TaskKind
    output_size: int
    threshold: float = 0.5

    def classes(self, outputs: Tensor) -> Tensor:
        """Predicted class ``[N]`` of multiclass logits ``[N, C]``."""
        return outputs.argmax(dim=1)

    def labels(self, outputs: Tensor) -> Tensor:
        """Predicted multi-hot ``[N, L]`` (int) of multilabel logits: ``sigmoid(x) >= threshold``."""
        return (torch.sigmoid(outputs.float()) >= self.threshold).long()

    def values(self, outputs: Tensor) -> Tensor:
        """Predicted scores ``[N]`` of regression outputs ``[N, 1]`` or ``[N]``."""
        return outputs.reshape(len(outputs), -1)[:, 0].float()


MetricFn = Callable[[Tensor, Tensor, MetricContext], float]


@dataclass(frozen=True)
class Metric:
    """One named metric.

    Attributes:
        name: the key in every metrics file (``test_metrics.json``, ``results.csv``).
        higher_is_better: direction; statistics, verdicts, thresholds and checkpoint
            selection read it instead of guessing.
        label: how reports name it.
        compute: task kind -> ``fn(outputs, target, context) -> float``; the kinds it fits.
        per_sample_mean: the metric is a mean of per-sample scores over a set of samples
            fixed by the target (accuracy, MAE, F1 samples, ...), so its expectation under
            a per-sample random mixture of two predictions is the same mixture of the two
            metric values (MMPT curves use this to be exact).
        per_sample: kind -> ``fn(outputs, target, context) -> [N]`` per-sample scores whose
            plain mean is the metric (a bootstrap over test samples resamples these).
    """

    name: str
    higher_is_better: bool
    label: str
    compute: Mapping[TaskKind, MetricFn]
    per_sample_mean: bool = False
    per_sample: Mapping[TaskKind, Callable[[Tensor, Tensor, MetricContext], Tensor]] = field(default_factory=dict)

    @property
    def kinds(self) -> tuple[TaskKind, ...]:
        return tuple(k for k in TASK_KINDS if k in self.compute)

    def __call__(self, outputs: Tensor, target: Tensor, context: MetricContext) -> float:
        fn = self.compute.get(context.kind)
        if fn is None:
            raise ValueError(
                f"Metric `{self.name}` applies to {list(self.kinds)} tasks, not to a `{context.kind}` task; "
                f"use one of {metric_names(context.kind)}."
            )
        return fn(outputs, target, context)


METRICS: dict[str, Metric] = {}
#: Direction of the non-metric numbers that metric files also hold.
_LOSS = Metric("loss", False, "loss", {})


def register_metric(metric: Metric) -> Metric:
    """Add ``metric`` to the registry (third-party metrics too); a name is registered once."""
    if metric.name in METRICS or metric.name in ("loss", "count"):
        raise ValueError(f"A metric named `{metric.name}` is already registered.")
    METRICS[metric.name] = metric
    return metric


def get_metric(name: str) -> Metric:
    """The registered metric ``name``; an unknown name is an error with the closest names."""
    if name == "loss":
        return _LOSS
    if name not in METRICS:
        close = difflib.get_close_matches(name, list(METRICS), n=1, cutoff=0.5)
        hint = f"did you mean `{close[0]}`?" if close else f"known metrics: {sorted(METRICS)}"
        raise ConfigError(f"Unknown metric `{name}` ({hint}).")
    return METRICS[name]


def higher_is_better(name: str) -> bool:
    """Direction of metric ``name`` (``loss`` included)."""
    return get_metric(name).higher_is_better


def metric_names(kind: TaskKind) -> list[str]:
    """Registered metrics that apply to a task of ``kind``, in registration order."""
    return [name for name, metric in METRICS.items() if kind in metric.compute]
