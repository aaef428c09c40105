"""The one metric registry: every metric fusebench computes, its direction and the tasks it fits.

Training, evaluation, MMPT curves, Shapley values, probes, study statistics and the report
all look a metric up here, so a metric's name, its maths and whether a larger value is
better live in one place (torchmetrics' ``higher_is_better`` and optuna's study direction
are the models). The maths comes from torchmetrics where torchmetrics has it.

A metric takes the model's raw ``outputs`` (logits for classification, values for
regression) and the ``target`` and returns a float; the task supplies the prediction rule
(argmax, threshold, identity) through :class:`MetricContext`.

Regression metrics follow MMSA's ``MetricsTop.__eval_mosi_regression`` (the CMU-MOSI /
MOSEI reporting convention): MAE, Pearson correlation, binary accuracy and weighted F1 in
both conventions ("has-zero": negative vs non-negative; "non-zero": samples whose label is
0 excluded, positive vs negative), and 5- and 7-class accuracy of the scores clipped to
[-2, 2] and [-3, 3] and rounded (half to even, as ``numpy.round``).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor
from torchmetrics.functional import mean_absolute_error, mean_squared_error, pearson_corrcoef
from torchmetrics.functional.classification import (
    multiclass_accuracy,
    multiclass_f1_score,
    multilabel_f1_score,
)

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


# ------------------------------------------------------------------------ multiclass


def _mc_accuracy(outputs: Tensor, target: Tensor, ctx: MetricContext) -> float:
    # micro = the fraction correct; torchmetrics' multiclass default (macro) is balanced accuracy
    return float(multiclass_accuracy(ctx.classes(outputs), target, ctx.output_size, average="micro"))


def _mc_f1(average: Literal["macro", "micro", "weighted"]) -> MetricFn:
    def fn(outputs: Tensor, target: Tensor, ctx: MetricContext) -> float:
        return float(multiclass_f1_score(ctx.classes(outputs), target, ctx.output_size, average=average))

    return fn


# ------------------------------------------------------------------------ multilabel


def _ml_f1(average: Literal["macro", "micro", "weighted"]) -> MetricFn:
    def fn(outputs: Tensor, target: Tensor, ctx: MetricContext) -> float:
        # integer predictions: torchmetrics would otherwise guess whether floats are logits
        return float(multilabel_f1_score(ctx.labels(outputs), target.long(), ctx.output_size, average=average))

    return fn


# ------------------------------------------------------------------------ regression


def _mae(outputs: Tensor, target: Tensor, ctx: MetricContext) -> float:
    return float(mean_absolute_error(ctx.values(outputs), target.float()))


def _mse(outputs: Tensor, target: Tensor, ctx: MetricContext) -> float:
    return float(mean_squared_error(ctx.values(outputs), target.float()))


def _corr(outputs: Tensor, target: Tensor, ctx: MetricContext) -> float:
    """Pearson correlation (MMSA ``Corr``); NaN when either side is constant."""
    preds, truth = ctx.values(outputs).double(), target.double()
    if len(preds) < 2 or float(preds.std()) == 0.0 or float(truth.std()) == 0.0:
        return float("nan")
    return float(pearson_corrcoef(preds, truth))


def _binary(non_zero: bool) -> Callable[[Tensor, Tensor, MetricContext], tuple[Tensor, Tensor]]:
    """MMSA's two binary readings of a score: has-zero ``>= 0``; non-zero ``> 0``, label-0 samples dropped."""

    def split(outputs: Tensor, target: Tensor, ctx: MetricContext) -> tuple[Tensor, Tensor]:
        preds, truth = ctx.values(outputs), target.float()
        if non_zero:
            keep = truth != 0
            return (preds[keep] > 0).long(), (truth[keep] > 0).long()
        return (preds >= 0).long(), (truth >= 0).long()

    return split


def _acc2_non0() -> MetricFn:
    """Acc-2 without the label-0 samples: a mean over a subset, so no per-sample form."""
    split = _binary(non_zero=True)

    def fn(outputs: Tensor, target: Tensor, ctx: MetricContext) -> float:
        preds, truth = split(outputs, target, ctx)
        return float((preds == truth).double().mean()) if len(truth) else float("nan")

    return fn


def _f1_binary(non_zero: bool) -> MetricFn:
    """Weighted F1 of the binary reading (scikit-learn ``f1_score(average="weighted")`` as MMSA calls it)."""
    split = _binary(non_zero)

    def fn(outputs: Tensor, target: Tensor, ctx: MetricContext) -> float:
        preds, truth = split(outputs, target, ctx)
        if not len(truth):
            return float("nan")
        return float(multiclass_f1_score(preds, truth, num_classes=2, average="weighted"))

    return fn


