"""The thesis' per-run reporting quantities, as pure functions shared by results.csv and the report.

From the thesis (../shared/papers/000_*.txt):

- **% change against the baseline** per modality pattern (Sec. 7.2, Figs. 7.6-7.9:
  "Percentage change in F1 samples for each pooling method compared to baseline"):
  ``100 * (value - baseline) / baseline``;
- **training efficiency** (Sec. 7.4, Fig. 7.27: "a metric ... representing the ratio of
  accuracy to training time (multiplied by 1000 for ease of representation)"): here the
  test metric divided by the run's training seconds (``timing.json: training``, the
  training epochs without validation); the report shows it times 1000 as the thesis does;
- **best-epoch vs last-epoch** validation metric (the thesis selects the best epoch's
  weights; the gap to the last epoch shows over-training).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

#: The thesis' display scale of efficiency (metric per 1000 s of training).
EFFICIENCY_SCALE = 1000.0


def percent_change(value: float | None, baseline: float | None) -> float | None:
    """``100 * (value - baseline) / baseline`` (``None`` when either is missing or the baseline is 0).

    >>> round(percent_change(0.5878, 0.5632), 2)  # thesis: MM-IMDB F1_samples IT, pre-trained vs scratch
    4.37
    """
    if value is None or baseline is None or baseline == 0 or not math.isfinite(value) or not math.isfinite(baseline):
        return None
    return 100.0 * (value - baseline) / baseline


def efficiency(value: float | None, training_seconds: float | None, higher_is_better: bool = True) -> float | None:
    """Test metric per second of training (``None`` without both numbers or with no training time).

    The thesis defines it for accuracy, a higher-is-better metric. For a lower-is-better one
    (MAE) the ratio would rank a worse model as more efficient, so there is none (``None``).

    >>> efficiency(0.9, 300.0)
    0.003
    >>> efficiency(0.9, 300.0, higher_is_better=False) is None
    True
    """
    if value is None or training_seconds is None or training_seconds <= 0 or not math.isfinite(value):
        return None
    if not higher_is_better:
        return None
    return value / training_seconds


def best_and_last(curve: Sequence[float | None], higher_is_better: bool) -> dict[str, Any] | None:
    """The best epoch (1-based, first on ties), its value, the last epoch and its value, and their gap.

    ``gap`` is ``last - best`` (<= 0 for a higher-is-better metric). Epochs without a value
    are skipped; an empty curve gives ``None``.

    >>> best_and_last([0.5, 0.8, 0.7], higher_is_better=True)
    {'best_epoch': 2, 'best': 0.8, 'last_epoch': 3, 'last': 0.7, 'gap': -0.10000000000000009}
    """
    values = [(i + 1, float(v)) for i, v in enumerate(curve) if v is not None and math.isfinite(float(v))]
    if not values:
        return None
    if higher_is_better:  # the earliest epoch among equal bests
        best_epoch, best = max(values, key=lambda item: (item[1], -item[0]))
    else:
        best_epoch, best = min(values, key=lambda item: (item[1], item[0]))
    last_epoch, last = values[-1]
    return {"best_epoch": best_epoch, "best": best, "last_epoch": last_epoch, "last": last, "gap": last - best}


def baseline_run(
    run: Mapping[str, Any], runs: Sequence[Mapping[str, Any]], baseline: str | None
) -> Mapping[str, Any] | None:
    """The completed fusion run of the ``baseline`` condition with ``run``'s seed and axis values."""
    if baseline is None or run.get("condition") in (None, baseline):
        return None
    for other in runs:
        if (
            other.get("kind", "fusion") == "fusion"
            and other.get("condition") == baseline
            and other.get("seed") == run.get("seed")
            and (other.get("axes") or {}) == (run.get("axes") or {})
            and other.get("status") == "completed"
        ):
            return other
    return None
