"""Metrics per modality pattern: the task computes them, this module groups samples by pattern.

The metrics themselves (and whether higher is better) live in :mod:`fusebench.tasks`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from torch import Tensor

from fusebench.tasks import Task


def metrics_by_pattern(
    outputs: Mapping[str, Tensor], target: Tensor, task: Task, names: Sequence[str]
) -> dict[str, dict[str, float]]:
    """``{pattern: metrics}`` when every pattern was evaluated on the same samples."""
    return {pattern: task.metrics(values, target, names) for pattern, values in outputs.items()}


def grouped_metrics(
    outputs: Tensor,
    target: Tensor,
    pattern_index: Tensor,
    pattern_names: Sequence[str],
    task: Task,
    names: Sequence[str],
) -> dict[str, dict[str, float]]:
    """``{pattern: metrics}`` grouping samples by the pattern each one actually had (train-time MCAR)."""
    out: dict[str, dict[str, float]] = {}
    for index, pattern in enumerate(pattern_names):
        rows = pattern_index == index
        if bool(rows.any()):
            out[pattern] = task.metrics(outputs[rows], target[rows], names)
    return out
