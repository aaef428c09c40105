"""The plain summary of one metric over a condition's seeds: n, mean, sd, range and a t-interval.

Separate from :mod:`fusebench.study.stats` because it describes one condition and tests
nothing: the analysis's per-group summaries (:mod:`fusebench.study.analysis_groups`) use
it, the paired comparisons between conditions do not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from fusebench.study.stats import Values, check_confidence


@dataclass(frozen=True)
class Summary:
    """Location and spread of one metric over seeds.

    Attributes:
        n: number of non-NaN values used.
        mean, min, max: of those values.
        std: sample standard deviation (ddof=1); NaN when ``n == 1``.
        ci_low, ci_high: t-interval of the mean (``scipy.stats.t``); NaN when ``n == 1``.
    """

    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float
    min: float
    max: float


def summarize(values: Values, confidence: float = 0.95) -> Summary:
    """Mean, sd and a t-interval of the mean for one metric over seeds (NaNs dropped).

    The interval is ``mean +- t_{(1+confidence)/2, n-1} * sd / sqrt(n)`` (``scipy.stats.t``):
    deterministic, and the same t-interval that paired differences get by default.

    Raises:
        ValueError: if no non-NaN value is given.

    >>> s = summarize([1.0, 2.0, 3.0])
    >>> s.n, s.mean, s.std, round(s.ci_low, 3), round(s.ci_high, 3)
    (3, 2.0, 1.0, -0.484, 4.484)
    """
    check_confidence(confidence)
    arr = np.asarray(values, dtype=float).ravel()
    arr = arr[~np.isnan(arr)]
    n = int(arr.size)
    if n == 0:
        raise ValueError("Expected at least one non-NaN value in `values`, got none.")
    mean = float(np.mean(arr))
    std = ci_low = ci_high = math.nan
    if n > 1:
        std = float(np.std(arr, ddof=1))
        half = float(stats.t.ppf((1.0 + confidence) / 2.0, df=n - 1)) * std / math.sqrt(n)
        ci_low, ci_high = mean - half, mean + half
    return Summary(n, mean, std, ci_low, ci_high, float(np.min(arr)), float(np.max(arr)))
