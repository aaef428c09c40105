"""Missing Modality Performance Testbed (MMPT) maths on cached per-pattern outputs.

Follows "Is the glass half-empty or half-full? A mixture-of-tasks perspective on missing
modality" (``../shared/papers/004_d6fb5191247edfc1.txt``): a model that may lose a modality
at test time solves a mixture of tasks (the full-modal task and the task without that
modality, Definition 2), so its performance at test-time missing rate ``p`` is traced by
stochastic logit fusion (section 2.2): each sample takes the outputs the model gives
without the modality with probability ``p``, else its full-modal outputs. Everything here
works on outputs already computed once per pattern for the same N test samples, so a
whole curve costs no forward passes. Any task and metric works (:mod:`fusebench.tasks`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from fusebench.data.patterns import parse_pattern, pattern_name
from fusebench.tasks import Task, get_metric

DEFAULT_P_GRID: tuple[float, ...] = tuple(i / 10 for i in range(11))


@dataclass(frozen=True)
class CurvePoint:
    """Performance at one test-time missing rate of one modality.

    Attributes:
        p_test: probability that a test sample loses the modality.
        value: the expected metric when each test sample loses the modality independently
            with probability ``p_test``: exact for metrics that are means of per-sample
            scores (accuracy, MAE, F1 samples, ...), where the expectation is
            ``(1 - p) * full + p * without``; otherwise averaged over Monte Carlo draws.
        std: spread (ddof=1) of the metric over the Monte Carlo draws; 0 where the value
            is exact. It is the noise of the mixing, not the sampling error of the test set.
    """

    p_test: float
    value: float
    std: float


@dataclass(frozen=True)
class MMPTProfile:
    """Full-modal and unimodal performance of one model (MMPT Definition 2) and each modality's headroom.

    Attributes:
        metric: metric name.
        full: performance with every modality present.
        unimodal: ``{modality: performance with only that modality}``.
        chance: the best input-free predictor's score (the floor of ``headroom``).
        headroom: fusebench's own score, not the paper's weakness score (that is
            :func:`fusebench.engine.probe.weakness_scores`, Definition 3):
            ``(full - unimodal[m]) / (full - chance)`` for a higher-is-better metric (the
            signs flip for a lower-is-better one), the fraction of the above-floor
            full-modal performance lost when only ``m`` is present; NaN when the full
            model is not better than the floor.
    """

    metric: str
    full: float
    unimodal: dict[str, float]
    chance: float
    headroom: dict[str, float]


def default_task(outputs: Mapping[str, Tensor]) -> Task:
    """A multiclass task as wide as the outputs (for callers that only have logits)."""
    width = next(iter(outputs.values())).shape[1]
    return Task("multiclass", int(width))


def _prepare(
    outputs: Mapping[str, Tensor], target: Tensor, modalities: Sequence[str], task: Task
) -> tuple[list[str], dict[str, Tensor]]:
    """Validate inputs; return sorted modalities and outputs keyed by canonical pattern names."""
    names = sorted(modalities)
    if not names or len(set(names)) != len(names):
        raise ValueError(f"Expected `modalities` to be non-empty and without repeats, got {list(modalities)}.")
    task.check_target(target, "`target`")
    canonical: dict[str, Tensor] = {}
    for key, tensor in outputs.items():
        name = pattern_name(parse_pattern(key, names))
        if name in canonical:
            raise ValueError(f"Expected each pattern once in `logits`, got `{name}` twice.")
        if tensor.ndim != 2 or tensor.shape[0] != target.shape[0] or tensor.shape[1] != task.output_size:
            raise ValueError(
                f"Expected outputs of pattern `{name}` with shape [N={target.shape[0]}, C={task.output_size}], "
                f"got {tuple(tensor.shape)}."
            )
        canonical[name] = tensor
    if not canonical:
        raise ValueError("Expected outputs for at least one pattern in `logits`, got none.")
    return names, canonical


def _pattern(canonical: Mapping[str, Tensor], name: str) -> Tensor:
    if name not in canonical:
        raise ValueError(f"Expected outputs for pattern `{name}` in `logits`, got patterns {sorted(canonical)}.")
    return canonical[name]


def mmpt_curve(
    logits: Mapping[str, Tensor],
    target: Tensor,
    modalities: Sequence[str],
    modality: str,
    *,
    p_grid: Sequence[float] = DEFAULT_P_GRID,
    metric: str = "accuracy",
    task: Task | None = None,
    repeats: int = 20,
    seed: int = 0,
) -> list[CurvePoint]:
    """Performance as a function of the test-time missing rate of ``modality``.

    Each sample independently loses ``modality`` with probability ``p_test``: it then gets
    the outputs of the pattern without ``modality`` (all other modalities present),
    otherwise the full-pattern outputs (stochastic logit fusion, MMPT section 2.2).

    For a metric that is a mean of per-sample scores the expected metric is exactly
    ``(1 - p) * metric(full) + p * metric(without)`` (linearity of expectation), and that
    is what is returned. Other metrics (F1 macro, Pearson r) are averaged over ``repeats``
    draws with common random numbers (one uniform ``u`` per sample and repeat, missing
    when ``u < p_test``), so the curve is smooth in ``p_test`` and reproducible for a given
    ``seed``. At ``p_test`` 0 and 1 every value is exact.

    Args:
        logits: ``{pattern name: [N, output_size] outputs}`` for the same N test samples.
        target: the test targets in the task's convention.
        modalities: all modalities of the model.
        modality: the modality that goes missing.
        p_grid: test-time missing rates in [0, 1].
        metric: a registered metric of the task.
        task: the task; default a multiclass task as wide as the outputs.
        repeats: Monte Carlo draws per interior grid point (non-decomposable metrics).
        seed: seed of the ``torch.Generator`` for the draws.

    Raises:
        ValueError: on an unknown ``modality``, one whose removal leaves no modality, a
            missing pattern, an out-of-range ``p_test`` or ``repeats < 1``.
    """
    task = task or default_task(logits)
    task.check_metrics([metric], where="`metric`")
    names, canonical = _prepare(logits, target, modalities, task)
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
    full = _pattern(canonical, pattern_name(names))
    without = _pattern(canonical, pattern_name(rest))
    at_full, at_without = task.score(full, target, metric), task.score(without, target, metric)
    exact = get_metric(metric).per_sample_mean
    uniforms = torch.rand(repeats, target.shape[0], generator=torch.Generator().manual_seed(seed))  # [R, N]
    points = []
    for p in p_grid:
        if p in (0.0, 1.0) or exact:
            points.append(CurvePoint(float(p), (1.0 - p) * at_full + p * at_without, 0.0))
            continue
        values = torch.tensor(
            [task.score(torch.where((u < p).unsqueeze(1), without, full), target, metric) for u in uniforms],
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
    task: Task | None = None,
    chance: float | None = None,
    constant: Tensor | None = None,
) -> MMPTProfile:
    """Full-modal and unimodal performance (MMPT Definition 2) and each modality's headroom.

    Args:
        logits: ``{pattern name: [N, output_size] outputs}``; needs the full and unimodal patterns.
        target: the test targets.
        modalities: all modalities of the model.
        metric: a registered metric of the task.
        task: the task; default a multiclass task as wide as the outputs.
        chance: the floor; default the score of ``constant`` on ``target``.
        constant: the best input-free predictor's outputs ``[output_size]`` (the run saves
            it, fitted on the training targets); without it and ``chance``, the majority
            class of ``target`` (multiclass only).
    """
    task = task or default_task(logits)
    task.check_metrics([metric], where="`metric`")
    names, canonical = _prepare(logits, target, modalities, task)
    full = task.score(_pattern(canonical, pattern_name(names)), target, metric)
    unimodal = {m: task.score(_pattern(canonical, m), target, metric) for m in names}
    if chance is not None:
        floor = float(chance)
    else:
        floor = task.constant_score(constant if constant is not None else task.constant_output(target), target, metric)
    sign = 1.0 if get_metric(metric).higher_is_better else -1.0
    above = sign * (full - floor)
    headroom = {m: sign * (full - value) / above if above > 0 else float("nan") for m, value in unimodal.items()}
    return MMPTProfile(metric=metric, full=full, unimodal=unimodal, chance=floor, headroom=headroom)


def unimodal_gap(profile: MMPTProfile, expert: Mapping[str, float]) -> dict[str, float]:
    """Unimodal pattern of the multimodal model minus a unimodal expert's score.

    A gap on the worse side of the metric means the multimodal model, given only ``m``, is
    worse than a model trained on ``m`` alone: its ``m`` branch is under-trained
    ("modality laziness"), the gap that pre-trained encoders are meant to close.

    Args:
        profile: from :func:`mmpt_profile`.
        expert: ``{modality: score of the unimodal expert}`` on the same metric and test
            set; modalities without an expert are left out of the result.

    Raises:
        ValueError: if ``expert`` names a modality the profile does not have.
    """
    unknown = sorted(set(expert) - set(profile.unimodal))
    if unknown:
        raise ValueError(f"Expected `expert` keys among {sorted(profile.unimodal)}, got unknown {unknown}.")
    return {m: profile.unimodal[m] - float(expert[m]) for m in sorted(expert)}
