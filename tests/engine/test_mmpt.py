"""engine/mmpt.py against direct torchmetrics calls and the linear expectation of accuracy."""

from __future__ import annotations

import math
from typing import Literal

import pytest
import torch
from torchmetrics.functional.classification import multiclass_accuracy, multiclass_f1_score

from fusebench.engine.contributions import CLASSIFICATION_METRICS
from fusebench.engine.mmpt import CurvePoint, mmpt_curve, mmpt_profile, unimodal_gap

N, C = 500, 10
F1_AVERAGE: dict[str, Literal["macro", "micro", "weighted"]] = {
    "f1_macro": "macro",
    "f1_micro": "micro",
    "f1_weighted": "weighted",
}
# Probability that each pattern's logits point at the true class.
QUALITY = {
    "audio+image+text": 0.92,
    "audio+image": 0.88,
    "audio+text": 0.80,
    "image+text": 0.85,
    "audio": 0.55,
    "image": 0.75,
    "text": 0.60,
}


def _cached_logits(modalities: tuple[str, ...]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Synthetic per-pattern logits for the same N samples, each pattern with its own skill."""
    generator = torch.Generator().manual_seed(0)
    target = torch.randint(0, C, (N,), generator=generator)
    logits = {}
    for name, quality in QUALITY.items():
        if set(name.split("+")) <= set(modalities):
            noise = torch.randn(N, C, generator=generator)
            right = torch.rand(N, generator=generator) < quality
            noise[torch.arange(N)[right], target[right]] += 6.0
            logits[name] = noise
    return logits, target


def _reference(logits: torch.Tensor, target: torch.Tensor, metric: str) -> float:
    preds = logits.argmax(dim=1)
    if metric == "accuracy":
        return float(multiclass_accuracy(preds, target, num_classes=C, average="micro"))
    return float(multiclass_f1_score(preds, target, num_classes=C, average=F1_AVERAGE[metric]))


@pytest.fixture(scope="module")
def two() -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    return _cached_logits(("audio", "image"))


@pytest.mark.parametrize("metric", CLASSIFICATION_METRICS)
@pytest.mark.parametrize("modality", ["audio", "image"])
def test_curve_endpoints_equal_pattern_metrics_exactly(two, metric, modality) -> None:
    logits, target = two
    other = "image" if modality == "audio" else "audio"
    curve = mmpt_curve(logits, target, ["audio", "image"], modality, metric=metric)
    assert [p.p_test for p in curve] == pytest.approx([i / 10 for i in range(11)])
    assert curve[0] == CurvePoint(0.0, _reference(logits["audio+image"], target, metric), 0.0)
    assert curve[-1] == CurvePoint(1.0, _reference(logits[other], target, metric), 0.0)


def test_mid_grid_accuracy_is_linear_in_expectation(two) -> None:
    logits, target = two
    full = logits["audio+image"].argmax(1) == target
    without = logits["image"].argmax(1) == target
    acc_full, acc_without = float(full.float().mean()), float(without.float().mean())
    disagree = float((full != without).float().mean())
    repeats = 50
    curve = mmpt_curve(logits, target, ["audio", "image"], "audio", repeats=repeats)
    for point in curve[1:-1]:
        p = point.p_test
        expected = (1 - p) * acc_full + p * acc_without
        # Exact Monte Carlo sd of the repeat mean; 5 sigma keeps the test stable.
        sigma = math.sqrt(p * (1 - p) * disagree / N / repeats)
        assert point.value == pytest.approx(expected, abs=5 * sigma + 1e-12)
        assert point.std > 0


def test_curve_is_reproducible_and_seeded(two) -> None:
    logits, target = two
    first = mmpt_curve(logits, target, ["audio", "image"], "image", seed=3)
    assert mmpt_curve(logits, target, ["audio", "image"], "image", seed=3) == first
    assert mmpt_curve(logits, target, ["audio", "image"], "image", seed=4) != first


def test_three_modalities_drop_to_the_pair_without_it() -> None:
    modalities = ("audio", "image", "text")
    logits, target = _cached_logits(modalities)
    curve = mmpt_curve(logits, target, modalities, "image", p_grid=(0.0, 0.5, 1.0))
    assert curve[0].value == _reference(logits["audio+image+text"], target, "accuracy")
    assert curve[-1].value == _reference(logits["audio+text"], target, "accuracy")
    assert curve[-1].value < curve[1].value < curve[0].value


def test_unsorted_pattern_names_are_accepted(two) -> None:
    logits, target = two
    renamed = {("image+audio" if k == "audio+image" else k): v for k, v in logits.items()}
    assert mmpt_curve(renamed, target, ["image", "audio"], "audio", p_grid=(0.0,))[0].value == (
        _reference(logits["audio+image"], target, "accuracy")
    )


@pytest.mark.parametrize(
    ("modalities", "modality", "kwargs", "match"),
    [
        pytest.param(["audio"], "audio", {}, "empty pattern", id="only-modality"),
        pytest.param(["audio", "image"], "text", {}, "got `text`", id="unknown-modality"),
        pytest.param(["audio", "image"], "audio", {"p_grid": (0.5, 1.2)}, r"\[1.2\]", id="p"),
        pytest.param(["audio", "image"], "audio", {"repeats": 0}, "`repeats`", id="repeats"),
        pytest.param(["audio", "image"], "audio", {"metric": "auroc"}, "`metric`", id="metric"),
    ],
)
def test_curve_errors(two, modalities, modality, kwargs, match) -> None:
    logits, target = two
    if modalities == ["audio"]:
        logits = {"audio": logits["audio"]}
    with pytest.raises(ValueError, match=match):
        mmpt_curve(logits, target, modalities, modality, **kwargs)


def test_missing_pattern_and_bad_shapes(two) -> None:
    logits, target = two
    with pytest.raises(ValueError, match="pattern `image` in `logits`"):
        mmpt_curve({"audio+image": logits["audio+image"]}, target, ["audio", "image"], "audio")
    with pytest.raises(ValueError, match=r"shape \[N=500, C\], got \(499, 10\)"):
        mmpt_curve({**logits, "audio": logits["audio"][:-1]}, target, ["audio", "image"], "image")
    with pytest.raises(ValueError, match="C=10 classes"):
        mmpt_curve({**logits, "image": logits["image"][:, :5]}, target, ["audio", "image"], "audio")
    with pytest.raises(ValueError, match="integer tensor"):
        mmpt_curve(logits, target.float(), ["audio", "image"], "audio")


def test_profile_and_weakness_by_hand(two) -> None:
    logits, target = two
    profile = mmpt_profile(logits, target, ["audio", "image"])
    full = _reference(logits["audio+image"], target, "accuracy")
    chance = float(torch.bincount(target).max()) / N  # majority-class rate
    assert profile.full == full and profile.chance == pytest.approx(chance)
    for modality in ("audio", "image"):
        only = _reference(logits[modality], target, "accuracy")
        assert profile.unimodal[modality] == only
        assert profile.weakness[modality] == pytest.approx((full - only) / (full - chance))
    assert profile.weakness["audio"] > profile.weakness["image"] > 0


def test_profile_weakness_nan_when_full_not_above_chance(two) -> None:
    logits, target = two
    profile = mmpt_profile(logits, target, ["audio", "image"], metric="f1_macro", chance=1.0)
    assert all(math.isnan(w) for w in profile.weakness.values())


def test_unimodal_gap(two) -> None:
    logits, target = two
    profile = mmpt_profile(logits, target, ["audio", "image"])
    gap = unimodal_gap(profile, {"audio": 0.70})
    assert gap == pytest.approx({"audio": profile.unimodal["audio"] - 0.70})
    with pytest.raises(ValueError, match=r"unknown \['text'\]"):
        unimodal_gap(profile, {"text": 0.5})
