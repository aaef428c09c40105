"""tasks/task.py: losses, predictions, the best constant predictor and target checks, by hand."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from fusebench.tasks import Task


def test_losses_follow_the_kind_and_the_choice() -> None:
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    assert float(Task("multiclass", 3).compute_loss(logits, torch.tensor([0, 2]))) == pytest.approx(
        float(F.cross_entropy(logits, torch.tensor([0, 2])))
    )
    multi_hot = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    assert float(Task("multilabel", 3).compute_loss(logits, multi_hot)) == pytest.approx(
        float(F.binary_cross_entropy_with_logits(logits, multi_hot))
    )
    scores, truth = torch.tensor([[0.5], [-1.0]]), torch.tensor([1.0, 1.0])
    assert float(Task("regression", 1).compute_loss(scores, truth)) == pytest.approx((0.5 + 2.0) / 2)  # L1
    assert float(Task("regression", 1, loss="mse").compute_loss(scores, truth)) == pytest.approx((0.25 + 4.0) / 2)


def test_predictions() -> None:
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.3]])
    assert Task("multiclass", 3).predict(logits).tolist() == [0, 1]
    assert Task("multilabel", 3, threshold=0.55).predict(logits).tolist() == [[1, 0, 0], [0, 1, 1]]  # sigmoid(0)=.5
    assert Task("multilabel", 3, threshold=0.45).predict(logits).tolist() == [[1, 1, 0], [1, 1, 1]]
    assert Task("multilabel", 3, threshold=0.6).predict(logits).tolist() == [[1, 0, 0], [0, 1, 0]]
    assert Task("regression", 1).predict(torch.tensor([[0.25], [-2.0]])).tolist() == [0.25, -2.0]


def test_constant_predictor_multiclass_is_the_training_majority() -> None:
    task = Task("multiclass", 4)
    train = torch.tensor([0, 1, 1, 1, 2, 2])  # majority class 1; class 3 never seen
    constant = task.constant_output(train)
    assert int(constant.argmax()) == 1
    assert torch.exp(constant).tolist() == pytest.approx([1 / 6, 3 / 6, 2 / 6, 0.0], abs=1e-6)
    test = torch.tensor([1, 1, 0, 2, 3])  # n_k = 2 of N = 5
    assert task.constant_score(constant, test, "accuracy") == pytest.approx(2 / 5)
    # F1 of class 1 = 2 n_k / (N + n_k) = 4/7, 0 for the other present classes, averaged over the 4 present ones
    assert task.constant_score(constant, test, "f1_macro") == pytest.approx(4 / 7 / 4)
    assert task.constant_score(constant, test, "f1_weighted") == pytest.approx(2 / 5 * 4 / 7)


def test_constant_predictor_multilabel_is_each_labels_majority() -> None:
    task = Task("multilabel", 3)
    train = torch.tensor([[1, 0, 1], [1, 0, 0], [1, 1, 1], [0, 0, 1]]).float()  # rates 0.75, 0.25, 0.75
    constant = task.constant_output(train)
    assert torch.sigmoid(constant).tolist() == pytest.approx([0.75, 0.25, 0.75], abs=1e-6)
    assert task.predict(constant.unsqueeze(0)).tolist() == [[1, 0, 1]]
    test = torch.tensor([[1, 0, 1], [0, 1, 0]]).float()  # per-sample F1 of predicting {0, 2}: 1 and 0
    assert task.constant_score(constant, test, "f1_samples") == pytest.approx(0.5)


def test_constant_predictor_regression_is_the_training_median() -> None:
    task = Task("regression", 1)
    constant = task.constant_output(torch.tensor([-3.0, -1.0, 0.5, 2.0, 2.5]))
    assert constant.tolist() == [0.5]
    test = torch.tensor([0.0, 1.0, 3.0])
    assert task.constant_score(constant, test, "mae") == pytest.approx((0.5 + 0.5 + 2.5) / 3)


@pytest.mark.parametrize(
    ("task", "target", "match"),
    [
        pytest.param(Task("multiclass", 3), torch.tensor([0.0, 1.0]), "integer class labels", id="float-labels"),
        pytest.param(Task("multiclass", 3), torch.tensor([0, 3]), "labels in 0..2, got values from 0 to 3", id="range"),
        pytest.param(Task("multilabel", 3), torch.zeros(4, 2), r"multi-hot target \[N, 3\], got \(4, 2\)", id="width"),
        pytest.param(Task("multilabel", 2), torch.tensor([[0.0, 2.0]]), "values 0 or 1", id="not-binary"),
        pytest.param(Task("regression", 1), torch.tensor([1, 2]), "float regression targets", id="int-scores"),
        pytest.param(Task("regression", 1), torch.tensor([1.0, float("nan")]), "NaN or Inf", id="nan"),
        pytest.param(
            Task("regression", 1, target_range=(-3.0, 3.0)),
            torch.tensor([0.0, 3.5]),
            r"targets in \[-3.0, 3.0\]",
            id="out-of-range",
        ),
    ],
)
def test_check_target_names_what_was_expected(task: Task, target: torch.Tensor, match: str) -> None:
    with pytest.raises(ValueError, match=f"labels.npy: expected|{match}") as error:
        task.check_target(target, "labels.npy")
    assert error.match(match) and str(error.value).startswith("labels.npy:")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param({"kind": "ranking", "output_size": 2}, "task `kind`", id="kind"),
        pytest.param({"kind": "regression", "output_size": 2}, "exactly 1 for regression", id="regression-width"),
        pytest.param({"kind": "multiclass", "output_size": 1}, "at least 2 classes", id="one-class"),
        pytest.param({"kind": "multiclass", "output_size": 3, "loss": "l1"}, "multiclass` loss", id="loss"),
        pytest.param({"kind": "multilabel", "output_size": 3, "threshold": 1.0}, "threshold", id="threshold"),
        pytest.param({"kind": "multiclass", "output_size": 3, "label_names": ("a", "b")}, "3 label names", id="names"),
    ],
)
def test_invalid_tasks_are_refused(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Task(**kwargs)


def test_metric_checks_and_description_round_trip() -> None:
    task = Task("multilabel", 2, threshold=0.4, label_names=("drama", "comedy"))
    with pytest.raises(ValueError, match="`accuracy`, which does not apply to a multilabel task"):
        task.check_metrics(["f1_samples", "accuracy"])
    assert Task.from_description(task.describe()).describe() == task.describe()
    assert task.describe()["loss"] == "bce" and task.primary_metric == "f1_samples"
