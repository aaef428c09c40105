"""Test-set uncertainty against statsmodels, hand formulas and a coverage simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from statsmodels.stats.proportion import proportion_confint

from fusebench.study.testset import (
    _per_run_statistic,
    bootstrap_difference,
    bootstrap_mean,
    group_interval,
    score,
    wilson_interval,
)
from fusebench.tasks import Task

CLASSES, SAMPLES = 10, 2000
TASK = Task("multiclass", CLASSES)


def _run(accuracy: float, seed: int, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, Task]:
    """Logits [N, 10] whose argmax is right on about ``accuracy`` of the samples."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(len(target), CLASSES, generator=g)
    right = torch.rand(len(target), generator=g) < accuracy
    logits[right, target[right]] += 10.0
    return logits, target, TASK


@pytest.fixture(scope="module")
def target() -> torch.Tensor:
    return torch.randint(0, CLASSES, (SAMPLES,), generator=torch.Generator().manual_seed(0))


def test_wilson_matches_statsmodels_and_the_formula() -> None:
    w = wilson_interval(0.6036, 2000, runs=5)
    low, high = proportion_confint(0.6036 * 2000, 2000, alpha=0.05, method="wilson")
    assert (w.low, w.high) == pytest.approx((low, high))
    z, n, p = 1.959963984540054, 2000, 0.6036  # Wilson (1927): centre and half-width from the definition
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    assert (w.low, w.high) == pytest.approx((centre - half, centre + half), rel=1e-9)
    assert (w.method, w.samples, w.runs, w.resamples) == ("wilson", 2000, 5, 0)
    with pytest.raises(ValueError, match="proportion in \\[0, 1\\].*got 1.5"):
        wilson_interval(1.5, 100)


def test_bootstrap_of_one_run_agrees_with_the_binomial(target: torch.Tensor) -> None:
    run = _run(0.6, 1, target)
    accuracy = score(run[0], run[1], "accuracy", run[2])
    boot = bootstrap_mean([run], "accuracy")
    wilson = wilson_interval(accuracy, SAMPLES)
    assert boot.method == "bootstrap" and boot.resamples == 2000 and boot.runs == 1
    assert boot.low < accuracy < boot.high
    assert boot.half_width == pytest.approx(wilson.half_width, rel=0.08)


def test_fast_path_statistic_equals_the_engine_metric(target: torch.Tensor) -> None:
    runs = [_run(0.6, s, target) for s in range(3)]
    fast, vectorised = _per_run_statistic([(1.0, runs)], "accuracy")
    assert vectorised
    idx = np.random.default_rng(0).integers(0, SAMPLES, SAMPLES)
    rows = torch.as_tensor(idx)
    expected = np.mean([TASK.metrics(p[rows], t[rows], ["accuracy"])["accuracy"] for p, t, _ in runs])
    assert float(fast(idx)) == pytest.approx(expected, abs=1e-6)  # torchmetrics works in float32


def test_bootstrap_percentile_interval_covers_about_95_percent() -> None:
    rng = np.random.default_rng(3)
    hits, trials = 0, 200
    for trial in range(trials):
        n = 400
        target = torch.as_tensor(rng.integers(0, CLASSES, n))
        correct = torch.as_tensor(rng.random(n) < 0.7)
        logits = torch.zeros(n, CLASSES)
        logits[torch.arange(n), torch.where(correct, target, (target + 1) % CLASSES)] = 1.0
        interval = bootstrap_mean([(logits, target, TASK)], "accuracy", seed=trial, resamples=1000)
        hits += interval.low <= 0.7 <= interval.high
    assert 0.90 <= hits / trials <= 0.99


def test_difference_matches_the_paired_proportions_standard_error(target: torch.Tensor) -> None:
    a, b = _run(0.60, 11, target), _run(0.66, 12, target)
    diff = bootstrap_difference([a], [b], "accuracy")
    right_a = (a[0].argmax(1) == target).numpy()
    right_b = (b[0].argmax(1) == target).numpy()
    only_b, only_a = np.sum(right_b & ~right_a), np.sum(right_a & ~right_b)  # discordant pairs
    n = SAMPLES
    se = math.sqrt((only_a + only_b) / n**2 - (only_b - only_a) ** 2 / n**3)  # paired proportions (McNemar)
    assert diff.half_width == pytest.approx(1.96 * se, rel=0.1)
    assert diff.low < (right_b.mean() - right_a.mean()) < diff.high
    same = bootstrap_difference([a], [a], "accuracy")
    assert (same.low, same.high) == (0.0, 0.0)


def test_non_proportion_metric_is_bootstrapped_by_recomputing_it(target: torch.Tensor) -> None:
    runs = [_run(0.6, s, target) for s in range(2)]
    mean_f1 = np.mean([score(p, t, "f1_macro", task) for p, t, task in runs])
    interval = group_interval(float(mean_f1), SAMPLES, runs, "f1_macro")
    assert interval is not None and interval.method == "bootstrap" and interval.resamples == 500
    assert interval.low < mean_f1 < interval.high and interval.half_width < 0.05
    assert group_interval(0.6, SAMPLES, None, "accuracy").method == "wilson"  # proportions need no logits
    assert group_interval(0.6, SAMPLES, None, "f1_macro") is None
    assert group_interval(None, SAMPLES, runs, "accuracy") is None


def test_runs_must_share_the_test_set(target: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="share one test set, got test-set sizes \\[1000, 2000\\]"):
        bootstrap_mean([_run(0.6, 0, target), _run(0.6, 1, target[:1000])], "accuracy")
    with pytest.raises(ValueError, match="one run per seed on both sides, got 1 and 2"):
        bootstrap_difference([_run(0.6, 0, target)], [_run(0.6, 1, target)] * 2, "accuracy")


def test_regression_mae_takes_the_per_sample_fast_path() -> None:
    """MAE is a mean of per-sample absolute errors: the vectorised statistic equals the task's metric."""
    g = torch.Generator().manual_seed(4)
    truth = torch.randn(500, generator=g) * 1.5
    task = Task("regression", 1)
    runs = [((truth + torch.randn(500, generator=g) * 0.5).unsqueeze(1), truth, task) for _ in range(2)]
    fast, vectorised = _per_run_statistic([(1.0, runs)], "mae")
    assert vectorised
    idx = np.random.default_rng(1).integers(0, 500, 500)
    rows = torch.as_tensor(idx)
    expected = np.mean([task.score(p[rows], t[rows], "mae") for p, t, task in runs])
    assert float(fast(idx)) == pytest.approx(expected, abs=1e-6)
    interval = group_interval(float(np.mean([score(*r[:2], "mae", r[2]) for r in runs])), 500, runs, "mae")
    assert interval is not None and interval.method == "bootstrap" and interval.resamples == 2000
