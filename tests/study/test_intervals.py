"""Coverage of the intervals of a mean paired difference, measured by simulation.

The claim the report rests on: at the seed counts a study affords, the paired t-interval
holds its 95% level and the BCa bootstrap does not. Both are checked on simulated
normal differences with a seeded generator, vectorised over the simulated studies.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from fusebench.study.intervals import bca_interval, resolve_method, t_interval

TRUE_MEAN = 0.02  # e.g. +2 accuracy points
SD = 0.015


def _studies(n: int, count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(TRUE_MEAN, SD, size=(count, n))  # [studies, seeds]


def _coverage(low: np.ndarray, high: np.ndarray) -> float:
    return float(np.mean((low <= TRUE_MEAN) & (TRUE_MEAN <= high)))


def test_t_interval_covers_95_percent_at_five_seeds() -> None:
    low, high = t_interval(_studies(5, 20_000, seed=0), 0.95)  # standard error of the coverage ~0.0015
    assert 0.93 <= _coverage(low, high) <= 0.97


def test_bca_interval_undercovers_at_five_seeds() -> None:
    diffs = _studies(5, 1_000, seed=1)
    result = stats.bootstrap((diffs,), np.mean, axis=-1, method="BCa", n_resamples=999, rng=np.random.default_rng(2))
    coverage = _coverage(result.confidence_interval.low, result.confidence_interval.high)
    assert coverage < 0.90  # about 0.84: why the report shows the t-interval for small n


def test_t_interval_matches_scipy_t_and_is_vectorised() -> None:
    diffs = _studies(6, 3, seed=3)
    low, high = t_interval(diffs, 0.9)
    for row, lo, hi in zip(diffs, low, high, strict=True):
        expected = stats.t.interval(0.9, df=5, loc=row.mean(), scale=stats.sem(row))
        assert (lo, hi) == pytest.approx(expected, rel=1e-12)
        assert t_interval(row, 0.9) == pytest.approx((lo, hi), rel=1e-12)


def test_t_interval_edge_cases() -> None:
    assert t_interval([0.3, 0.3, 0.3]) == pytest.approx((0.3, 0.3))  # zero spread: the point itself
    low, high = t_interval([0.3])
    assert np.isnan(low) and np.isnan(high)
    assert bca_interval([0.1, 0.1, 0.1]) == pytest.approx((0.1, 0.1))


def test_interval_method_names_are_checked() -> None:
    with pytest.raises(ValueError, match=r"`interval` in \['t', 'bca', 'auto'\], got `percentile`"):
        resolve_method("percentile", 5)  # type: ignore[arg-type]
