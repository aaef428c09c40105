"""Contrastive losses between two modalities' embeddings of the same samples.

Each loss is a pure function (shared by the training engine and any analysis code) plus a
thin ``nn.Module`` wrapper that holds its hyper-parameters. Sample ``i`` of ``anchor`` and
sample ``i`` of ``other`` form the positive pair; every other pairing is a negative.
"""

from __future__ import annotations

import math
from typing import Any, Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ContrastiveKind = Literal["hard_negative", "infonce"]


def _similarities(anchor: Tensor, other: Tensor, temperature: float) -> Tensor:
    """``[B, B]`` cosine similarities divided by ``temperature``; row ``i`` is ``anchor[i]``."""
    if anchor.dim() != 2 or anchor.shape != other.shape:
        raise ValueError(
            f"Expected `anchor` and `other` of the same shape [B, D], "
            f"got {tuple(anchor.shape)} and {tuple(other.shape)}."
        )
    if temperature <= 0:
        raise ValueError(f"Expected `temperature` > 0, got {temperature}.")
    return F.normalize(anchor, dim=1) @ F.normalize(other, dim=1).T / temperature  # [B, B]


def _mean(losses: Tensor, logits: Tensor) -> Tensor:
    """Batch mean; an empty batch (no sample with both modalities) gives a graph-connected 0."""
    return losses.mean() if losses.numel() else logits.sum() * 0.0


def _hard_negative_rows(logits: Tensor, k: int, eps: float) -> Tensor:
    """``[B]`` per-row loss with the diagonal as positives and the ``k`` largest off-diagonals."""
    batch = logits.shape[0]
    positives = logits.diagonal()  # [B]
    diagonal = torch.eye(batch, dtype=torch.bool, device=logits.device)
    negatives = logits.masked_fill(diagonal, float("-inf")).topk(k, dim=1).values  # [B, k]
    # -log(e^p / (e^p + sum e^n + eps)) = logsumexp(p, n.., log eps) - p: no overflow at small tau
    log_eps = torch.full_like(positives, math.log(eps) if eps > 0 else float("-inf"))  # [B]
    log_eps = log_eps.unsqueeze(1)  # [B, 1]
    terms = torch.cat([positives.unsqueeze(1), negatives, log_eps], dim=1)  # [B, k + 2]
    return torch.logsumexp(terms, dim=1) - positives


def hard_negative_contrastive_loss(
    anchor: Tensor, other: Tensor, temperature: float = 0.1, k: int = 5, eps: float = 1e-7, symmetric: bool = False
) -> Tensor:
    """Contrastive loss of each anchor row against its ``k`` hardest negatives.

    As written in "Early Fusion with Contrastive Learning" (../shared/papers/003_*.txt,
    Sec. 3.2): ``sim_ij = exp(cos(anchor_i, other_j) / tau)``, ``pos_i = sim_ii``,
    ``neg_sum_i`` the sum of the ``k`` largest off-diagonal ``sim_ij`` of row ``i`` (the
    negatives the model currently confuses most), and
    ``loss_i = -log(pos_i / (pos_i + neg_sum_i + eps))`` with ``eps = 1e-7``, averaged over
    the ``N`` anchor rows. The paper's loss runs in one direction, from the anchor (its text
    or image embedding) to the enhanced modality; ``symmetric=True`` (a fusebench variant)
    averages it with the column-wise loss (other -> anchor).

    "If fewer negatives are available than the specified number, all negatives are used":
    ``k`` is clipped to ``B - 1``, so ``k >= B - 1`` gives the InfoNCE denominator plus
    ``eps``. Computed in log space. An empty batch gives 0, so a batch without a pair of
    present modalities trains nothing.

    Args:
        anchor: ``[B, D]`` embeddings of the anchor modality (rows of the similarity matrix).
        other: ``[B, D]`` embeddings of the other modality, same sample order.
        temperature: ``tau`` > 0.
        k: number of hardest negatives per anchor, >= 1.
        eps: added to the denominator (the paper's 1e-7).
        symmetric: also the other -> anchor direction, averaged.

    Returns:
        Scalar mean loss over the batch.

    >>> x = torch.eye(3)
    >>> round(float(hard_negative_contrastive_loss(x, x, temperature=1.0, k=1, eps=0.0)), 4)
    0.3133
    """
    if k < 1:
        raise ValueError(f"Expected `k` >= 1, got {k}.")
    if eps < 0:
        raise ValueError(f"Expected `eps` >= 0, got {eps}.")
    logits = _similarities(anchor, other, temperature)  # [B, B]
    k = min(k, logits.shape[0] - 1)
    k = max(k, 0)
    loss = _mean(_hard_negative_rows(logits, k, eps), logits)
    if symmetric:
        loss = (loss + _mean(_hard_negative_rows(logits.T, k, eps), logits)) / 2
    return loss


