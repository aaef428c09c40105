"""How many seeds a confirmatory study needs: power of the paired t-test (statsmodels).

Given the effect a study observed (the paired effect size ``d_z = mean(d) / sd(d)``, here
its bias-corrected estimate Hedges' ``g_z``), :func:`seeds_for_power` solves the paired
(one-sample) t-test's power equation for the number of seed pairs with
``statsmodels.stats.power.TTestPower``. Taking the observed effect as the true one is
optimistic: effects estimated from a handful of seeds are noisy, and the ones that look
large are inflated, which the report says next to the number.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

from statsmodels.stats.power import TTestPower

MAX_SEEDS = 1000  # beyond this the answer is "the effect is too small to chase with seeds"


@dataclass(frozen=True)
class SeedsAdvice:
    """Seeds needed for ``power`` at ``alpha`` (two-sided paired t-test).

    Attributes:
        effect_size: ``|g_z|`` the calculation assumed.
        alpha: significance level of the planned test.
        power: the wanted probability of detecting the effect.
        seeds: smallest whole number of seed pairs reaching ``power``; ``None`` when the
            effect is zero or undefined, or more than :data:`MAX_SEEDS` are needed.
        reason: why ``seeds`` is ``None`` ("" otherwise).
    """

    effect_size: float
    alpha: float
    power: float
    seeds: int | None
    reason: str = ""


def paired_power(effect_size: float, seeds: int, alpha: float = 0.05) -> float:
    """Power of the two-sided paired t-test with ``seeds`` pairs for a true ``d_z``.

    ``TTestPower().power`` evaluates the noncentral t, which returns NaN at some large
    noncentralities (e.g. ``d_z = 6`` with 2 seeds). Power grows with the effect, so a
    NaN is replaced by the power at the nearest smaller effect (1% steps) where it is
    defined: a lower bound, which can only make the advice ask for more seeds.

    >>> round(paired_power(1.0, 10), 3)
    0.803
    """
    effect = abs(effect_size)
    for step in range(100):
        value = float(
            TTestPower().power(
                effect_size=effect * (1.0 - 0.01 * step), nobs=seeds, alpha=alpha, alternative="two-sided"
            )
        )
        if math.isfinite(value):
            return value
    return math.nan


def seeds_for_power(effect_size: float | None, alpha: float = 0.05, power: float = 0.8) -> SeedsAdvice:
    """The smallest number of seed pairs whose paired t-test reaches ``power`` for ``effect_size``.

    Solved with ``TTestPower().solve_power`` and rounded up; the power at the answer is at
    least ``power`` and at one seed fewer below it. Two seeds are the minimum of a paired
    t-test (one degree of freedom).

    Args:
        effect_size: the paired effect size ``d_z`` (sign ignored); ``None``/NaN if undefined.
        alpha: two-sided significance level, e.g. 0.05, or 0.05 / k for k primary tests.
        power: wanted power in (0, 1).

    Raises:
        ValueError: ``alpha`` or ``power`` outside (0, 1).

    >>> seeds_for_power(1.0).seeds  # d_z = 1 needs 10 pairs (9.94 rounded up)
    10
    """
    for name, value in (("alpha", alpha), ("power", power)):
        if not 0.0 < value < 1.0:
            raise ValueError(f"Expected `{name}` in (0, 1), got {value}.")
    if effect_size is None or not math.isfinite(effect_size):
        return SeedsAdvice(
            math.nan, alpha, power, None, "the effect size is undefined (fewer than 3 seeds or no spread)"
        )
    effect = abs(float(effect_size))
    if effect == 0.0:
        return SeedsAdvice(effect, alpha, power, None, "the observed effect is zero")
    if paired_power(effect, 2, alpha) >= power:
        return SeedsAdvice(effect, alpha, power, 2)
    if paired_power(effect, MAX_SEEDS, alpha) < power:
        return SeedsAdvice(effect, alpha, power, None, f"more than {MAX_SEEDS} seeds would be needed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a non-converged solve returns NaN; the search below still answers
        solved = float(
            TTestPower().solve_power(effect_size=effect, nobs=None, alpha=alpha, power=power, alternative="two-sided")
        )
    seeds = max(3, math.ceil(solved - 1e-9)) if math.isfinite(solved) else 3
    while paired_power(effect, seeds, alpha) < power:  # the solver's tolerance, either way
        seeds += 1
    while seeds > 3 and paired_power(effect, seeds - 1, alpha) >= power:
        seeds -= 1
    return SeedsAdvice(effect, alpha, power, seeds)
