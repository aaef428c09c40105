"""How much each modality contributes: exact Shapley values over modality patterns.

A model evaluated on every non-empty pattern gives a value ``v(S)`` for every set ``S``
of present modalities; ``v`` of the empty set is what a model knows with no input at
all, i.e. chance level. The Shapley value (Shapley 1953) splits ``v(all) - v(empty)``
fairly among the modalities, averaging each one's marginal gain over every order in
which modalities could be added. With M modalities that is 2^M evaluations, which the
all-pattern evaluation already produced, so the values are exact, not sampled.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from math import factorial
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from fusebench.data.patterns import parse_pattern, pattern_name

ClassificationMetric = Literal["accuracy", "f1_macro", "f1_micro", "f1_weighted"]
CLASSIFICATION_METRICS: tuple[str, ...] = ("accuracy", "f1_macro", "f1_micro", "f1_weighted")


def check_metric(metric: str) -> None:
    """Raise if ``metric`` is not one of :data:`CLASSIFICATION_METRICS`."""
    if metric not in CLASSIFICATION_METRICS:
        raise ValueError(f"Expected `metric` in {list(CLASSIFICATION_METRICS)}, got `{metric}`.")


def _check_modalities(modalities: Sequence[str]) -> list[str]:
    names = sorted(modalities)
    if not names or len(set(names)) != len(names):
        raise ValueError(
            f"Expected `modalities` to be non-empty and without repeats, got {list(modalities)}."
        )
    return names


def shapley_values(
    values: Mapping[frozenset[str], float] | Mapping[tuple[str, ...], float],
    modalities: Sequence[str],
    empty_value: float,
) -> dict[str, float]:
    """Exact Shapley value of each modality.

    ``phi_i = sum_{S subset of N without i} |S|! (M - |S| - 1)! / M! * (v(S + i) - v(S))``
    (Shapley 1953). The values satisfy efficiency: ``sum(phi) == v(all) - empty_value``.

    Args:
        values: metric of every non-empty subset of ``modalities``, keyed by a frozenset
            or tuple of modality names (order inside a tuple does not matter).
        modalities: all modalities of the model.
        empty_value: ``v`` of the empty set, normally chance level (see
            :func:`chance_level`); the caller decides and should report it.

    Returns:
        ``{modality: phi}`` in sorted modality order.

    Raises:
        ValueError: on a subset that is missing, empty, or names an unknown modality.

    >>> v = {("audio",): 0.6, ("image",): 0.8, ("audio", "image"): 0.9}
    >>> {m: round(p, 3) for m, p in shapley_values(v, ["audio", "image"], 0.1).items()}
    {'audio': 0.3, 'image': 0.5}
    """
    names = _check_modalities(modalities)
    table: dict[frozenset[str], float] = {}
    for key, value in values.items():
        if isinstance(key, str):
            raise ValueError(
                f"Expected subset keys as frozensets or tuples of modality names, got the "
                f"string `{key}`; use `shapley_from_pattern_metrics` for `a+b` names."
            )
        subset = frozenset(key)
        if not subset or not subset <= set(names):
            raise ValueError(
                f"Expected non-empty subsets of {names} as keys of `values`, got {sorted(subset)}; "
                "pass the empty set's value as `empty_value`."
            )
        table[subset] = float(value)
    m = len(names)
    # v[mask]: value of the subset whose bit j is set when names[j] is present.
    v = np.empty(2**m)
    v[0] = float(empty_value)
    for mask in range(1, 2**m):
        subset = frozenset(names[j] for j in range(m) if mask >> j & 1)
        if subset not in table:
            raise ValueError(
                f"Expected a value for every non-empty subset of {names}, "
                f"missing `{pattern_name(subset)}`."
            )
        v[mask] = table[subset]
    weights = [factorial(s) * factorial(m - s - 1) / factorial(m) for s in range(m)]
    phi = dict.fromkeys(names, 0.0)
    for j, name in enumerate(names):
        bit = 1 << j
        for mask in range(2**m):
            if not mask & bit:
                phi[name] += weights[mask.bit_count()] * (v[mask | bit] - v[mask])
    return {name: float(p) for name, p in phi.items()}


def shapley_from_pattern_metrics(
    pattern_metrics: Mapping[str, Mapping[str, float]],
    modalities: Sequence[str],
    metric: str,
    chance: float,
) -> dict[str, float]:
    """Shapley values from ``test_metrics.json``-style ``{"audio+image": {metric: value}}``.

    Args:
        pattern_metrics: per-pattern metrics keyed by pattern name (``audio+image``).
        modalities: all modalities of the model.
        metric: which metric to attribute.
        chance: value of the empty pattern, e.g. from :func:`chance_level`.

    Raises:
        ValueError: on an unknown pattern name, a pattern without ``metric``, or a
            missing pattern.
    """
    names = _check_modalities(modalities)
    values: dict[frozenset[str], float] = {}
    for name, metrics in pattern_metrics.items():
        pattern = parse_pattern(name, names)
        if metric not in metrics:
            raise ValueError(
                f"Expected metric `{metric}` in the metrics of pattern `{name}`, "
                f"got {sorted(metrics)}."
            )
        values[frozenset(pattern)] = float(metrics[metric])
    return shapley_values(values, names, chance)


def _class_counts(target: Tensor | Iterable[int], num_classes: int | None) -> np.ndarray:
    if isinstance(target, Tensor):
        if target.ndim != 1 or target.numel() == 0 or target.is_floating_point():
            raise ValueError(
                "Expected `target` as a non-empty 1-D integer tensor of class labels, got "
                f"dtype {target.dtype} and shape {tuple(target.shape)}."
            )
        minlength = num_classes or 0
        return torch.bincount(target.long().cpu(), minlength=minlength).numpy()
    counts = np.asarray(list(target), dtype=float)
    if counts.ndim != 1 or counts.size == 0 or (counts < 0).any() or counts.sum() <= 0:
        raise ValueError(
            "Expected `target` as per-class counts (non-negative, positive total), "
            f"got {counts.tolist()}."
        )
    return counts


def chance_level(
    target: Tensor | Iterable[int], metric: str = "accuracy", num_classes: int | None = None
) -> float:
    """Score of the best constant predictor: always the most frequent test class.

    This is the empty-pattern value for Shapley values and the floor for the MMPT
    weakness score. For accuracy fusebench uses the majority-class rate rather than
    ``1/C``: on an imbalanced test set ``1/C`` understates what a model learns with no
    input. Predicting the majority class ``k`` (``n_k`` of ``N`` samples) gives:

    - accuracy and F1 micro (equal for single-label multiclass): ``n_k / N``;
    - F1 macro: class ``k`` has precision ``n_k/N`` and recall 1, so F1 ``2 n_k/(N+n_k)``,
      every other class 0; averaged over the classes present in the target, as
      torchmetrics and scikit-learn skip classes with neither support nor predictions;
    - F1 weighted: ``(n_k / N) * 2 n_k / (N + n_k)``.

    Majority is also the best constant for the F1 variants, since each is increasing
    in ``n_k``.

    Args:
        target: a 1-D tensor of test labels, or a sequence of per-class counts.
        metric: one of :data:`CLASSIFICATION_METRICS`.
        num_classes: number of classes for a label tensor (only pads the counts).

    >>> chance_level(torch.tensor([0, 0, 0, 1, 1, 2]), "accuracy")
    0.5
    >>> round(chance_level([3, 2, 1], "f1_macro"), 4)
    0.2222
    """
    check_metric(metric)
    counts = _class_counts(target, num_classes)
    total = float(counts.sum())
    top = float(counts.max())
    if metric in ("accuracy", "f1_micro"):
        return top / total
    f1_top = 2.0 * top / (total + top)
    if metric == "f1_macro":
        return f1_top / int(np.count_nonzero(counts))
    return top / total * f1_top