def info_nce_loss(anchor: Tensor, other: Tensor, temperature: float = 0.07, symmetric: bool = True) -> Tensor:
    """InfoNCE (van den Oord et al., 2018; the CLIP objective when symmetric) with all negatives.

    ``loss_i = -log softmax_j(s_ij)[i]`` over the ``[B, B]`` scaled cosine similarities;
    ``symmetric`` averages it with the same loss on the transposed matrix. An empty batch
    gives 0.

    Returns:
        Scalar mean loss over the batch.

    >>> x = torch.eye(2)
    >>> round(float(info_nce_loss(x, x, temperature=1.0)), 4)
    0.3133
    """
    logits = _similarities(anchor, other, temperature)  # [B, B]
    positives = logits.diagonal()  # [B]
    loss = _mean(logits.logsumexp(dim=1) - positives, logits)
    if symmetric:
        loss = (loss + _mean(logits.logsumexp(dim=0) - positives, logits)) / 2
    return loss


def present_pairs(mask: Tensor, i: int, j: int) -> Tensor:
    """``[B]`` bool: the samples in which modality columns ``i`` and ``j`` are both present.

    A contrastive loss between two modalities only makes sense on these rows.

    >>> present_pairs(torch.tensor([[True, True, False], [True, False, True]]), 0, 1).tolist()
    [True, False]
    """
    if mask.dim() != 2:
        raise ValueError(f"Expected `mask` of shape [B, M], got {tuple(mask.shape)}.")
    columns = mask.shape[1]
    if not (0 <= i < columns and 0 <= j < columns) or i == j:
        raise ValueError(f"Expected two different columns `i`, `j` in 0..{columns - 1}, got {i}, {j}.")
    return mask[:, i].bool() & mask[:, j].bool()


class HardNegativeContrastiveLoss(nn.Module):
    """Module form of ``hard_negative_contrastive_loss``."""

    def __init__(self, temperature: float = 0.1, k: int = 5, eps: float = 1e-7, symmetric: bool = False) -> None:
        super().__init__()
        if temperature <= 0 or k < 1 or eps < 0:
            raise ValueError(
                f"Expected `temperature` > 0, `k` >= 1 and `eps` >= 0, got temperature={temperature}, k={k}, eps={eps}."
            )
        self.temperature, self.k, self.eps, self.symmetric = temperature, k, eps, symmetric

    def forward(self, anchor: Tensor, other: Tensor) -> Tensor:
        return hard_negative_contrastive_loss(anchor, other, self.temperature, self.k, self.eps, self.symmetric)


class InfoNCELoss(nn.Module):
    """Module form of ``info_nce_loss``."""

    def __init__(self, temperature: float = 0.07, symmetric: bool = True) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"Expected `temperature` > 0, got {temperature}.")
        self.temperature, self.symmetric = temperature, symmetric

    def forward(self, anchor: Tensor, other: Tensor) -> Tensor:
        return info_nce_loss(anchor, other, self.temperature, self.symmetric)


def build_contrastive_loss(kind: ContrastiveKind, **kwargs: Any) -> nn.Module:
    """``"hard_negative"`` -> ``HardNegativeContrastiveLoss(**kwargs)``, ``"infonce"`` ->
    ``InfoNCELoss(**kwargs)``; an option the loss does not take is a ``TypeError``."""
    if kind == "hard_negative":
        return HardNegativeContrastiveLoss(**kwargs)
    if kind == "infonce":
        return InfoNCELoss(**kwargs)
    raise ValueError(f"Expected contrastive loss `kind` in {list(get_args(ContrastiveKind))}, got `{kind}`.")
