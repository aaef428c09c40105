"""Coverage of 95% intervals of a mean paired difference at the seed counts studies use.

Reproduces the figures behind ``analysis.interval: t`` (fusebench.study.intervals):
2,000 simulated studies per n, normal and exponential (skewed) differences, the paired
t-interval against the BCa bootstrap (999 resamples). Seeded; about 10 s on one core.

    python benchmarks/interval_coverage.py
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from fusebench.study.intervals import t_interval

STUDIES, RESAMPLES = 2000, 999


def coverage(draw: str, n: int, rng: np.random.Generator) -> tuple[float, float]:
    if draw == "normal":
        diffs, mean = rng.normal(0.0, 1.0, size=(STUDIES, n)), 0.0
    else:
        diffs, mean = rng.exponential(1.0, size=(STUDIES, n)), 1.0
    low, high = t_interval(diffs, 0.95)
    bca = stats.bootstrap((diffs,), np.mean, axis=-1, method="BCa", n_resamples=RESAMPLES, rng=rng).confidence_interval
    return (float(np.mean((low <= mean) & (mean <= high))), float(np.mean((bca.low <= mean) & (mean <= bca.high))))


def main() -> None:
    rng = np.random.default_rng(0)
    print("differences  n   t-interval  BCa")
    for draw in ("normal", "exponential"):
        for n in (5, 10, 20, 30):
            t, bca = coverage(draw, n, rng)
            print(f"{draw:<12} {n:<3} {t:>9.1%} {bca:>6.1%}")


if __name__ == "__main__":
    main()
