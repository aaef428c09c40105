"""Test-set uncertainty: how much a reported number would move with a new test set.

Every run of a study is evaluated on the same test set, so the seed spread (and the CI
over seeds) leaves out the test sample's own sampling error. Two ways to state it:

- accuracy-like proportions (:data:`PROPORTION_METRICS`): the Wilson binomial interval
  (``statsmodels.stats.proportion.proportion_confint``) of the group's mean on the N test
  samples. For one run it is the binomial interval of its accuracy; for a mean over seeds
  that share the test set it is an upper bound (exact when all seeds err on the same
  samples; averaging seeds that disagree lowers the variance);
- any metric, and any paired difference: a percentile bootstrap over test samples
  (``scipy.stats.bootstrap``), resampling the sample indices jointly for every run, since
  the runs share the test set, and recomputing the seed-mean (or the mean paired
  difference) from the saved ``test_logits.safetensors``.

The metric is recomputed by :func:`score` (the task's metric code, :mod:`fusebench.tasks`);
metrics with per-sample scores (``Metric.per_sample``: accuracy, MAE, F1 samples, ...) take
a vectorised fast path that gives the same value.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy import stats
from statsmodels.stats.proportion import proportion_confint
from torch import Tensor

from fusebench.tasks import Task, get_metric

#: Metrics that are a proportion of test samples (0/1 per sample): the Wilson interval applies.
PROPORTION_METRICS = frozenset({"accuracy", "acc2_has0", "acc5", "acc7"})
RESAMPLES_PER_SAMPLE = 2000  # vectorised metrics: cheap
RESAMPLES_LOOPED = 500  # metrics recomputed per resample (about 0.5 ms each for 2,000 samples)
Saved = tuple[Tensor, Tensor, Task]  # (outputs [N, ...], target [N, ...], task) of one run and pattern
Statistic = Callable[..., Any]  # indices -> the statistic (a float, or an array over resamples when vectorised)


def per_sample_scores(outputs: Tensor, target: Tensor, task: Task, metric: str) -> np.ndarray | None:
    """``[N]`` per-sample scores whose mean is ``metric``, or ``None`` for a metric without them."""
    fn = get_metric(metric).per_sample.get(task.kind)
    return None if fn is None else fn(outputs.float(), target, task.context).double().numpy()


def score(outputs: Tensor, target: Tensor, metric: str, task: Task) -> float:
    """``metric`` of one run's saved test outputs, computed by the task's metric code.

    This is the one place the study statistics call into the metric registry.
    """
    return task.score(outputs, target, metric)


@dataclass(frozen=True)
class TestSetInterval:
    """Interval of a seed-mean (or mean paired difference) from test-sample error alone.

    Attributes:
        method: ``"wilson"`` (binomial) or ``"bootstrap"`` (percentile, over test samples).
        low, high: the interval at ``confidence``.
        samples: test samples N.
        resamples: bootstrap resamples (0 for Wilson).
        runs: runs the interval averages over (per side for a difference).
        confidence: its level.
    """

    __test__ = False  # not a pytest class despite the name

    method: str
    low: float
    high: float
    samples: int
    resamples: int
    runs: int
    confidence: float

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2.0


def wilson_interval(mean: float, samples: int, runs: int = 1, confidence: float = 0.95) -> TestSetInterval:
    """Wilson interval of a proportion ``mean`` measured on ``samples`` test samples.

    The count of successes is ``mean * samples`` (a seed-mean of accuracies need not be a
    whole number of samples; the Wilson formula does not require one).

    Raises:
        ValueError: ``mean`` outside [0, 1] or ``samples`` < 1.

    >>> w = wilson_interval(0.5, 100)
    >>> round(w.low, 4), round(w.high, 4)
    (0.4038, 0.5962)
    """
    if not 0.0 <= mean <= 1.0:
        raise ValueError(f"Expected a proportion in [0, 1] for the Wilson interval, got {mean}.")
    if samples < 1:
        raise ValueError(f"Expected at least one test sample, got {samples}.")
    low, high = proportion_confint(mean * samples, samples, alpha=1.0 - confidence, method="wilson")
    return TestSetInterval("wilson", float(low), float(high), int(samples), 0, runs, confidence)


def _check(saved: Sequence[Saved]) -> int:
    if not saved:
        raise ValueError("Expected at least one run's saved test predictions, got none.")
    sizes = {int(target.shape[0]) for _, target, _ in saved}
    if len(sizes) != 1:
        raise ValueError(f"Expected every run to share one test set, got test-set sizes {sorted(sizes)}.")
    return sizes.pop()


def _bootstrap(
    samples: int, statistic: Statistic, vectorized: bool, resamples: int, confidence: float, seed: int
) -> tuple[float, float]:
    indices = np.arange(samples)
    result = stats.bootstrap(
        (indices,),
        statistic,
        vectorized=vectorized,
        n_resamples=resamples,
        method="percentile",
        confidence_level=confidence,
        rng=np.random.default_rng(seed),
        batch=100,
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def _per_run_statistic(sides: Sequence[tuple[float, Sequence[Saved]]], metric: str) -> tuple[Statistic, bool]:
    """``statistic(indices)``: the signed sum over sides of each side's seed-mean metric."""
    scores = [[per_sample_scores(p, t, task, metric) for p, t, task in runs] for _, runs in sides]
    present = [[s for s in side if s is not None] for side in scores]
    if all(len(kept) == len(side) for kept, side in zip(present, scores, strict=True)):
        combined = sum(sign * np.mean(side, axis=0) for (sign, _), side in zip(sides, present, strict=True))
        values = np.asarray(combined, dtype=float)

        def vectorised(idx: np.ndarray, axis: int = -1) -> np.ndarray:
            return np.asarray(values[idx].mean(axis=axis))

        return vectorised, True

    def looped(idx: np.ndarray) -> float:
        rows = torch.as_tensor(idx)
        return float(
            sum(sign * np.mean([score(p[rows], t[rows], metric, task) for p, t, task in runs]) for sign, runs in sides)
        )

    return looped, False


