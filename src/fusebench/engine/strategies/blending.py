"""Gradient blending (Wang, Tran and Feiszli, "What makes training multi-modal classification
networks hard?", CVPR 2020): ``L = w_mm * L_mm + sum_m w_m * L_m``.

The fused head's loss and one unimodal head per modality (the auxiliary-head machinery of
``heads.py``) are blended with weights that the paper derives from how fast each head
generalises versus how fast it overfits (``estimate_blending_weights``). The paper's
offline recipe (train each head alone for a few epochs, measure, then train the blend) is
``gradient_blending: auto`` (``blending_auto``), in one run; ``blending_weights_from_runs``
reads the per-epoch train and validation losses of existing runs instead (a short
multimodal run and a short ``fusebench pretrain`` run per modality).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from torch import Tensor, nn
from torch.nn import functional as F

from fusebench.data.batch import Batch
from fusebench.engine.strategies.base import Strategy
from fusebench.engine.strategies.heads import TaskLoss, unimodal_losses
from fusebench.io import read_json
from fusebench.models.multimodal import ModelOutput


class GradientBlending(Strategy):
    """Scales the fused loss to ``w_mm`` and adds ``w_m * L_m`` per unimodal head.

    The engine computes the fused task loss once and multiplies it by ``task_loss_scale``
    (``w_mm``); this strategy adds ``w_m * L_m`` (logged as ``blend_<modality>``), so the
    logged ``train/loss`` is the blended loss.

    Args:
        fused_weight: ``w_mm`` >= 0, the weight of the fused head's loss.
        weights: modality -> ``w_m`` >= 0 of its unimodal head (on present samples).
        loss: the task's loss (cross-entropy for classification).
    """

    def __init__(self, fused_weight: float, weights: Mapping[str, float], loss: TaskLoss = F.cross_entropy) -> None:
        self.fused_weight = float(fused_weight)
        self.weights = dict(sorted(weights.items()))
        self.loss = loss

    def task_loss_scale(self) -> float:
        return self.fused_weight

    def extra_losses(self, model: nn.Module, output: ModelOutput, batch: Batch) -> dict[str, Tensor]:
        losses = unimodal_losses(model, output, batch, list(self.weights), self.loss)
        return {f"blend_{m}": self.weights[m] * loss for m, loss in losses.items()}


def estimate_blending_weights(
    train_losses: Mapping[str, Sequence[float]],
    val_losses: Mapping[str, Sequence[float]],
    start: int = 0,
    end: int = -1,
    overfitting: Literal["delta", "final"] = "delta",
    eps: float = 1e-8,
) -> dict[str, float]:
    """Gradient-blending weights from each head's per-epoch train and validation losses.

    For head ``k`` over the window from epoch ``N = start`` to ``N + n = end`` (Wang et al.,
    2020, Sec. 3): overfitting ``O_k(t) = L^V_k(t) - L^T_k(t)``, generalisation gained
    ``dG_k = L^V_k(N) - L^V_k(N + n)`` and overfitting gained ``dO_k = O_k(N + n) - O_k(N)``.
    The weight that minimises the overfitting-to-generalisation ratio of the blend is
    ``w_k = (1 / Z) * dG_k / dO_k^2`` with ``Z`` normalising the weights to sum 1. A head
    that did not generalise (``dG_k <= 0``) gets weight 0; ``dO_k^2`` is floored at ``eps``.
    ``overfitting="final"`` uses ``O_k(N + n)`` instead of ``dO_k``, the variant MultiBench
    implements.

    Args:
        train_losses: head name (e.g. ``audio+image``, ``audio``) -> train loss per epoch.
        val_losses: the same heads -> validation loss per epoch.
        start: index of epoch ``N``.
        end: index of epoch ``N + n`` (after ``start``).
        overfitting: ``"delta"`` (``dO_k``, the paper) or ``"final"`` (``O_k(N + n)``).
        eps: floor of the squared overfitting.

    Returns:
        head name -> weight, summing to 1.

    Raises:
        ValueError: if the heads differ, a window index is out of range, or no head
            generalised.

    >>> w = estimate_blending_weights({"a": [2.0, 1.0], "b": [2.0, 1.0]},
    ...                               {"a": [2.0, 1.5], "b": [2.0, 1.8]})
    >>> {k: round(v, 4) for k, v in w.items()}
    {'a': 0.8649, 'b': 0.1351}
    """
    stats = blending_statistics(train_losses, val_losses, start, end, overfitting)
    raw = {head: max(s["generalization"], 0.0) / max(s["overfitting"] ** 2, eps) for head, s in stats.items()}
    total = sum(raw.values())
    if total <= 0:
        raise ValueError(
            f"No head's validation loss fell between epochs {start} and {end} (heads "
            f"{sorted(raw)}); train longer before estimating gradient-blending weights."
        )
    return {head: value / total for head, value in raw.items()}


def blending_statistics(
    train_losses: Mapping[str, Sequence[float]],
    val_losses: Mapping[str, Sequence[float]],
    start: int = 0,
    end: int = -1,
    overfitting: Literal["delta", "final"] = "delta",
) -> dict[str, dict[str, float]]:
    """Per head: ``generalization`` ``dG_k``, ``overfitting`` ``dO_k`` (or ``O_k(N + n)``) and
    ``ratio``, the overfitting-to-generalisation ratio ``OGR_k = |dO_k / dG_k|`` (Wang et al.,
    2020, Sec. 3.2, Eq. 2); see ``estimate_blending_weights`` for the window and the arguments.

    >>> blending_statistics({"a": [2.0, 1.0]}, {"a": [2.0, 1.5]})["a"]
    {'generalization': 0.5, 'overfitting': 0.5, 'ratio': 1.0}
    """
    if set(train_losses) != set(val_losses) or not train_losses:
        raise ValueError(
            f"Expected the same non-empty heads in `train_losses` and `val_losses`, got "
            f"{sorted(train_losses)} and {sorted(val_losses)}."
        )
    if overfitting not in ("delta", "final"):
        raise ValueError(f"Expected `overfitting` in ['delta', 'final'], got `{overfitting}`.")
    stats: dict[str, dict[str, float]] = {}
    for head in sorted(train_losses):
        train, val = list(train_losses[head]), list(val_losses[head])
        if len(train) != len(val):
            raise ValueError(
                f"Expected as many train as validation losses for head `{head}`, got {len(train)} and {len(val)}."
            )
        n, e = _index(start, len(val), "start", head), _index(end, len(val), "end", head)
        if e <= n:
            raise ValueError(
                f"Expected `end` after `start` for head `{head}` ({len(val)} epochs), got start={start}, end={end}."
            )
        gained = val[n] - val[e]
        over = val[e] - train[e]
        if overfitting == "delta":
            over -= val[n] - train[n]
        ratio = abs(over / gained) if gained != 0 else float("inf")
        stats[head] = {"generalization": gained, "overfitting": over, "ratio": ratio}
    return stats


def _index(index: int, length: int, name: str, head: str) -> int:
    resolved = index + length if index < 0 else index
    if not 0 <= resolved < length:
        raise ValueError(f"Expected `{name}` within the {length} epochs of head `{head}`, got {index}.")
    return resolved


def blending_weights_from_runs(
    runs: Mapping[str, str | Path], start: int = 0, end: int = -1, overfitting: Literal["delta", "final"] = "delta"
) -> dict[str, float]:
    """``estimate_blending_weights`` from finished run directories, one per head.

    Each run's ``epoch_metrics.json`` gives the train loss (the epoch's mean training-step
    loss) and the validation loss of its full pattern per epoch. Use a short multimodal
    run for the fused head and a ``fusebench pretrain`` run per modality, on the same data.

    Args:
        runs: head name (``audio+image``, ``audio``, ...) -> run directory.
        start, end, overfitting: as in ``estimate_blending_weights``.

    Returns:
        head name -> weight, ready for ``training.strategy.gradient_blending``.
    """
    train: dict[str, list[float]] = {}
    val: dict[str, list[float]] = {}
    for head, run_dir in sorted(runs.items()):
        path = Path(run_dir) / "epoch_metrics.json"
        if not path.is_file():
            raise FileNotFoundError(f"Head `{head}`: no `{path}`; expected a finished fusebench run.")
        epochs = [e for e in read_json(path) if "validation" in e]
        train[head] = [float(e["train"]["loss"]) for e in epochs]
        val[head] = [float(e["validation"]["loss"]) for e in epochs]
    return estimate_blending_weights(train, val, start, end, overfitting)
