"""MOSI regression metrics against values worked out by hand from MMSA's definitions.

MMSA ``src/MMSA/utils/metricsTop.py``, ``MetricsTop.__eval_mosei_regression`` (used for MOSI
and MOSEI): MAE ``mean(|pred - truth|)``; Pearson ``corrcoef``; "has-zero" Acc-2 and weighted F1
on ``truth >= 0`` vs ``pred >= 0`` over all samples; "non-zero" Acc-2 and weighted F1 on
``truth > 0`` vs ``pred > 0`` over the samples whose truth is not 0; Acc-5 / Acc-7: both sides
clipped to [-2, 2] / [-3, 3], then ``numpy.round`` (half to even) and compared.
"""

from __future__ import annotations

import pytest
import torch
from scipy.stats import pearsonr

from fusebench.tasks import Task

PRED = [-1.4, 0.0, 0.6, 2.5, -0.2, 1.5, -2.6, 0.4, 0.0]
TRUTH = [-1.0, 0.0, 1.2, 3.0, 0.0, 1.5, -2.5, -0.6, 1.0]

# Worked out by hand (sample index: pred, truth):
# has-zero  pred >= 0: F T T T F T F T T ; truth >= 0: F T T T T T F F T -> wrong at 4, 7: acc 7/9.
#   class >=0: truth {1,2,3,4,5,8}, pred {1,2,3,5,7,8}: TP 5, FP 1, FN 1 -> F1 5/6 (support 6)
#   class <0 : truth {0,6,7},       pred {0,4,6}:       TP 2, FP 1, FN 1 -> F1 2/3 (support 3)
#   weighted F1 = (6 * 5/6 + 3 * 2/3) / 9 = 7/9.
# non-zero  drop samples 1 and 4 (truth 0); pred > 0 at 2, 3, 5, 7 (sample 8's 0.0 is not > 0);
#   truth > 0 at 2, 3, 5, 8 -> wrong at 7, 8 of 7 samples: acc 5/7.
#   class >0 : TP {2,3,5}, FP {7}, FN {8} -> F1 3/4 (support 4); class <0: TP {0,6}, FP {8}, FN {7} -> 2/3 (3)
#   weighted F1 = (4 * 3/4 + 3 * 2/3) / 7 = 5/7.
# MAE = (0.4 + 0 + 0.6 + 0.5 + 0.2 + 0 + 0.1 + 1.0 + 1.0) / 9 = 3.8 / 9; MSE = 2.82 / 9.
# Acc-7 rounded pred: -1 0 1 2 -0 2 -3 0 0 (2.5 -> 2 and 1.5 -> 2: half to even; -0.0 == 0.0)
#       rounded truth: -1 0 1 3 0 2 -2 -1 1 (-2.5 -> -2) -> equal at 0, 1, 2, 4, 5: 5/9.
# Acc-5 clipped to [-2, 2]: pred -1 0 1 2 -0 2 -2 0 0 ; truth -1 0 1 2 0 2 -2 -1 1 -> wrong at 7, 8: 7/9.
EXPECTED = {
    "acc2_has0": 7 / 9,
    "f1_has0": 7 / 9,
    "acc2_non0": 5 / 7,
    "f1_non0": 5 / 7,
    "mae": 3.8 / 9,
    "mse": 2.82 / 9,
    "acc7": 5 / 9,
    "acc5": 7 / 9,
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_mmsa_regression_metrics_match_hand_computed_values(name: str) -> None:
    task = Task("regression", 1)
    outputs = torch.tensor(PRED).unsqueeze(1)  # [N, 1], as the model's head gives them
    result = task.metrics(outputs, torch.tensor(TRUTH), [name])
    assert result[name] == pytest.approx(EXPECTED[name], abs=1e-6)
    assert result["count"] == len(TRUTH)


def test_rounding_is_half_to_even_as_numpy_round() -> None:
    # half away from zero would give 2.5 -> 3 (= truth 3) and -2.5 -> -3 (= pred -3): Acc-7 7/9, not 5/9
    task = Task("regression", 1)
    outputs = torch.tensor([[0.5], [1.5], [2.5], [-0.5], [-1.5]])
    truth = torch.tensor([0.0, 2.0, 2.0, 0.0, -2.0])
    assert task.metrics(outputs, truth, ["acc7"])["acc7"] == 1.0


def test_pearson_correlation_matches_scipy() -> None:
    task = Task("regression", 1)
    value = task.metrics(torch.tensor(PRED).unsqueeze(1), torch.tensor(TRUTH), ["corr"])["corr"]
    assert value == pytest.approx(pearsonr(PRED, TRUTH).statistic, abs=1e-6)


def test_has_zero_and_non_zero_differ_exactly_on_zero_predictions_and_labels() -> None:
    task = Task("regression", 1)
    # a 0.0 prediction of a positive label: right under has-zero (0 >= 0), wrong under non-zero (0 > 0 fails);
    # a 0 label is scored under has-zero only
    result = task.metrics(torch.tensor([[0.0], [-0.5]]), torch.tensor([1.0, 0.0]), ["acc2_has0", "acc2_non0"])
    assert result["acc2_has0"] == 0.5 and result["acc2_non0"] == 0.0