def _mean_of(per_sample: Callable[[Tensor, Tensor, MetricContext], Tensor]) -> MetricFn:
    def fn(outputs: Tensor, target: Tensor, ctx: MetricContext) -> float:
        return float(per_sample(outputs, target, ctx).double().mean())

    return fn


def _correct(outputs: Tensor, target: Tensor, ctx: MetricContext) -> Tensor:
    return (ctx.classes(outputs) == target).double()


def _abs_error(outputs: Tensor, target: Tensor, ctx: MetricContext) -> Tensor:
    return (ctx.values(outputs).double() - target.double()).abs()


def _squared_error(outputs: Tensor, target: Tensor, ctx: MetricContext) -> Tensor:
    return (ctx.values(outputs).double() - target.double()) ** 2


def _same_sign_has0(outputs: Tensor, target: Tensor, ctx: MetricContext) -> Tensor:
    return ((ctx.values(outputs) >= 0) == (target.float() >= 0)).double()


def _same_rounded(bound: float) -> Callable[[Tensor, Tensor, MetricContext], Tensor]:
    def fn(outputs: Tensor, target: Tensor, ctx: MetricContext) -> Tensor:
        preds = torch.round(ctx.values(outputs).clamp(-bound, bound))
        return (preds == torch.round(target.float().clamp(-bound, bound))).double()

    return fn


def _sample_f1(outputs: Tensor, target: Tensor, ctx: MetricContext) -> Tensor:
    preds, truth = ctx.labels(outputs).bool(), target.bool()
    tp = (preds & truth).sum(dim=1).double()
    denominator = 2 * tp + (preds ^ truth).sum(dim=1).double()  # 2tp + fp + fn
    return torch.where(denominator > 0, 2 * tp / denominator.clamp(min=1), torch.zeros_like(tp))


for _metric in (
    Metric(
        "accuracy",
        True,
        "accuracy",
        {"multiclass": _mc_accuracy},
        per_sample_mean=True,
        per_sample={"multiclass": _correct},
    ),
    Metric("f1_macro", True, "F1 macro", {"multiclass": _mc_f1("macro"), "multilabel": _ml_f1("macro")}),
    Metric("f1_micro", True, "F1 micro", {"multiclass": _mc_f1("micro"), "multilabel": _ml_f1("micro")}),
    Metric("f1_weighted", True, "F1 weighted", {"multiclass": _mc_f1("weighted"), "multilabel": _ml_f1("weighted")}),
    # scikit-learn's average="samples" (MultiBench's MM-IMDB F1 samples); torchmetrics has no sample average,
    # so each sample's 2tp / (2tp + fp + fn) is written out, 0 for a sample with no true and no predicted label
    Metric(
        "f1_samples",
        True,
        "F1 samples",
        {"multilabel": _mean_of(_sample_f1)},
        per_sample_mean=True,
        per_sample={"multilabel": _sample_f1},
    ),
    Metric("mae", False, "MAE", {"regression": _mae}, per_sample_mean=True, per_sample={"regression": _abs_error}),
    Metric("mse", False, "MSE", {"regression": _mse}, per_sample_mean=True, per_sample={"regression": _squared_error}),
    Metric("corr", True, "Pearson r", {"regression": _corr}),
    Metric(
        "acc2_has0",
        True,
        "Acc-2 (has-zero)",
        {"regression": _mean_of(_same_sign_has0)},
        per_sample_mean=True,
        per_sample={"regression": _same_sign_has0},
    ),
    Metric("f1_has0", True, "F1 (has-zero)", {"regression": _f1_binary(non_zero=False)}),
    Metric("acc2_non0", True, "Acc-2 (non-zero)", {"regression": _acc2_non0()}, per_sample_mean=True),
    Metric("f1_non0", True, "F1 (non-zero)", {"regression": _f1_binary(non_zero=True)}),
    # MMSA Mult_acc_5 / Mult_acc_7: both sides clipped to [-2, 2] / [-3, 3], rounded (half to even), compared
    Metric(
        "acc5",
        True,
        "Acc-5",
        {"regression": _mean_of(_same_rounded(2.0))},
        per_sample_mean=True,
        per_sample={"regression": _same_rounded(2.0)},
    ),
    Metric(
        "acc7",
        True,
        "Acc-7",
        {"regression": _mean_of(_same_rounded(3.0))},
        per_sample_mean=True,
        per_sample={"regression": _same_rounded(3.0)},
    ),
):
    register_metric(_metric)
