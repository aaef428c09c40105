"""engine/mmpt.py against direct torchmetrics calls and the linear expectation of accuracy."""

from __future__ import annotations

import math
from typing import Literal

import pytest
import torch
from torchmetrics.functional.classification import multiclass_accuracy, multiclass_f1_score

from fusebench.engine.mmpt import CurvePoint, mmpt_curve, mmpt_profile, unimodal_gap
from fusebench.tasks import Task, metric_names

CLASSIFICATION_METRICS = metric_names("multiclass")

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


def test_mid_grid_accuracy_is_the_exact_expectation(two) -> None:
    """Accuracy is a mean of per-sample scores: E[acc] = (1 - p) acc_full + p acc_without, no sampling."""
    logits, target = two
    acc_full = float((logits["audio+image"].argmax(1) == target).float().mean())
    acc_without = float((logits["image"].argmax(1) == target).float().mean())
    curve = mmpt_curve(logits, target, ["audio", "image"], "audio")
    for point in curve:
        p = point.p_test
        assert point.value == pytest.approx((1 - p) * acc_full + p * acc_without, abs=1e-12)
        assert point.std == 0.0


def test_mid_grid_f1_macro_is_monte_carlo_around_the_mixture(two) -> None:
    """F1 macro is not a per-sample mean: its curve is sampled, with a spread, between the exact ends."""
    logits, target = two
    repeats = 50
    curve = mmpt_curve(logits, target, ["audio", "image"], "audio", metric="f1_macro", repeats=repeats)
    generator = torch.Generator().manual_seed(0)
    uniforms = torch.rand(repeats, N, generator=generator)
    for point in curve[1:-1]:
        p = point.p_test
        mixed = [
            _reference(torch.where((u < p).unsqueeze(1), logits["image"], logits["audio+image"]), target, "f1_macro")
            for u in uniforms
        ]
        assert point.value == pytest.approx(sum(mixed) / repeats, abs=1e-9)
        assert point.std > 0


def test_curve_is_reproducible_and_seeded(two) -> None:
    logits, target = two
    first = mmpt_curve(logits, target, ["audio", "image"], "image", metric="f1_macro", seed=3)
    assert mmpt_curve(logits, target, ["audio", "image"], "image", metric="f1_macro", seed=3) == first
    assert mmpt_curve(logits, target, ["audio", "image"], "image", metric="f1_macro", seed=4) != first


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
        pytest.param(["audio", "image"], "audio", {"metric": "auroc"}, "Unknown metric `auroc`", id="metric"),
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
    with pytest.raises(ValueError, match=r"shape \[N=500, C=10\], got \(499, 10\)"):
        mmpt_curve({**logits, "audio": logits["audio"][:-1]}, target, ["audio", "image"], "image")
    with pytest.raises(ValueError, match=r"C=10\], got \(500, 5\)"):
        mmpt_curve({**logits, "image": logits["image"][:, :5]}, target, ["audio", "image"], "audio")
    with pytest.raises(ValueError, match="integer class labels"):
        mmpt_curve(logits, target.float(), ["audio", "image"], "audio")


def test_profile_and_headroom_by_hand(two) -> None:
    logits, target = two
    profile = mmpt_profile(logits, target, ["audio", "image"])
    full = _reference(logits["audio+image"], target, "accuracy")
    chance = float(torch.bincount(target).max()) / N  # majority-class rate
    assert profile.full == full and profile.chance == pytest.approx(chance)
    for modality in ("audio", "image"):
        only = _reference(logits[modality], target, "accuracy")
        assert profile.unimodal[modality] == only
        assert profile.headroom[modality] == pytest.approx((full - only) / (full - chance))
    assert profile.headroom["audio"] > profile.headroom["image"] > 0


def test_profile_headroom_nan_when_full_not_above_chance(two) -> None:
    logits, target = two
    profile = mmpt_profile(logits, target, ["audio", "image"], metric="f1_macro", chance=1.0)
    assert all(math.isnan(w) for w in profile.headroom.values())


def test_regression_curve_and_profile_follow_the_metric_direction() -> None:
    """MAE: lower is better, so the headroom's signs flip; the curve is the exact mixture of the two MAEs."""
    target = torch.tensor([-2.0, -1.0, 0.0, 1.0, 2.0, 3.0])
    full = (target + torch.tensor([0.1, -0.1, 0.2, 0.0, -0.2, 0.1])).unsqueeze(1)  # MAE 0.7/6
    audio = (target + 1.0).unsqueeze(1)  # MAE 1.0
    image = (target - 0.5).unsqueeze(1)  # MAE 0.5
    logits = {"audio+image": full, "audio": audio, "image": image}
    task = Task("regression", 1)
    curve = mmpt_curve(logits, target, ["audio", "image"], "audio", p_grid=(0.0, 0.25, 1.0), metric="mae", task=task)
    assert [p.value for p in curve] == pytest.approx([0.7 / 6, 0.75 * 0.7 / 6 + 0.25 * 0.5, 0.5])
    constant = torch.tensor([0.5])  # the training median
    profile = mmpt_profile(logits, target, ["audio", "image"], "mae", task, constant=constant)
    floor = float((target - 0.5).abs().mean())  # MAE of always predicting 0.5: 9/6
    assert profile.chance == pytest.approx(floor)
    assert profile.headroom["audio"] == pytest.approx((1.0 - 0.7 / 6) / (floor - 0.7 / 6))
    assert profile.headroom["image"] == pytest.approx((0.5 - 0.7 / 6) / (floor - 0.7 / 6))


def test_unimodal_gap(two) -> None:
    logits, target = two
    profile = mmpt_profile(logits, target, ["audio", "image"])
    gap = unimodal_gap(profile, {"audio": 0.70})
    assert gap == pytest.approx({"audio": profile.unimodal["audio"] - 0.70})
    with pytest.raises(ValueError, match=r"unknown \['text'\]"):
        unimodal_gap(profile, {"text": 0.5})
