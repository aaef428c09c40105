"""OGM-GE's per-modality scores and modulation coefficients (Peng et al., CVPR 2022, Sec. 3.2).

Peng, Wei, Deng, Wang and Hu, "Balanced multimodal learning via on-the-fly gradient
modulation", CVPR 2022. How confident the model is with each modality's part of the
prediction, and how much the dominant modality's encoder is slowed down for it, computed
each step on the samples that have every modality (the only ones on which the modalities
can be compared); :class:`fusebench.engine.strategies.ogm.OGMGE` applies the coefficients
to the encoder gradients and adds the GE noise. The equations are kept apart from the
strategy as plain functions, so that each can be checked against a value worked by hand:

- per-modality logits (``ogm_scores``):

  - ``"head_share"`` (the paper, Eq. 8, default): modality ``m``'s additive share of the
    fused logits, ``W_m z_m + b / M`` — the paper's ``W^a phi^a + b/2`` for a linear head
    over concatenated embeddings. In fusebench this exists for late ``sum`` fusion, whose
    logits are ``W (sum_m (P_m z_m + c_m)) + b``: the share of ``m`` is
    ``W (P_m z_m + c_m) + b / M``, and the shares add up to the fused logits. Other fusions
    have no such split and are rejected with this explanation;
  - ``"masked_fuse"`` (fusebench's variant for any fusion with ``fuse``): the fused logits
    with only ``m`` present (the missing-modality strategy fills the others);

- ``s_m = sum_i softmax(logits_m)_i[y_i]`` (Eq. 8-9);
- ``rho_m = s_m / mean_{u != m} s_u`` (two modalities: the paper's ``s_a / s_v``, Eq. 9;
  with more, fusebench compares each modality with the mean of the others);
- ``k_m`` (``ogm_coefficient``): ``"eq10"`` (default) ``1 - tanh(alpha * rho_m)`` when
  ``rho_m > 1``, else 1 — the paper's Eq. 10, which the authors' code also applies; or
  ``"continuous"`` ``1 - tanh(alpha * relu(rho_m - 1))``, fusebench's earlier variant that
  is continuous at ``rho = 1``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Literal, get_args

import torch
from torch import Tensor, nn

from fusebench.data.patterns import pattern_mask
from fusebench.engine.strategies.base import contract
from fusebench.errors import ConfigError
from fusebench.models.contract import EncodeFuseModel
from fusebench.models.fusion import SumFusion
from fusebench.models.multimodal import MultimodalModel

OGMCoefficient = Literal["eq10", "continuous"]
OGMScores = Literal["head_share", "masked_fuse"]


def discrepancy_ratios(scores: Mapping[str, float]) -> dict[str, float]:
    """``rho_m = s_m / mean_{u != m} s_u`` (Peng et al., Eq. 9, for two modalities ``s_a / s_v``).

    >>> discrepancy_ratios({"audio": 30.0, "image": 10.0})
    {'audio': 3.0, 'image': 0.3333333333333333}
    """
    if len(scores) < 2:
        raise ValueError(f"Expected scores of at least two modalities, got {sorted(scores)}.")
    ratios: dict[str, float] = {}
    for m, score in sorted(scores.items()):
        others = sum(s for u, s in scores.items() if u != m) / (len(scores) - 1)
        if others > 0:
            ratios[m] = score / others
        else:
            ratios[m] = math.inf if score > 0 else 1.0
    return ratios


def ogm_coefficients(
    scores: Mapping[str, float], alpha: float, coefficient: OGMCoefficient = "eq10"
) -> dict[str, float]:
    """The modulation coefficient ``k_m`` of each modality from its score ``s_m``.

    ``"eq10"`` (Peng et al., Eq. 10): ``k_m = 1 - tanh(alpha * rho_m)`` if ``rho_m > 1``,
    else 1. ``"continuous"``: ``k_m = 1 - tanh(alpha * max(rho_m - 1, 0))``.

    >>> k = ogm_coefficients({"audio": 30.0, "image": 10.0}, alpha=0.5)  # rho_audio = 3
    >>> round(k["audio"], 4), k["image"]
    (0.0949, 1.0)
    >>> round(ogm_coefficients({"audio": 30.0, "image": 10.0}, 0.5, "continuous")["audio"], 4)
    0.2384
    """
    if alpha < 0:
        raise ValueError(f"Expected `alpha` >= 0, got {alpha}.")
    if coefficient not in get_args(OGMCoefficient):
        raise ValueError(f"Expected `coefficient` in {list(get_args(OGMCoefficient))}, got `{coefficient}`.")
    coefficients: dict[str, float] = {}
    for m, rho in discrepancy_ratios(scores).items():
        if coefficient == "eq10":
            coefficients[m] = 1.0 - math.tanh(alpha * rho) if rho > 1.0 else 1.0
        else:
            coefficients[m] = 1.0 - math.tanh(alpha * max(rho - 1.0, 0.0))
    return coefficients


def head_shares_check(model: nn.Module, modalities: Sequence[str]) -> None:
    """Raise unless ``head_shares`` is defined for ``model`` (checked when the strategy is built)."""
    _additive_parts(model)


def _additive_parts(model: nn.Module) -> tuple[SumFusion, nn.Linear]:
    """The ``SumFusion`` and linear head of a late-fusion model, or a ValueError that says why not."""
    inner = contract(model)
    if isinstance(inner, MultimodalModel) and isinstance(inner.fusion, SumFusion) and isinstance(inner.head, nn.Linear):
        return inner.fusion, inner.head
    name = type(inner.fusion if isinstance(inner, MultimodalModel) else inner).__name__
    raise ConfigError(
        f"`training.strategy.ogm_scores: head_share` (Peng et al., CVPR 2022, Eq. 8: each modality's "
        f"share W_m z_m + b/M of a linear head) needs logits that split into per-modality terms, which "
        f"fusebench's late `sum` fusion has; got `{name}`. Set `model.fusion.type` `late` with "
        f"`model.fusion.method` `sum`, or `training.strategy.ogm_scores` `masked_fuse` (fusebench's variant "
        f"for any fusion)."
    )


def head_shares(model: nn.Module, embeddings: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Each modality's additive share of the fused logits, ``W (P_m z_m + c_m) + b / M``.

    Defined for late ``sum`` fusion with a linear head (see the module docstring); computed
    without the fusion's dropout, so the shares add up to the eval-mode fused logits.

    Raises:
        ValueError: for a model whose logits do not split into per-modality terms.
    """
    fusion, head = _additive_parts(model)
    modalities = sorted(embeddings)
    bias = head.bias / len(modalities) if head.bias is not None else 0.0
    return {m: fusion.project[m](embeddings[m]) @ head.weight.T + bias for m in modalities}  # M x [N, C]


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode inside, then every submodule's own mode back (frozen encoders stay in eval)."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


