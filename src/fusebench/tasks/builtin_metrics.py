"""The metrics fusebench ships: their maths and their registration in :data:`~fusebench.tasks.metrics.METRICS`.

Kept apart from the registry (:mod:`fusebench.tasks.metrics`: what a metric is, how one is
looked up), which third-party metrics use the same way. The maths comes from torchmetrics
where torchmetrics has it. Importing this module registers the metrics; the
``fusebench.tasks`` package does so.

Regression metrics follow MMSA's ``MetricsTop.__eval_mosi_regression`` (the CMU-MOSI /
MOSEI reporting convention): MAE, Pearson correlation, binary accuracy and weighted F1 in
both conventions ("has-zero": negative vs non-negative; "non-zero": samples whose label is
0 excluded, positive vs negative), and 5- and 7-class accuracy of the scores clipped to
[-2, 2] and [-3, 3] and rounded (half to even, as ``numpy.round``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor
from torchmetrics.functional import mean_absolute_error, mean_squared_error, pearson_corrcoef
from torchmetrics.functional.classification import (
    multiclass_accuracy,
    multiclass_f1_score,
    multilabel_f1_score,
)

from fusebench.tasks.metrics import Metric, MetricContext, MetricFn, TaskKind, register_metric

PerSampleFn = Callable[[Tensor, Tensor, MetricContext], Tensor]

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


def _mean_of(per_sample: PerSampleFn) -> MetricFn:
    def fn(outputs: Tensor, target: Tensor, ctx: MetricContext) -> float:
        return float(per_sample(outputs, target, ctx).double().mean())

    return fn


def _sample_mean_metric(name: str, label: str, kind: TaskKind, per_sample: PerSampleFn) -> Metric:
    """A higher-is-better metric that is the mean of one per-sample score (MMPT's exact expectation reads it)."""
    return Metric(name, True, label, {kind: _mean_of(per_sample)}, per_sample_mean=True, per_sample={kind: per_sample})


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
    _sample_mean_metric("f1_samples", "F1 samples", "multilabel", _sample_f1),
    Metric("mae", False, "MAE", {"regression": _mae}, per_sample_mean=True, per_sample={"regression": _abs_error}),
    Metric("mse", False, "MSE", {"regression": _mse}, per_sample_mean=True, per_sample={"regression": _squared_error}),
    Metric("corr", True, "Pearson r", {"regression": _corr}),
    _sample_mean_metric("acc2_has0", "Acc-2 (has-zero)", "regression", _same_sign_has0),
    Metric("f1_has0", True, "F1 (has-zero)", {"regression": _f1_binary(non_zero=False)}),
    Metric("acc2_non0", True, "Acc-2 (non-zero)", {"regression": _acc2_non0()}, per_sample_mean=True),
    Metric("f1_non0", True, "F1 (non-zero)", {"regression": _f1_binary(non_zero=True)}),
    # MMSA Mult_acc_5 / Mult_acc_7: both sides clipped to [-2, 2] / [-3, 3], rounded (half to even), compared
    _sample_mean_metric("acc5", "Acc-5", "regression", _same_rounded(2.0)),
    _sample_mean_metric("acc7", "Acc-7", "regression", _same_rounded(3.0)),
):
    register_metric(_metric)
