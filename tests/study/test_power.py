"""The minimum-seeds advisor against statsmodels, a published value and a simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from fusebench.study.power import MAX_SEEDS, paired_power, seeds_for_power


def test_d_of_one_needs_ten_seed_pairs() -> None:
    # Cohen (1988) / G*Power: paired t, two-sided, alpha .05, power .8, d_z = 1 -> n = 10 (9.94).
    advice = seeds_for_power(1.0)
    assert advice.seeds == 10 and advice.effect_size == 1.0 and advice.reason == ""


@pytest.mark.parametrize("effect", [0.3, 0.8, 1.5, -2.5])
@pytest.mark.parametrize("alpha", [0.05, 0.05 / 3])
def test_answer_is_the_smallest_n_reaching_the_power(effect: float, alpha: float) -> None:
    seeds = seeds_for_power(effect, alpha=alpha).seeds
    assert seeds is not None
    assert paired_power(effect, seeds, alpha) >= 0.8
    assert seeds == 2 or paired_power(effect, seeds - 1, alpha) < 0.8


def test_power_matches_a_simulated_paired_t_test() -> None:
    effect, seeds = 1.2, seeds_for_power(1.2).seeds
    assert seeds is not None
    diffs = np.random.default_rng(0).normal(effect, 1.0, size=(20_000, seeds))  # sd 1: d_z = effect
    rejected = float(np.mean(stats.ttest_1samp(diffs, 0.0, axis=-1).pvalue < 0.05))
    assert rejected == pytest.approx(paired_power(effect, seeds), abs=0.01)
    assert rejected >= 0.79


@pytest.mark.parametrize(
    ("effect", "reason"),
    [
        pytest.param(0.0, "observed effect is zero", id="zero"),
        pytest.param(math.nan, "undefined", id="nan"),
        pytest.param(None, "undefined", id="none"),
        pytest.param(0.01, f"more than {MAX_SEEDS} seeds", id="tiny"),
    ],
)
def test_no_number_when_none_exists(effect: float | None, reason: str) -> None:
    advice = seeds_for_power(effect)
    assert advice.seeds is None and reason in advice.reason


@pytest.mark.parametrize(("effect", "seeds"), [(4.0, 3), (6.0, 3), (12.0, 2), (50.0, 2)])
def test_large_effects_need_two_or_three_seeds(effect: float, seeds: int) -> None:
    # power at n = 2 is 0.34 for d_z = 4 and reaches 0.8 near d_z = 11.6 (df = 1: t_crit = 12.7)
    assert seeds_for_power(effect).seeds == seeds
    assert math.isfinite(paired_power(effect, 2))  # NaN of the noncentral t replaced by a lower bound


def test_bad_levels_are_errors() -> None:
    with pytest.raises(ValueError, match=r"`power` in \(0, 1\), got 80"):
        seeds_for_power(1.0, power=80)
