"""How much each modality contributes: exact Shapley values over modality patterns.

A model evaluated on every non-empty pattern gives a value ``v(S)`` for every set ``S``
of present modalities; ``v`` of the empty set is what a model knows with no input at
all: the score of the best constant predictor for the task (majority class, per-label
majority, training median; :meth:`fusebench.tasks.Task.constant_output`). The Shapley
value (Shapley 1953) splits ``v(all) - v(empty)`` fairly among the modalities, averaging
each one's marginal gain over every order in which modalities could be added. With M
modalities that is 2^M evaluations, which the all-pattern evaluation already produced,
so the values are exact, not sampled.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from math import factorial

import numpy as np

from fusebench.data.patterns import parse_pattern, pattern_name


def _check_modalities(modalities: Sequence[str]) -> list[str]:
    names = sorted(modalities)
    if not names or len(set(names)) != len(names):
        raise ValueError(f"Expected `modalities` to be non-empty and without repeats, got {list(modalities)}.")
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
        empty_value: ``v`` of the empty set, normally the best constant predictor's
            score (``Task.constant_score``); the caller decides and should report it.

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
                f"Expected a value for every non-empty subset of {names}, missing `{pattern_name(subset)}`."
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
        chance: value of the empty pattern, e.g. ``Task.constant_score``.

    Raises:
        ValueError: on an unknown pattern name, a pattern without ``metric``, or a
            missing pattern.
    """
    names = _check_modalities(modalities)
    values: dict[frozenset[str], float] = {}
    for name, metrics in pattern_metrics.items():
        pattern = parse_pattern(name, names)
        if metric not in metrics:
            raise ValueError(f"Expected metric `{metric}` in the metrics of pattern `{name}`, got {sorted(metrics)}.")
        values[frozenset(pattern)] = float(metrics[metric])
    return shapley_values(values, names, chance)