def bootstrap_mean(
    saved: Sequence[Saved], metric: str, confidence: float = 0.95, seed: int = 0, resamples: int | None = None
) -> TestSetInterval:
    """Percentile bootstrap over test samples of the seed-mean ``metric`` of ``saved`` runs.

    Raises:
        ValueError: no runs, or runs with different test-set sizes.
    """
    samples = _check(saved)
    statistic, vectorized = _per_run_statistic([(1.0, saved)], metric)
    resamples = resamples or (RESAMPLES_PER_SAMPLE if vectorized else RESAMPLES_LOOPED)
    low, high = _bootstrap(samples, statistic, vectorized, resamples, confidence, seed)
    return TestSetInterval("bootstrap", low, high, samples, resamples, len(saved), confidence)


def bootstrap_difference(
    saved_a: Sequence[Saved],
    saved_b: Sequence[Saved],
    metric: str,
    confidence: float = 0.95,
    seed: int = 0,
    resamples: int | None = None,
) -> TestSetInterval:
    """Percentile bootstrap over test samples of ``mean(metric_b) - mean(metric_a)`` over paired seeds.

    ``saved_a[i]`` and ``saved_b[i]`` are the same seed's runs of the two groups; every
    resample draws one set of test indices for all of them.

    Raises:
        ValueError: unequal numbers of runs, no runs, or runs with different test sets.
    """
    if len(saved_a) != len(saved_b):
        raise ValueError(f"Expected one run per seed on both sides, got {len(saved_a)} and {len(saved_b)}.")
    samples = _check([*saved_a, *saved_b])
    statistic, vectorized = _per_run_statistic([(-1.0, saved_a), (1.0, saved_b)], metric)
    resamples = resamples or (RESAMPLES_PER_SAMPLE if vectorized else RESAMPLES_LOOPED)
    low, high = _bootstrap(samples, statistic, vectorized, resamples, confidence, seed)
    return TestSetInterval("bootstrap", low, high, samples, resamples, len(saved_a), confidence)


def group_interval(
    mean: float | None, samples: int | None, saved: Sequence[Saved] | None, metric: str, confidence: float = 0.95
) -> TestSetInterval | None:
    """The test-set interval of one group's seed-mean: Wilson for proportions, else the bootstrap.

    Returns ``None`` when neither applies (no mean or sample count for Wilson; no saved
    predictions for the bootstrap).
    """
    if mean is None or not math.isfinite(mean):
        return None
    if metric in PROPORTION_METRICS and samples:
        return wilson_interval(mean, samples, len(saved or []) or 1, confidence)
    if saved:
        return bootstrap_mean(saved, metric, confidence)
    return None


def as_record(interval: TestSetInterval | None) -> dict[str, object] | None:
    """JSON-ready fields, ``half_width`` included; ``None`` stays ``None``."""
    if interval is None:
        return None
    return {
        "method": interval.method,
        "low": interval.low,
        "high": interval.high,
        "half_width": interval.half_width,
        "samples": interval.samples,
        "resamples": interval.resamples,
        "runs": interval.runs,
        "confidence": interval.confidence,
    }
