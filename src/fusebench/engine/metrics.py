"""Classification metrics per modality pattern, computed with torchmetrics.

Each metric declares whether higher is better so reports never guess the direction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor
from torch.nn import functional as F
from torchmetrics.functional.classification import multiclass_accuracy, multiclass_f1_score

HIGHER_IS_BETTER: dict[str, bool] = {
    "accuracy": True,
    "f1_macro": True,
    "f1_micro": True,
    "f1_weighted": True,
    "loss": False,
}


def classification_metrics(
    logits: Tensor,
    target: Tensor,
    num_classes: int,
    names: Sequence[str] = ("accuracy", "f1_macro", "f1_micro", "f1_weighted"),
) -> dict[str, float]:
    """Metrics of ``[N, C]`` logits against ``[N]`` labels, plus mean cross-entropy ``loss``."""
    if len(target) == 0:
        return {}
    preds = logits.argmax(dim=1)
    result: dict[str, float] = {"loss": float(F.cross_entropy(logits.float(), target))}
    for name in names:
        if name == "accuracy":
            value = multiclass_accuracy(preds, target, num_classes, average="micro")
        elif name.startswith("f1_"):
            value = multiclass_f1_score(preds, target, num_classes, average=name[3:])
        else:
            raise ValueError(f"Expected a metric in {sorted(HIGHER_IS_BETTER)}, got `{name}`.")
        result[name] = float(value)
    result["count"] = int(len(target))
    return result


def metrics_by_pattern(
    logits: Mapping[str, Tensor], target: Tensor, num_classes: int, names: Sequence[str]
) -> dict[str, dict[str, float]]:
    """``{pattern: metrics}`` when every pattern was evaluated on the same samples."""
    return {pattern: classification_metrics(values, target, num_classes, names) for pattern, values in logits.items()}


def grouped_metrics(
    logits: Tensor,
    target: Tensor,
    pattern_index: Tensor,
    pattern_names: Sequence[str],
    num_classes: int,
    names: Sequence[str],
) -> dict[str, dict[str, float]]:
    """``{pattern: metrics}`` grouping samples by the pattern each one actually had (train-time MCAR)."""
    out: dict[str, dict[str, float]] = {}
    for index, pattern in enumerate(pattern_names):
        rows = pattern_index == index
        if bool(rows.any()):
            out[pattern] = classification_metrics(logits[rows], target[rows], num_classes, names)
    return out


def cat_or_empty(chunks: Sequence[Tensor]) -> Tensor:
    return torch.cat(list(chunks)) if chunks else torch.empty(0)
