"""tasks/builtin_metrics.py, looked up through tasks/metrics.py, against scikit-learn and hand values.

The hand values are worked out from MMSA's definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score

from fusebench.tasks import METRICS, MetricContext, get_metric, higher_is_better, metric_names

GENERATOR = torch.Generator().manual_seed(0)
N, C, L = 400, 7, 5


def _multiclass() -> tuple[torch.Tensor, torch.Tensor]:
    target = torch.randint(0, C, (N,), generator=GENERATOR)
    logits = torch.randn(N, C, generator=GENERATOR)
    logits[torch.arange(N), target] += 1.5 * torch.rand(N, generator=GENERATOR)  # better than chance, not perfect
    return logits, target


def _multilabel() -> tuple[torch.Tensor, torch.Tensor]:
    target = (torch.rand(N, L, generator=GENERATOR) < torch.linspace(0.05, 0.6, L)).float()
    target[:7] = 0.0  # samples with no true label (scikit-learn's zero-division case)
    logits = torch.randn(N, L, generator=GENERATOR) + 2.0 * (target - 0.5)
    logits[7:12] = -5.0  # samples with no predicted label
    return logits, target


@pytest.mark.parametrize("average", ["macro", "micro", "weighted"])
def test_multiclass_f1_matches_sklearn(average: str) -> None:
    logits, target = _multiclass()
    value = get_metric(f"f1_{average}")(logits, target, MetricContext("multiclass", C))
    preds = logits.argmax(1).numpy()
    assert value == pytest.approx(f1_score(target.numpy(), preds, average=average), abs=1e-6)


def test_multiclass_accuracy_is_the_fraction_correct() -> None:
    logits, target = _multiclass()
    value = get_metric("accuracy")(logits, target, MetricContext("multiclass", C))
    assert value == pytest.approx(accuracy_score(target.numpy(), logits.argmax(1).numpy()), abs=1e-7)


@pytest.mark.parametrize("average", ["samples", "macro", "micro", "weighted"])
@pytest.mark.parametrize("threshold", [0.5, 0.3])
def test_multilabel_f1_matches_sklearn(average: str, threshold: float) -> None:
    logits, target = _multilabel()
    value = get_metric(f"f1_{average}")(logits, target, MetricContext("multilabel", L, threshold))
    preds = (torch.sigmoid(logits) >= threshold).int().numpy()
    reference = f1_score(target.int().numpy(), preds, average=average, zero_division=0)
    assert value == pytest.approx(reference, abs=1e-6)


def test_f1_samples_by_hand() -> None:
    """Per-sample F1 = 2tp / (2tp + fp + fn), 0 for a sample with neither true nor predicted labels."""
    target = torch.tensor([[1, 0, 1], [0, 0, 0], [0, 1, 0]]).float()
    logits = torch.tensor([[3.0, -3, -3], [-3, -3, -3], [3, 3, -3]])  # predicts {0}, {}, {0, 1}
    value = get_metric("f1_samples")(logits, target, MetricContext("multilabel", 3))
    assert value == pytest.approx((2 / 3 + 0.0 + 2 / 3) / 3)


# Regression: MMSA's MetricsTop.__eval_mosi_regression, by hand on six scores.
TRUTH = torch.tensor([-2.6, -0.4, 0.0, 0.0, 0.5, 2.5])
PRED = torch.tensor([-1.5, 0.3, -0.2, 0.4, 1.5, 3.4])


def _regression(name: str) -> float:
    return get_metric(name)(PRED.unsqueeze(1), TRUTH, MetricContext("regression", 1))


def test_regression_mae_and_corr() -> None:
    assert _regression("mae") == pytest.approx((1.1 + 0.7 + 0.2 + 0.4 + 1.0 + 0.9) / 6)
    assert _regression("mse") == pytest.approx((1.21 + 0.49 + 0.04 + 0.16 + 1.0 + 0.81) / 6)
    assert _regression("corr") == pytest.approx(float(np.corrcoef(PRED.numpy(), TRUTH.numpy())[0, 1]), abs=1e-6)


def test_regression_acc2_has_zero_and_non_zero() -> None:
    # has-zero: truth >= 0 -> [F, F, T, T, T, T]; pred >= 0 -> [F, T, F, T, T, T]: 4 of 6 agree
    assert _regression("acc2_has0") == pytest.approx(4 / 6)
    assert _regression("f1_has0") == pytest.approx(f1_score([0, 0, 1, 1, 1, 1], [0, 1, 0, 1, 1, 1], average="weighted"))
    # non-zero: the two label-0 samples are dropped; truth > 0 -> [F, F, T, T], pred > 0 -> [F, T, T, T]: 3 of 4
    assert _regression("acc2_non0") == pytest.approx(3 / 4)
    assert _regression("f1_non0") == pytest.approx(f1_score([0, 0, 1, 1], [0, 1, 1, 1], average="weighted"))


def test_regression_acc7_and_acc5_clip_and_round_half_to_even() -> None:
    # acc7: clip to [-3, 3] and round (half to even): truth [-3, -0, 0, 0, 0, 2] (0.5 -> 0, 2.5 -> 2)
    # pred [-2, 0, -0, 0, 2, 3] (-1.5 -> -2, 1.5 -> 2, 3.4 -> 3): agree at 1, 2, 3 -> 3/6
    assert _regression("acc7") == pytest.approx(3 / 6)
    # acc5: clip to [-2, 2]: truth [-2, -0, 0, 0, 0, 2], pred [-2, 0, -0, 0, 2, 2]: agree at 0, 1, 2, 3, 5 -> 5/6
    assert _regression("acc5") == pytest.approx(5 / 6)


def test_every_metric_declares_direction_and_kinds() -> None:
    assert higher_is_better("accuracy") and not higher_is_better("mae") and not higher_is_better("loss")
    assert metric_names("multiclass") == ["accuracy", "f1_macro", "f1_micro", "f1_weighted"]
    assert metric_names("multilabel") == ["f1_macro", "f1_micro", "f1_weighted", "f1_samples"]
    assert "mae" in metric_names("regression") and "accuracy" not in metric_names("regression")
    for metric in METRICS.values():
        assert metric.kinds and isinstance(metric.higher_is_better, bool)


def test_metric_errors_name_the_metric_and_the_task() -> None:
    with pytest.raises(ValueError, match=r"Unknown metric `acuracy` \(did you mean `accuracy`\?\)"):
        get_metric("acuracy")
    with pytest.raises(ValueError, match="`mae` applies to \\['regression'\\] tasks, not to a `multiclass` task"):
        get_metric("mae")(torch.zeros(2, 3), torch.tensor([0, 1]), MetricContext("multiclass", 3))


def test_corr_of_a_constant_prediction_is_nan() -> None:
    value = get_metric("corr")(torch.zeros(5, 1), torch.arange(5.0), MetricContext("regression", 1))
    assert math.isnan(value)
