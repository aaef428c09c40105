"""study/stats.py and study/seed_summary.py against direct scipy/statsmodels calls and hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from fusebench.study.seed_summary import summarize
from fusebench.study.stats import (
    PairedComparison,
    comparison_table,
    hedges_g_paired,
    holm_adjust,
    paired_comparison,
)

# Ten seeds of two conditions with a real, noisy improvement (first-epoch accuracy).
SCRATCH = np.array([0.851, 0.862, 0.847, 0.858, 0.866, 0.855, 0.849, 0.860, 0.853, 0.857])
PRETRAINED = np.array([0.949, 0.955, 0.950, 0.957, 0.952, 0.948, 0.953, 0.956, 0.951, 0.954])


def _compare(a, b, **kwargs) -> PairedComparison:
    return paired_comparison(a, b, metric="accuracy", condition_a="scratch", condition_b="pretrained", **kwargs)


def _record(p: float, name: str = "x") -> PairedComparison:
    nan = math.nan
    return PairedComparison("accuracy", "a", name, 5, nan, nan, nan, nan, nan, nan, p, p, nan)


def test_paired_comparison_matches_scipy() -> None:
    result = _compare(SCRATCH, PRETRAINED)
    t_ref = stats.ttest_rel(PRETRAINED, SCRATCH)
    assert result.n == 10
    assert result.mean_a == pytest.approx(SCRATCH.mean())
    assert result.mean_b == pytest.approx(PRETRAINED.mean())
    assert result.mean_diff == pytest.approx((PRETRAINED - SCRATCH).mean())
    assert result.t_statistic == pytest.approx(float(t_ref.statistic))
    assert result.p_ttest == pytest.approx(float(t_ref.pvalue))
    assert result.p_wilcoxon == pytest.approx(float(stats.wilcoxon(PRETRAINED - SCRATCH).pvalue))
    assert result.t_statistic > 0  # B better -> positive
    assert math.isnan(result.p_holm)
    assert result.note == ""


def test_default_interval_is_the_paired_t_interval_of_scipy() -> None:
    diffs = PRETRAINED[:5] - SCRATCH[:5]
    result = _compare(SCRATCH[:5], PRETRAINED[:5])
    low, high = stats.t.interval(0.95, df=4, loc=diffs.mean(), scale=stats.sem(diffs))
    assert result.ci_method == "t"
    assert (result.ci_low, result.ci_high) == pytest.approx((low, high), rel=1e-12)
    # the interval belongs to the t-test: it excludes 0 exactly when p < 1 - confidence
    assert (result.ci_low > 0) == (result.p_ttest < 0.05)
    at_90 = _compare(SCRATCH[:5], PRETRAINED[:5], confidence=0.9)
    assert at_90.ci_high - at_90.ci_low < result.ci_high - result.ci_low


@pytest.mark.parametrize(
    ("interval", "n", "expected"),
    [
        pytest.param("auto", 5, "t", id="auto-small-n"),
        pytest.param("auto", 10, "bca", id="auto-n10"),
        pytest.param("t", 10, "t", id="t"),
        pytest.param("bca", 5, "bca", id="bca-small-n"),
    ],
)
def test_interval_choice_is_recorded(interval: str, n: int, expected: str) -> None:
    result = _compare(SCRATCH[:n], PRETRAINED[:n], interval=interval, n_resamples=999)
    assert result.ci_method == expected
    assert ("covers well below its level" in result.note) == (expected == "bca" and n < 10)


def test_bootstrap_ci_matches_scipy_and_is_reproducible() -> None:
    diffs = PRETRAINED - SCRATCH
    result = _compare(SCRATCH, PRETRAINED, interval="bca", n_resamples=2000, seed=7)
    reference = stats.bootstrap(
        (diffs,), np.mean, n_resamples=2000, method="BCa", rng=np.random.default_rng(7)
    ).confidence_interval
    assert (result.ci_low, result.ci_high) == pytest.approx((reference.low, reference.high))
    assert result.ci_low < result.mean_diff < result.ci_high
    again = _compare(SCRATCH, PRETRAINED, interval="bca", n_resamples=2000, seed=7)
    assert (again.ci_low, again.ci_high) == (result.ci_low, result.ci_high)
    other = _compare(SCRATCH, PRETRAINED, interval="bca", n_resamples=2000, seed=8)
    assert (other.ci_low, other.ci_high) != (result.ci_low, result.ci_high)


def test_hedges_g_by_hand() -> None:
    # diffs [1, 2, 2, 3]: mean 2, sd sqrt(2/3), d_z = 2 / sqrt(2/3), J = 1 - 3/11 = 8/11.
    a = [1.0, 2.0, 3.0, 4.0]
    b = [2.0, 4.0, 5.0, 7.0]
    expected = 2.0 / math.sqrt(2.0 / 3.0) * (8.0 / 11.0)
    assert hedges_g_paired([1.0, 2.0, 2.0, 3.0]) == pytest.approx(expected)
    assert _compare(a, b).hedges_g == pytest.approx(expected)
    assert _compare(b, a).hedges_g == pytest.approx(-expected)


def test_nan_pairs_dropped_and_n_reported() -> None:
    a = SCRATCH.copy()
    b = PRETRAINED.copy()
    a[2], b[5] = math.nan, math.nan
    keep = np.ones(10, dtype=bool)
    keep[[2, 5]] = False
    result = _compare(a, b)
    assert result.n == 8
    assert result.p_ttest == pytest.approx(float(stats.ttest_rel(b[keep], a[keep]).pvalue))
    assert "dropped 2 of 10 pairs" in result.note


def test_small_n_notes_wilcoxon_floor() -> None:
    result = _compare(SCRATCH[:4], PRETRAINED[:4])
    assert result.n == 4
    assert result.p_wilcoxon == pytest.approx(0.125)  # exact floor 2 / 2**4
    assert result.wilcoxon_floor == pytest.approx(0.125)
    assert "cannot go below 0.125" in result.note


@pytest.mark.parametrize("n", [3, 5, 6, 8])
def test_wilcoxon_floor_is_the_p_of_all_differences_of_one_sign(n: int) -> None:
    diffs = np.arange(1.0, n + 1.0)  # every difference positive: the most extreme signed-rank statistic
    result = _compare(np.zeros(n), diffs)
    assert result.wilcoxon_floor == pytest.approx(float(stats.wilcoxon(diffs).pvalue))


def test_all_zero_differences_give_nan_with_note() -> None:
    result = _compare(SCRATCH[:5], SCRATCH[:5])
    assert math.isnan(result.p_wilcoxon)
    assert math.isnan(result.p_ttest)
    assert math.isnan(result.hedges_g)
    assert result.ci_low == result.ci_high == 0.0
    assert math.isnan(result.wilcoxon_floor)
    assert "every paired difference is zero" in result.note


def test_constant_nonzero_difference_keeps_wilcoxon() -> None:
    # Epochs to threshold 8 vs 2 on every seed: t is degenerate, the signed-rank test is not.
    result = _compare([8, 8, 8, 8, 8, 8], [2, 2, 2, 2, 2, 2])
    assert math.isnan(result.p_ttest)
    assert result.p_wilcoxon == pytest.approx(2 / 2**6)
    assert result.mean_diff == -6.0
    assert "zero variance" in result.note


@pytest.mark.parametrize(
    ("a", "b", "match"),
    [
        pytest.param([0.1, 0.2, 0.3], [0.1, 0.2], "lengths 3 and 2", id="unequal-lengths"),
        pytest.param([0.1], [0.2], "n=1", id="one-pair"),
        pytest.param([0.1, math.nan], [0.2, 0.3], "n=1", id="one-pair-after-nan"),
    ],
)
def test_paired_comparison_errors(a, b, match) -> None:
    with pytest.raises(ValueError, match=match):
        _compare(a, b)


def test_paired_comparison_rejects_bad_confidence() -> None:
    with pytest.raises(ValueError, match="`confidence` in \\(0, 1\\)"):
        _compare(SCRATCH, PRETRAINED, confidence=95)


def test_holm_matches_hand_step_down() -> None:
    # Sorted p: 0.01*3 = 0.03; 0.03*2 = 0.06; 0.04*1 = 0.04 -> max(0.06, 0.04) = 0.06.
    records = [_record(0.01, "x"), _record(0.04, "y"), _record(0.03, "z"), _record(math.nan)]
    adjusted = holm_adjust(records)
    assert [r.condition_b for r in adjusted] == ["x", "y", "z", "x"]
    assert [r.p_holm for r in adjusted[:3]] == pytest.approx([0.03, 0.06, 0.06])
    assert math.isnan(adjusted[3].p_holm)  # NaN stays NaN and is not in the family
    assert {r.p_holm_source for r in adjusted} == {"p_ttest"}
    assert math.isnan(records[0].p_holm)  # inputs untouched


def test_holm_on_wilcoxon_field_and_errors() -> None:
    records = [_compare(SCRATCH, PRETRAINED), _compare(SCRATCH, SCRATCH + 0.001)]
    adjusted = holm_adjust(records, p_field="p_wilcoxon")
    assert adjusted[0].p_holm == pytest.approx(min(1.0, 2 * records[0].p_wilcoxon))
    assert holm_adjust([]) == []
    with pytest.raises(ValueError, match="`p_field`.*got `p_holm`"):
        holm_adjust(records, p_field="p_holm")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="one `p_field` per comparison, got 1 for 2"):
        holm_adjust(records, p_field=["p_ttest"])


def test_holm_with_one_field_per_comparison_matches_statsmodels() -> None:
    from statsmodels.stats.multitest import multipletests

    records = [_compare(SCRATCH, PRETRAINED), _compare(SCRATCH[:6], SCRATCH[:6] + [0.01, 0.0, 0.02, 0.01, 0.0, 0.03])]
    adjusted = holm_adjust(records, p_field=["p_ttest", "p_wilcoxon"])
    expected = multipletests([records[0].p_ttest, records[1].p_wilcoxon], method="holm")[1]
    assert [r.p_holm for r in adjusted] == pytest.approx(list(expected))
    assert [r.p_holm_source for r in adjusted] == ["p_ttest", "p_wilcoxon"]


def test_summarize_matches_scipy_t_interval() -> None:
    summary = summarize(PRETRAINED)
    low, high = stats.t.interval(0.95, df=9, loc=PRETRAINED.mean(), scale=stats.sem(PRETRAINED))
    assert summary.n == 10
    assert summary.std == pytest.approx(PRETRAINED.std(ddof=1))
    assert (summary.ci_low, summary.ci_high) == pytest.approx((low, high))
    assert (summary.min, summary.max) == (PRETRAINED.min(), PRETRAINED.max())


def test_summarize_edge_cases() -> None:
    single = summarize([0.5, math.nan])
    assert single.n == 1 and single.mean == 0.5
    assert math.isnan(single.std) and math.isnan(single.ci_low)
    with pytest.raises(ValueError, match="non-NaN value in `values`"):
        summarize([math.nan])


def test_comparison_table_rows_are_plain_and_carry_n() -> None:
    rows = comparison_table(holm_adjust([_compare(SCRATCH, PRETRAINED)]))
    assert len(rows) == 1
    row = rows[0]
    for key in ("n", "mean_diff", "ci_low", "ci_high", "p_ttest", "p_wilcoxon", "p_holm"):
        assert key in row
    assert row["n"] == 10 and row["hedges_g"] > 0
    assert all(isinstance(v, (str, int, float)) for v in row.values())
