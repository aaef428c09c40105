"""Missing Modality Performance Testbed (MMPT) maths on cached per-pattern logits.

Follows the testbed idea of "Is the glass half-empty or half-full? A mixture-of-tasks
perspective on missing modality": a model that may lose a modality at test time solves
a mixture of tasks (the full-modal task and the task without that modality), so its
expected performance at test-time missing rate ``p`` is traced by mixing, per sample,
the predictions it makes with and without the modality. Everything here works on logits
already computed once per pattern for the same N test samples, so a whole curve costs
no forward passes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor
from torchmetrics.functional.classification import multiclass_accuracy, multiclass_f1_score

from fusebench.data.patterns import parse_pattern, pattern_name
from fusebench.engine.contributions import chance_level, check_metric

DEFAULT_P_GRID: tuple[float, ...] = tuple(i / 10 for i in range(11))
_F1_AVERAGE: dict[str, Literal["macro", "micro", "weighted"]] = {
    "f1_macro": "macro",
    "f1_micro": "micro",
    "f1_weighted": "weighted",
}


@dataclass(frozen=True)
class CurvePoint:
    """Performance at one test-time missing rate of one modality.

    Attributes:
        p_test: probability that a test sample loses the modality.
        value: metric averaged over the Monte Carlo repeats (exact at 0 and 1).
        std: spread (ddof=1) of the metric over the repeats; 0 at the exact ends. It is
            the Monte Carlo noise of the mixing, not the sampling error of the test set.
    """

    p_test: float
    value: float
    std: float


@dataclass(frozen=True)
class MMPTProfile:
    """Full-modal and unimodal performance of one model, and each modality's weakness.

    Attributes:
        metric: metric name.
        full: performance with every modality present.
        unimodal: ``{modality: performance with only that modality}``.
        chance: the constant-predictor floor used for ``weakness``.
        weakness: ``{modality: (full - unimodal[m]) / (full - chance)}``; NaN when the
            full model is not above chance.
    """

    metric: str
    full: float
    unimodal: dict[str, float]
    chance: float
    weakness: dict[str, float]


def score(preds: Tensor, target: Tensor, metric: str, num_classes: int) -> float:
    """One multiclass metric from labels ``[N]`` or logits ``[N, C]`` (torchmetrics).

    Accuracy is micro-averaged (the fraction correct): torchmetrics' multiclass default
    is macro, which would silently report balanced accuracy instead.
    """
    check_metric(metric)
    if metric == "accuracy":
        value = multiclass_accuracy(preds, target, num_classes=num_classes, average="micro")
    else:
        average = _F1_AVERAGE[metric]
        value = multiclass_f1_score(preds, target, num_classes=num_classes, average=average)
    return float(value)


def _prepare(
    logits: Mapping[str, Tensor], target: Tensor, modalities: Sequence[str]
) -> tuple[list[str], dict[str, Tensor], int]:
    """Validate inputs; return sorted modalities, canonical-name logits and C."""
    names = sorted(modalities)
    if not names or len(set(names)) != len(names):
        raise ValueError(
            f"Expected `modalities` to be non-empty and without repeats, got {list(modalities)}."
        )
    if target.ndim != 1 or target.is_floating_point():
        raise ValueError(
            "Expected `target` as a 1-D integer tensor of class labels [N], got dtype "
            f"{target.dtype} and shape {tuple(target.shape)}."
        )
    canonical: dict[str, Tensor] = {}
    num_classes: int | None = None
    for key, tensor in logits.items():
        name = pattern_name(parse_pattern(key, names))
        if name in canonical:
            raise ValueError(f"Expected each pattern once in `logits`, got `{name}` twice.")
        if tensor.ndim != 2 or tensor.shape[0] != target.shape[0]:
            raise ValueError(
                f"Expected logits of pattern `{name}` with shape [N={target.shape[0]}, C], "
                f"got {tuple(tensor.shape)}."
            )
        if num_classes is not None and tensor.shape[1] != num_classes:
            raise ValueError(
                f"Expected C={num_classes} classes for every pattern, got "
                f"{tensor.shape[1]} for `{name}`."
            )
        num_classes = int(tensor.shape[1])
        canonical[name] = tensor
    if num_classes is None:
        raise ValueError("Expected logits for at least one pattern in `logits`, got none.")
    return names, canonical, num_classes


def _predictions(canonical: Mapping[str, Tensor], name: str) -> Tensor:
    if name not in canonical:
        raise ValueError(
            f"Expected logits for pattern `{name}` in `logits`, got patterns {sorted(canonical)}."
        )
    return canonical[name].argmax(dim=1)  # [N]


def mmpt_curve(
    logits: Mapping[str, Tensor],
    target: Tensor,
    modalities: Sequence[str],
    modality: str,
    p_grid: Sequence[float] = DEFAULT_P_GRID,
    metric: str = "accuracy",
    num_classes: int | None = None,
    repeats: int = 20,
    seed: int = 0,
) -> list[CurvePoint]:
    """Performance as a function of the test-time missing rate of ``modality``.

    Each sample independently loses ``modality`` with probability ``p_test``: it then
    gets the prediction of the pattern without ``modality`` (all other modalities
    present), otherwise the full-pattern prediction. The metric is averaged over
    ``repeats`` draws. The draws use common random numbers (one uniform ``u`` per
    sample and repeat, missing when ``u < p_test``), so the curve is smooth in ``p_test``
    and reproducible for a given ``seed``. At ``p_test`` 0 and 1 no randomness is used
    and the value equals the full-pattern and without-modality metric exactly.

    Args:
        logits: ``{pattern name: [N, C] logits}`` for the same N test samples.
        target: ``[N]`` class labels.
        modalities: all modalities of the model.
        modality: the modality that goes missing.
        p_grid: test-time missing rates in [0, 1].
        metric: ``"accuracy"``, ``"f1_macro"``, ``"f1_micro"`` or ``"f1_weighted"``.
        num_classes: number of classes; defaults to the logits' C.
        repeats: Monte Carlo draws per interior grid point.
        seed: seed of the ``torch.Generator`` for the draws.

    Raises:
        ValueError: on an unknown ``modality``, one whose removal leaves no modality, a
            missing pattern, an out-of-range ``p_test`` or ``repeats < 1``.
    """
    check_metric(metric)
    names, canonical, inferred_classes = _prepare(logits, target, modalities)
    classes = num_classes or inferred_classes
    if modality not in names:
        raise ValueError(f"Expected `modality` in {names}, got `{modality}`.")
    rest = [m for m in names if m != modality]
    if not rest:
        raise ValueError(
            f"Expected a `modality` whose removal leaves at least one of {names}, "
            f"got `{modality}` (removing it leaves the empty pattern)."
        )
    if repeats < 1:
        raise ValueError(f"Expected `repeats` >= 1, got {repeats}.")
    bad = [p for p in p_grid if not 0.0 <= p <= 1.0]
    if bad:
        raise ValueError(f"Expected every `p_grid` value in [0, 1], got {bad}.")
    full_preds = _predictions(canonical, pattern_name(names))
    without_preds = _predictions(canonical, pattern_name(rest))
    generator = torch.Generator().manual_seed(seed)
    uniforms = torch.rand(repeats, target.shape[0], generator=generator)  # [R, N]
    points = []
    for p in p_grid:
        if p == 0.0:
            points.append(CurvePoint(0.0, score(full_preds, target, metric, classes), 0.0))
            continue
        if p == 1.0:
            points.append(CurvePoint(1.0, score(without_preds, target, metric, classes), 0.0))
            continue
        values = torch.tensor(
            [
                score(torch.where(u < p, without_preds, full_preds), target, metric, classes)
                for u in uniforms
            ],
            dtype=torch.float64,
        )
        std = float(values.std()) if repeats > 1 else 0.0
        points.append(CurvePoint(float(p), float(values.mean()), std))
    return points


def mmpt_profile(
    logits: Mapping[str, Tensor],
    target: Tensor,
    modalities: Sequence[str],
    metric: str = "accuracy",
    num_classes: int | None = None,
    chance: float | None = None,
) -> MMPTProfile:
    """Full-modal and unimodal performance and the modality weakness score.

    The weakness of modality ``m`` is fusebench's operationalisation, not a quote from
    the MMPT paper (whose exact definition we could not consult):
    ``(perf(full) - perf(only m)) / (perf(full) - chance)``, the fraction of the
    above-chance full-modal performance that is lost when only ``m`` is present.
    0 means ``m`` alone does as well as all modalities; 1 means ``m`` alone is no better
    than chance; values above 1 mean below chance. NaN when ``perf(full) <= chance``.

    Args:
        logits: ``{pattern name: [N, C] logits}``; needs the full and unimodal patterns.
        target: ``[N]`` class labels.
        modalities: all modalities of the model.
        metric: one of the classification metrics of :func:`score`.
        num_classes: number of classes; defaults to the logits' C.
        chance: the floor; defaults to :func:`chance_level` of ``target`` (majority class).
    """
    check_metric(metric)
    names, canonical, inferred_classes = _prepare(logits, target, modalities)
    classes = num_classes or inferred_classes
    full = score(_predictions(canonical, pattern_name(names)), target, metric, classes)
    unimodal = {m: score(_predictions(canonical, m), target, metric, classes) for m in names}
    floor = chance_level(target, metric, classes) if chance is None else float(chance)
    headroom = full - floor
    weakness = {
        m: (full - value) / headroom if headroom > 0 else float("nan")
        for m, value in unimodal.items()
    }
    return MMPTProfile(metric=metric, full=full, unimodal=unimodal, chance=floor, weakness=weakness)


def unimodal_gap(profile: MMPTProfile, expert: Mapping[str, float]) -> dict[str, float]:
    """Unimodal pattern of the multimodal model minus a unimodal expert's score.

    A negative gap means the multimodal model, given only ``m``, is worse than a model
    trained on ``m`` alone: its ``m`` branch is under-trained ("modality laziness"), the
    gap that pre-trained encoders are meant to close.

    Args:
        profile: from :func:`mmpt_profile`.
        expert: ``{modality: score of the unimodal expert}`` on the same metric and test
            set; modalities without an expert are left out of the result.

    Raises:
        ValueError: if ``expert`` names a modality the profile does not have.
    """
    unknown = sorted(set(expert) - set(profile.unimodal))
    if unknown:
        raise ValueError(
            f"Expected `expert` keys among {sorted(profile.unimodal)}, got unknown {unknown}."
        )
    return {m: profile.unimodal[m] - float(expert[m]) for m in sorted(expert)}
