"""Metrics per modality pattern (engine/metrics) against scikit-learn on the same predictions."""

from __future__ import annotations

import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score

from fusebench.engine.metrics import grouped_metrics, metrics_by_pattern
from fusebench.tasks import Task

NAMES = ["accuracy", "f1_macro"]


def _sklearn(logits: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    predicted = logits.argmax(dim=1).numpy()
    return {
        "accuracy": accuracy_score(target.numpy(), predicted),
        "f1_macro": f1_score(target.numpy(), predicted, average="macro"),
    }


def test_metrics_by_pattern_matches_scikit_learn_for_each_pattern() -> None:
    generator = torch.Generator().manual_seed(0)
    task = Task("multiclass", 5)
    target = torch.randint(0, 5, (200,), generator=generator)
    outputs = {pattern: torch.randn(200, 5, generator=generator) for pattern in ("audio+image", "audio")}
    outputs["audio+image"][torch.arange(150), target[:150]] += 5.0  # 150 of 200 made right, so the patterns differ

    found = metrics_by_pattern(outputs, target, task, NAMES)

    assert list(found) == ["audio+image", "audio"]
    for pattern, logits in outputs.items():
        for name, value in _sklearn(logits, target).items():
            assert found[pattern][name] == pytest.approx(value, abs=1e-6), (pattern, name)
    assert found["audio+image"]["accuracy"] > 0.74


def test_grouped_metrics_scores_each_sample_under_the_pattern_it_had() -> None:
    generator = torch.Generator().manual_seed(1)
    task = Task("multiclass", 3)
    logits, target = torch.randn(90, 3, generator=generator), torch.randint(0, 3, (90,), generator=generator)
    index = torch.tensor([0, 2] * 45)  # pattern 1 (`audio`) never occurs

    found = grouped_metrics(logits, target, index, ["audio+image", "audio", "image"], task, NAMES)

    assert list(found) == ["audio+image", "image"]  # no samples, no entry (not a metric of nothing)
    for position, pattern in ((0, "audio+image"), (2, "image")):
        rows = index == position
        for name, value in _sklearn(logits[rows], target[rows]).items():
            assert found[pattern][name] == pytest.approx(value, abs=1e-6), (pattern, name)