def fuse_of(model: nn.Module) -> Callable[[Mapping[str, Tensor], Tensor], Tensor]:
    """``model.fuse`` of a model that splits into ``encode``/``fuse``, or an error naming the strategy."""
    if not isinstance(model, EncodeFuseModel):
        raise ConfigError(
            f"`training.strategy.ogm_ge` needs a model with `fuse(embeddings, mask)` (late or "
            f"feature early fusion), got `{type(model).__name__}`."
        )
    return model.fuse


@torch.no_grad()
def modality_scores(
    model: nn.Module,
    embeddings: Mapping[str, Tensor],
    target: Tensor,
    modalities: Sequence[str],
    scores: OGMScores = "head_share",
) -> dict[str, float]:
    """``s_m``: summed softmax probability of the true class from modality ``m``'s logits.

    Runs in eval mode (no dropout, no running-statistics updates of the missing-modality
    strategy) on detached embeddings; ``scores`` picks the per-modality logits (module
    docstring).
    """
    detached = {m: z.detach() for m, z in embeddings.items()}
    rows = torch.arange(len(target), device=target.device)
    with _eval_mode(model):
        if scores == "head_share":
            logits = head_shares(model, detached)
        else:
            logits = {}
            fuse = fuse_of(model)
            for m in modalities:
                mask = pattern_mask((m,), tuple(modalities), len(target)).to(target.device)
                logits[m] = fuse(detached, mask)
    return {m: float(logits[m].float().softmax(dim=1)[rows, target].sum()) for m in modalities}
