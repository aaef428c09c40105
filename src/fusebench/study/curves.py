"""Learning-curve analysis: first-epoch and final values, best epoch, epochs to a threshold.

Epochs are 1-based throughout (epoch 1 is the value after the first pass over the data),
matching how papers and the thesis figures report "2 vs 8 epochs to 99%". A run that
never reaches the threshold is *censored*: we only know that it needs more than the
epochs it ran. Reporting it as ``max_epochs`` would bias every average towards the
condition that fails, so censoring is carried explicitly and summarised with a
Kaplan-Meier estimate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

Curve = Sequence[float] | npt.NDArray[Any]


@dataclass(frozen=True)
class EpochsToThreshold:
    """Epochs one run needed to reach a threshold.

    Attributes:
        epochs: first 1-based epoch whose value reaches the threshold; ``None`` if never.
        censored: ``True`` when the threshold was not reached within ``max_epochs``.
        max_epochs: number of epochs the run lasted (its follow-up time).
    """

    epochs: int | None
    censored: bool
    max_epochs: int

    def __post_init__(self) -> None:
        if self.max_epochs < 1:
            raise ValueError(f"Expected `max_epochs` >= 1, got {self.max_epochs}.")
        if self.censored != (self.epochs is None):
            raise ValueError(
                "Expected `epochs` to be None exactly when `censored` is True, got "
                f"epochs={self.epochs}, censored={self.censored}."
            )
        if self.epochs is not None and not 1 <= self.epochs <= self.max_epochs:
            raise ValueError(f"Expected `epochs` in [1, {self.max_epochs}], got {self.epochs}.")


@dataclass(frozen=True)
class EpochsToThresholdSummary:
    """Epochs-to-threshold over seeds, with censored runs treated as censored.

    Attributes:
        n: number of runs.
        n_reached: runs that reached the threshold.
        median_reached: median over the runs that reached it (``None`` if none did);
            optimistic whenever some runs are censored.
        mean_reached: mean over the runs that reached it (``None`` if none did).
        km_median: Kaplan-Meier median epoch; ``None`` when the estimated fraction of
            runs still below the threshold never falls to one half.
        max_follow_up: the longest run among the censored ones, or among all runs if
            none is censored; a ``None`` median means "more than this".
        display: short text for tables, e.g. ``"3 (5/5 reached)"`` or
            ``">10 (censored 3/5)"``.
    """

    n: int
    n_reached: int
    median_reached: float | None
    mean_reached: float | None
    km_median: float | None
    max_follow_up: int
    display: str


def _as_curve(curve: Curve) -> np.ndarray:
    arr = np.asarray(curve, dtype=float)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"Expected `curve` to be a non-empty 1-D sequence of per-epoch values, got shape {arr.shape}.")
    return arr


def epochs_to_threshold(curve: Curve, threshold: float, higher_is_better: bool = True) -> EpochsToThreshold:
    """First 1-based epoch at which ``curve`` reaches ``threshold``.

    "Reaches" means ``>= threshold`` when higher is better (accuracy) and
    ``<= threshold`` otherwise (loss). NaN epochs never count as reaching it.

    Args:
        curve: one value per epoch, epoch 1 first.
        threshold: the target value.
        higher_is_better: direction of the metric.

    Returns:
        The epoch, or a censored record (``epochs=None``) if it was never reached.

    >>> epochs_to_threshold([0.90, 0.97, 0.995, 0.99], 0.99)
    EpochsToThreshold(epochs=3, censored=False, max_epochs=4)
    >>> epochs_to_threshold([0.5, 0.4], 0.3, higher_is_better=False).censored
    True
    """
    arr = _as_curve(curve)
    with np.errstate(invalid="ignore"):
        hit = arr >= threshold if higher_is_better else arr <= threshold
    hit &= ~np.isnan(arr)
    if not hit.any():
        return EpochsToThreshold(epochs=None, censored=True, max_epochs=int(arr.size))
    return EpochsToThreshold(epochs=int(np.argmax(hit)) + 1, censored=False, max_epochs=int(arr.size))


def kaplan_meier_median(times: Sequence[int], reached: Sequence[bool]) -> float | None:
    """Kaplan-Meier (Kaplan & Meier 1958) median of event times with right censoring.

    ``S(t) = prod_{t_j <= t} (1 - d_j / n_j)`` over the distinct event times ``t_j``, with
    ``d_j`` runs reaching the threshold at ``t_j`` and ``n_j`` runs still at risk (time
    ``>= t_j``; a run censored at ``c`` ran ``c`` epochs without reaching it, so it is at
    risk up to and including ``c``). The median is the first ``t_j`` with
    ``S(t_j) <= 0.5``; when ``S`` equals 0.5 exactly, the midpoint to the next event time
    is used (the convention of R's ``survival`` package), so that without censoring the
    result equals the ordinary sample median.

    Returns:
        The median, or ``None`` when ``S`` stays above one half.

    >>> kaplan_meier_median([2, 3, 4, 10, 10], [True, True, True, False, False])  # S: .8 .6 .4
    4.0
    """
    t = np.asarray(times, dtype=float)
    event = np.asarray(reached, dtype=bool)
    survival = 1.0
    event_times = np.unique(t[event])
    for j, time in enumerate(event_times):
        at_risk = int(np.sum(t >= time))
        deaths = int(np.sum((t == time) & event))
        survival *= 1.0 - deaths / at_risk
        if math.isclose(survival, 0.5, abs_tol=1e-12):
            if j + 1 < len(event_times):
                return float((time + event_times[j + 1]) / 2.0)
            return float(time)
        if survival < 0.5:
            return float(time)
    return None


def summarize_epochs_to_threshold(
    results: Sequence[EpochsToThreshold],
) -> EpochsToThresholdSummary:
    """Summarise epochs-to-threshold over seeds without hiding censored runs.

    Raises:
        ValueError: if ``results`` is empty.

    >>> runs = [EpochsToThreshold(e, False, 10) for e in (2, 3, 3, 4, 5)]
    >>> summarize_epochs_to_threshold(runs).display
    '3 (5/5 reached)'
    >>> runs = [EpochsToThreshold(None, True, 10)] * 3 + runs[:2]
    >>> summarize_epochs_to_threshold(runs).display
    '>10 (censored 3/5)'
    """
    if len(results) == 0:
        raise ValueError("Expected at least one EpochsToThreshold in `results`, got none.")
    reached = [r.epochs for r in results if r.epochs is not None]
    n, n_reached = len(results), len(reached)
    n_censored = n - n_reached
    times = [r.epochs if r.epochs is not None else r.max_epochs for r in results]
    km = kaplan_meier_median(times, [not r.censored for r in results])
    censored_follow_up = [r.max_epochs for r in results if r.censored]
    max_follow_up = max(censored_follow_up or [r.max_epochs for r in results])
    if km is None:
        display = f">{max_follow_up} (censored {n_censored}/{n})"
    elif n_censored == 0:
        display = f"{km:g} ({n_reached}/{n} reached)"
    else:
        display = f"{km:g} (KM; {n_reached}/{n} reached, censored {n_censored}/{n})"
    return EpochsToThresholdSummary(
        n=n,
        n_reached=n_reached,
        median_reached=float(np.median(reached)) if reached else None,
        mean_reached=float(np.mean(reached)) if reached else None,
        km_median=km,
        max_follow_up=max_follow_up,
        display=display,
    )


def first_epoch(curve: Curve) -> float:
    """Value after epoch 1: how much a condition (e.g. pre-training) gives up front."""
    return float(_as_curve(curve)[0])


def final(curve: Curve) -> float:
    """Value after the last epoch."""
    return float(_as_curve(curve)[-1])


def best(curve: Curve, higher_is_better: bool = True) -> tuple[float, int]:
    """Best value and its 1-based epoch (the first one on ties); NaN epochs are skipped.

    Raises:
        ValueError: if every value is NaN.

    >>> best([0.3, 0.2, 0.25], higher_is_better=False)
    (0.2, 2)
    """
    arr = _as_curve(curve)
    if np.isnan(arr).all():
        raise ValueError(f"Expected at least one non-NaN value in `curve`, got {arr.tolist()}.")
    index = int(np.nanargmax(arr) if higher_is_better else np.nanargmin(arr))
    return float(arr[index]), index + 1
