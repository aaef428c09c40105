"""engine/contributions.py against permutation Shapley values and hand values."""

from __future__ import annotations

from itertools import combinations, permutations
from math import factorial

import pytest
import torch

from fusebench.engine.contributions import shapley_from_pattern_metrics, shapley_values

MODALITY_SETS = [
    pytest.param(("audio", "image"), id="2-modalities"),
    pytest.param(("audio", "image", "text"), id="3-modalities"),
    pytest.param(("audio", "depth", "image", "text"), id="4-modalities"),
]


def _random_game(modalities, seed: int) -> dict[frozenset[str], float]:
    generator = torch.Generator().manual_seed(seed)
    return {
        frozenset(subset): float(torch.rand(1, generator=generator))
        for size in range(1, len(modalities) + 1)
        for subset in combinations(modalities, size)
    }


def _permutation_shapley(values, modalities, empty: float) -> dict[str, float]:
    """Reference: average marginal gain over all M! orders (the definition, not the formula)."""
    v = {frozenset(): empty, **values}
    totals = dict.fromkeys(modalities, 0.0)
    for order in permutations(modalities):
        present: frozenset[str] = frozenset()
        for modality in order:
            totals[modality] += v[present | {modality}] - v[present]
            present = present | {modality}
    return {m: t / factorial(len(modalities)) for m, t in totals.items()}


@pytest.mark.parametrize("modalities", MODALITY_SETS)
def test_matches_permutation_definition_and_efficiency(modalities) -> None:
    values = _random_game(modalities, seed=len(modalities))
    phi = shapley_values(values, modalities, empty_value=0.1)
    assert phi == pytest.approx(_permutation_shapley(values, modalities, 0.1))
    assert sum(phi.values()) == pytest.approx(values[frozenset(modalities)] - 0.1)


def test_two_modalities_by_hand() -> None:
    # phi_audio = 1/2 [(0.6 - 0.1) + (0.9 - 0.8)] = 0.3; phi_image = 1/2 [0.7 + 0.3] = 0.5.
    values = {("audio",): 0.6, ("image",): 0.8, ("image", "audio"): 0.9}
    assert shapley_values(values, ["image", "audio"], 0.1) == pytest.approx({"audio": 0.3, "image": 0.5})


def test_symmetric_modalities_get_equal_values() -> None:
    # audio and image are interchangeable; text adds a fixed 0.05 everywhere.
    base = {1: 0.5, 2: 0.8}
    values = {}
    for size in range(1, 4):
        for subset in combinations(("audio", "image", "text"), size):
            k = len(set(subset) & {"audio", "image"})
            values[frozenset(subset)] = 0.1 + base.get(k, 0.0) + 0.05 * ("text" in subset)
    phi = shapley_values(values, ["audio", "image", "text"], 0.1)
    assert phi["audio"] == pytest.approx(phi["image"]) == pytest.approx(0.4)
    assert phi["text"] == pytest.approx(0.05)


def test_dummy_modality_gets_zero() -> None:
    values = {
        ("audio",): 0.7,
        ("noise",): 0.1,
        ("audio", "noise"): 0.7,
    }
    phi = shapley_values(values, ["audio", "noise"], 0.1)
    assert phi["noise"] == pytest.approx(0.0)
    assert phi["audio"] == pytest.approx(0.6)


@pytest.mark.parametrize(
    ("values", "match"),
    [
        pytest.param({("audio",): 0.6, ("image",): 0.8}, "missing `audio\\+image`", id="missing"),
        pytest.param({"audio": 0.6}, "string `audio`", id="string-key"),
        pytest.param({("video",): 0.6}, "got \\['video'\\]", id="unknown"),
        pytest.param({(): 0.1}, "`empty_value`", id="empty-set"),
    ],
)
def test_shapley_errors(values, match) -> None:
    with pytest.raises(ValueError, match=match):
        shapley_values(values, ["audio", "image"], 0.1)


def test_shapley_rejects_repeated_modalities() -> None:
    with pytest.raises(ValueError, match="without repeats"):
        shapley_values({frozenset({"audio"}): 0.5}, ["audio", "audio"], 0.1)


def test_from_pattern_metrics_reads_pattern_names() -> None:
    metrics = {
        "audio+image": {"accuracy": 0.9, "f1_macro": 0.88},
        "audio": {"accuracy": 0.6, "f1_macro": 0.55},
        "image": {"accuracy": 0.8, "f1_macro": 0.79},
    }
    phi = shapley_from_pattern_metrics(metrics, ["audio", "image"], "accuracy", chance=0.1)
    assert phi == pytest.approx({"audio": 0.3, "image": 0.5})
    with pytest.raises(ValueError, match="metric `loss` in the metrics of pattern"):
        shapley_from_pattern_metrics(metrics, ["audio", "image"], "loss", chance=0.1)
    with pytest.raises(ValueError, match="got `audio\\+video`"):
        shapley_from_pattern_metrics({"audio+video": {"accuracy": 1.0}}, ["audio", "image"],
                                     "accuracy", chance=0.1)  # fmt: skip
