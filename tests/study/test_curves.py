"""study/curves.py against hand-computed epochs, Kaplan-Meier products and medians."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fusebench.study.curves import (
    EpochsToThreshold,
    best,
    epochs_to_threshold,
    final,
    first_epoch,
    kaplan_meier_median,
    summarize_epochs_to_threshold,
)

# Validation accuracy per epoch, shaped like the thesis' AV-MNIST runs.
PRETRAINED = [0.9515, 0.9903, 0.9921, 0.9930, 0.9934]
SCRATCH = [0.8567, 0.9520, 0.9700, 0.9801, 0.9850, 0.9880, 0.9893, 0.9901, 0.9905, 0.9910]


def _run(epochs: int | None, max_epochs: int = 10) -> EpochsToThreshold:
    return EpochsToThreshold(epochs=epochs, censored=epochs is None, max_epochs=max_epochs)


def test_epochs_to_threshold_first_reaching_epoch() -> None:
    assert epochs_to_threshold(PRETRAINED, 0.99) == _run(2, 5)
    assert epochs_to_threshold(SCRATCH, 0.99) == _run(8, 10)
    assert epochs_to_threshold([0.5, 0.99, 0.98], 0.99).epochs == 2  # ">=" reaches


def test_epochs_to_threshold_lower_is_better() -> None:
    loss = [1.2, 0.7, 0.31, 0.30, 0.2]
    assert epochs_to_threshold(loss, 0.3, higher_is_better=False).epochs == 4


def test_epochs_to_threshold_censored_not_max_epochs() -> None:
    result = epochs_to_threshold(SCRATCH[:5], 0.99)
    assert result.epochs is None
    assert result.censored is True
    assert result.max_epochs == 5


def test_epochs_to_threshold_ignores_nan() -> None:
    assert epochs_to_threshold([math.nan, 0.2, 0.995], 0.99).epochs == 3
    assert epochs_to_threshold([math.nan, math.nan], 0.1).censored


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param({"epochs": None, "censored": False, "max_epochs": 3}, "None exactly", id="no"),
        pytest.param({"epochs": 2, "censored": True, "max_epochs": 3}, "None exactly", id="both"),
        pytest.param({"epochs": 4, "censored": False, "max_epochs": 3}, r"\[1, 3\]", id="range"),
        pytest.param({"epochs": None, "censored": True, "max_epochs": 0}, ">= 1", id="zero"),
    ],
)
def test_epochs_record_validates(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        EpochsToThreshold(**kwargs)


def test_empty_curve_rejected() -> None:
    with pytest.raises(ValueError, match="non-empty 1-D"):
        epochs_to_threshold([], 0.5)


def test_kaplan_meier_median_hand_example() -> None:
    # Times 2(e) 3(c) 5(e) 6(e) 8(c). S(2) = 4/5 = 0.8; at t=5 three at risk:
    # S(5) = 0.8 * 2/3 = 0.533; at t=6 two at risk: S(6) = 0.267 <= 0.5 -> median 6.
    # The naive median of the reached runs (2, 5, 6) would say 5.
    times = [2, 3, 5, 6, 8]
    reached = [True, False, True, True, False]
    assert kaplan_meier_median(times, reached) == 6.0


@pytest.mark.parametrize(
    "times",
    [
        pytest.param([2, 3, 3, 4, 5], id="odd"),
        pytest.param([2, 4, 5, 9], id="even-midpoint"),
        pytest.param([2, 2, 3, 3], id="even-ties"),
        pytest.param([7], id="single"),
    ],
)
def test_kaplan_meier_without_censoring_is_sample_median(times) -> None:
    assert kaplan_meier_median(times, [True] * len(times)) == pytest.approx(np.median(times))


def test_kaplan_meier_median_not_reached() -> None:
    assert kaplan_meier_median([3, 10, 10, 10], [True, False, False, False]) is None


def test_summary_all_reached() -> None:
    summary = summarize_epochs_to_threshold([_run(e) for e in (2, 3, 3, 4, 5)])
    assert (summary.n, summary.n_reached) == (5, 5)
    assert summary.median_reached == 3.0 and summary.mean_reached == pytest.approx(3.4)
    assert summary.km_median == 3.0
    assert summary.display == "3 (5/5 reached)"


def test_summary_censored_majority() -> None:
    runs = [_run(None), _run(None), _run(None), _run(2), _run(3)]
    summary = summarize_epochs_to_threshold(runs)
    assert summary.km_median is None
    assert summary.mean_reached == 2.5  # only reached runs; never a silent 10
    assert summary.max_follow_up == 10
    assert summary.display == ">10 (censored 3/5)"


def test_summary_censored_minority_uses_km() -> None:
    runs = [_run(2), _run(None, 3), _run(5), _run(6), _run(None, 8)]
    summary = summarize_epochs_to_threshold(runs)
    assert summary.median_reached == 5.0
    assert summary.km_median == 6.0
    assert summary.max_follow_up == 8
    assert summary.display == "6 (KM; 3/5 reached, censored 2/5)"


def test_summary_none_reached_and_empty() -> None:
    summary = summarize_epochs_to_threshold([_run(None, 10), _run(None, 12)])
    assert summary.median_reached is None and summary.mean_reached is None
    assert summary.display == ">12 (censored 2/2)"
    with pytest.raises(ValueError, match="at least one EpochsToThreshold"):
        summarize_epochs_to_threshold([])


def test_first_final_best() -> None:
    assert first_epoch(PRETRAINED) == 0.9515
    assert final(SCRATCH) == 0.9910
    assert best(PRETRAINED) == (0.9934, 5)
    assert best([0.5, 0.3, 0.3, 0.4], higher_is_better=False) == (0.3, 2)  # first on ties
    assert best([math.nan, 0.2, 0.1]) == (0.2, 2)
    with pytest.raises(ValueError, match="non-NaN value in `curve`"):
        best([math.nan, math.nan])
