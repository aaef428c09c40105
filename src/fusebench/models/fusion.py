"""Late fusions: ``{modality: [B, D_m]}`` plus presence mask ``[B, M]`` -> ``[B, out_dim]``.

Absent embeddings have already been replaced by the missing-modality strategy when a
fusion sees them. Fusions that can ignore a modality outright (sum, mean, max, gated,
attention) also use the mask so an absent modality contributes exactly nothing, whatever
its replacement embedding is. Concat, tensor and low-rank fusion have a fixed input layout,
so for them the replacement embedding *is* the missing-modality behaviour.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Literal, get_args

import torch
from torch import Tensor, nn

LateFusionKind = Literal["concat", "sum", "mean", "max", "gated", "attention", "tensor", "low_rank"]
LATE_FUSIONS: tuple[str, ...] = get_args(LateFusionKind)


class LateFusion(nn.Module):
    """Base of every late fusion; keeps the sorted modality order that the mask columns follow."""

    out_dim: int

    def __init__(self, input_dims: Mapping[str, int]) -> None:
        super().__init__()
        if not input_dims:
            raise ValueError("Expected `input_dims` with at least one modality, got none.")
        self.input_dims = dict(sorted(input_dims.items()))
        self.modalities = tuple(self.input_dims)

    def _present(self, mask: Tensor) -> Tensor:
        """``[B, M, 1]`` bool, after checking the mask has one column per modality."""
        if mask.dim() != 2 or mask.shape[1] != len(self.modalities):
            raise ValueError(
                f"Expected `mask` of shape [B, {len(self.modalities)}] (columns "
                f"{self.modalities}), got {tuple(mask.shape)}."
            )
        return mask.bool().unsqueeze(2)


def _masked_softmax(logits: Tensor, present: Tensor, dim: int) -> Tensor:
    """Softmax over present entries only; absent entries get a weight of exactly 0.

    The dtype's most negative finite value stands in for -inf so that a row with nothing
    present gives zeros rather than NaN, in the forward and the backward pass.
    """
    filled = logits.masked_fill(~present, torch.finfo(logits.dtype).min)
    return torch.softmax(filled, dim=dim) * present.to(logits.dtype)


def _append_one(z: Tensor) -> Tensor:
    """``[B, d]`` -> ``[B, d + 1]`` with a trailing 1 (TFN/LMF keep lower-order terms this way)."""
    return torch.cat([z, z.new_ones(z.shape[0], 1)], dim=1)


class ConcatFusion(LateFusion):
    """Concatenate the embeddings, then one linear hidden layer with dropout (the thesis baseline)."""

    def __init__(self, input_dims: Mapping[str, int], hidden_dim: int = 128, dropout: float = 0.2) -> None:
        super().__init__(input_dims)
        self.hidden = nn.Sequential(
            nn.Linear(sum(self.input_dims.values()), hidden_dim), nn.ReLU(inplace=True), nn.Dropout(dropout)
        )
        self.out_dim = hidden_dim

    def forward(self, embeddings: Mapping[str, Tensor], mask: Tensor) -> Tensor:
        z = torch.cat([embeddings[m] for m in self.modalities], dim=1)  # [B, sum D_m]
        out: Tensor = self.hidden(z)
        return out


class _ProjectedFusion(LateFusion):
    """Shared part of the pooling fusions: one Linear per modality to a common ``hidden_dim``."""

    def __init__(self, input_dims: Mapping[str, int], hidden_dim: int = 128, dropout: float = 0.2) -> None:
        super().__init__(input_dims)
        self.project = nn.ModuleDict({m: nn.Linear(d, hidden_dim) for m, d in self.input_dims.items()})
        self.dropout = nn.Dropout(dropout)
        self.out_dim = hidden_dim

    def projected(self, embeddings: Mapping[str, Tensor]) -> Tensor:
        projected = [self.project[m](embeddings[m]) for m in self.modalities]  # M x [B, H]
        return torch.stack(projected, dim=1)  # [B, M, H]


class SumFusion(_ProjectedFusion):
    """Sum of the present modalities' projections (the thesis' "sum" pooling)."""

    def forward(self, embeddings: Mapping[str, Tensor], mask: Tensor) -> Tensor:
        present = self._present(mask)  # [B, M, 1]
        h = torch.where(present, self.projected(embeddings), 0.0)  # [B, M, H]
        out: Tensor = self.dropout(h.sum(dim=1))  # [B, H]
        return out


class MeanFusion(_ProjectedFusion):
    """Mean over the present modalities only (the thesis' "avg"), so one modality is not diluted."""

    def forward(self, embeddings: Mapping[str, Tensor], mask: Tensor) -> Tensor:
        present = self._present(mask)  # [B, M, 1]
        h = torch.where(present, self.projected(embeddings), 0.0)  # [B, M, H]
        count = present.sum(dim=1).clamp(min=1).to(h.dtype)  # [B, 1]
        out: Tensor = self.dropout(h.sum(dim=1) / count)  # [B, H]
        return out


class MaxFusion(_ProjectedFusion):
    """Element-wise max over the present modalities' projections (the thesis' "max" pooling)."""

    def forward(self, embeddings: Mapping[str, Tensor], mask: Tensor) -> Tensor:
        present = self._present(mask)  # [B, M, 1]
        h = self.projected(embeddings)  # [B, M, H]
        pooled = h.masked_fill(~present, torch.finfo(h.dtype).min).amax(dim=1)  # [B, H]
        out: Tensor = self.dropout(torch.where(present.any(dim=1), pooled, 0.0))
        return out


class GatedFusion(LateFusion):
    """Gated Multimodal Unit (GMU; Arevalo et al., 2017, "Gated Multimodal Units for
    Information Fusion").

    ``h_m = tanh(W_m z_m)``; gates come from the concatenated ``z_m`` (absent ones zeroed so
    they cannot steer a gate). For two modalities this is the paper's unit, one sigmoid gate
    per hidden unit, ``h = g h_1 + (1 - g) h_2``, computed as a softmax over ``[a, 0]``
    (= ``[sigmoid(a), 1 - sigmoid(a)]``). For ``M > 2`` each modality has its own logit per
    hidden unit and a softmax over modalities keeps ``h`` a convex combination of the ``h_m``.
    Absent modalities get gate 0; the present ones are renormalised.
    """

    def __init__(self, input_dims: Mapping[str, int], hidden_dim: int = 128, dropout: float = 0.2) -> None:
        super().__init__(input_dims)
        # The paper's h_m = tanh(W_m x_m) has no bias term.
        self.transform = nn.ModuleDict({m: nn.Linear(d, hidden_dim, bias=False) for m, d in self.input_dims.items()})
        logits_per_unit = 1 if len(self.modalities) == 2 else len(self.modalities)
        self.gate = nn.Linear(sum(self.input_dims.values()), hidden_dim * logits_per_unit)
        self.dropout = nn.Dropout(dropout)
        self.out_dim = hidden_dim

    def gate_weights(self, embeddings: Mapping[str, Tensor], mask: Tensor) -> Tensor:
        """``[B, M, H]`` gate per modality and hidden unit; sums to 1 over present modalities."""
        present = self._present(mask)  # [B, M, 1]
        z = torch.cat(
            [torch.where(present[:, j], embeddings[m], 0.0) for j, m in enumerate(self.modalities)], dim=1
        )  # [B, sum D_m]
        g = self.gate(z)  # [B, H * logits_per_unit]
        if len(self.modalities) == 2:
            logits = torch.stack([g, torch.zeros_like(g)], dim=1)  # [B, 2, H]
        else:
            logits = g.view(g.shape[0], len(self.modalities), self.out_dim)  # [B, M, H]
        return _masked_softmax(logits, present, dim=1)

    def forward(self, embeddings: Mapping[str, Tensor], mask: Tensor) -> Tensor:
        h = torch.stack([torch.tanh(self.transform[m](embeddings[m])) for m in self.modalities], dim=1)  # [B, M, H]
        gates = self.gate_weights(embeddings, mask)  # [B, M, H]
        h = torch.where(self._present(mask), h, 0.0)  # [B, M, H]; even a NaN absent h adds nothing
        out: Tensor = self.dropout((gates * h).sum(dim=1))  # [B, H]
        return out


class AttentionFusion(_ProjectedFusion):
    """Attention over modalities with a learned context vector.

    Scoring as in Yang et al. (2016, "Hierarchical Attention Networks for Document
    Classification"): ``s_m = u^T tanh(W h_m + b)``, softmax over the present modalities,
    output ``sum_m a_m h_m``. The best pooling in the thesis' MM-IMDB comparison.
    """

    def __init__(
        self,
        input_dims: Mapping[str, int],
        hidden_dim: int = 128,
        dropout: float = 0.2,
        attention_dim: int | None = None,
    ) -> None:
        super().__init__(input_dims, hidden_dim, dropout)
        width = attention_dim or hidden_dim
        self.score = nn.Sequential(nn.Linear(hidden_dim, width), nn.Tanh(), nn.Linear(width, 1, bias=False))

    def _weights(self, h: Tensor, present: Tensor) -> Tensor:
        scores = self.score(h).squeeze(2)  # [B, M]
        return _masked_softmax(scores, present.squeeze(2), dim=1)  # [B, M]

    def attention_weights(self, embeddings: Mapping[str, Tensor], mask: Tensor) -> Tensor:
        """``[B, M]`` attention weights; sum to 1 over present modalities, 0 for absent ones."""
        return self._weights(self.projected(embeddings), self._present(mask))

    def forward(self, embeddings: Mapping[str, Tensor], mask: Tensor) -> Tensor:
        present = self._present(mask)  # [B, M, 1]
        h = self.projected(embeddings)  # [B, M, H]
        weights = self._weights(h, present).unsqueeze(2)  # [B, M, 1]
        out: Tensor = self.dropout((weights * torch.where(present, h, 0.0)).sum(dim=1))  # [B, H]
        return out


class TensorFusion(LateFusion):
    """Tensor Fusion Network (TFN; Zadeh et al., 2017, "Tensor Fusion Network for Multimodal
    Sentiment Analysis").

    Appending 1 to each ``z_m`` before the outer product keeps the unimodal, bimodal and
    trimodal interaction terms in one tensor. Each ``z_m`` is first projected to
    ``tensor_dim`` (``None``: not projected) so the flattened product has
    ``prod(tensor_dim + 1)`` entries, 17^3 = 4913 for three modalities at the default.
    """

    def __init__(
        self, input_dims: Mapping[str, int], hidden_dim: int = 128, dropout: float = 0.2, tensor_dim: int | None = 16
    ) -> None:
        super().__init__(input_dims)
        if tensor_dim is not None and tensor_dim < 1:
            raise ValueError(f"Expected `tensor_dim` >= 1 or None, got {tensor_dim}.")
        self.project = nn.ModuleDict(
            {m: nn.Identity() if tensor_dim is None else nn.Linear(d, tensor_dim) for m, d in self.input_dims.items()}
        )
        self.product_dim = math.prod((tensor_dim or d) + 1 for d in self.input_dims.values())
        self.post = nn.Sequential(nn.Linear(self.product_dim, hidden_dim), nn.ReLU(inplace=True), nn.Dropout(dropout))
        self.out_dim = hidden_dim

    def outer_product(self, embeddings: Mapping[str, Tensor]) -> Tensor:
        """``[B, prod(d_m + 1)]``: flattened outer product of the ``[z_m; 1]`` (sorted order)."""
        factors = [_append_one(self.project[m](embeddings[m])) for m in self.modalities]
        product = factors[0]
        for z1 in factors[1:]:
            product = (product.unsqueeze(2) * z1.unsqueeze(1)).flatten(1)  # [B, P * (d + 1)]
        return product

    def forward(self, embeddings: Mapping[str, Tensor], mask: Tensor) -> Tensor:
        self._present(mask)
        out: Tensor = self.post(self.outer_product(embeddings))  # [B, H]
        return out


class LowRankFusion(LateFusion):
    """Low-rank Multimodal Fusion (Liu et al., 2018, "Efficient Low-rank Multimodal Fusion with
    Modality-Specific Factors").

    TFN's weight tensor restricted to rank ``r``: ``W = sum_r lambda_r (x)_m w_m^(r)``, so
    ``W . (x)_m [z_m; 1] = sum_r lambda_r prod_m ([z_m; 1] . w_m^(r)) + b`` without ever
    forming the outer product; cost grows linearly with the number of modalities.
    """

    def __init__(
        self, input_dims: Mapping[str, int], hidden_dim: int = 128, dropout: float = 0.2, rank: int = 4
    ) -> None:
        super().__init__(input_dims)
        if rank < 1:
            raise ValueError(f"Expected `rank` >= 1, got {rank}.")
        self.factors = nn.ParameterDict(
            {
                m: nn.Parameter(nn.init.xavier_normal_(torch.empty(rank, d + 1, hidden_dim)))
                for m, d in self.input_dims.items()
            }
        )
        self.rank_weights = nn.Parameter(nn.init.xavier_normal_(torch.empty(1, rank)))
        self.bias = nn.Parameter(torch.zeros(hidden_dim))
        self.dropout = nn.Dropout(dropout)
        self.rank = rank
        self.out_dim = hidden_dim

    def forward(self, embeddings: Mapping[str, Tensor], mask: Tensor) -> Tensor:
        self._present(mask)
        factors = [  # M x [B, r, H]: each modality's rank-r projection of [z_m; 1]
            torch.einsum("bd,rdh->brh", _append_one(embeddings[m]), self.factors[m]) for m in self.modalities
        ]
        fused = factors[0]
        for factor in factors[1:]:
            fused = fused * factor  # [B, r, H]
        combined = torch.einsum("r,brh->bh", self.rank_weights[0], fused) + self.bias  # [B, H]
        out: Tensor = self.dropout(combined)
        return out


_CLASSES = (ConcatFusion, SumFusion, MeanFusion, MaxFusion, GatedFusion, AttentionFusion, TensorFusion, LowRankFusion)
_LATE_FUSION_CLASSES: dict[str, Callable[..., LateFusion]] = dict(zip(LATE_FUSIONS, _CLASSES, strict=True))


def build_late_fusion(
    kind: str, input_dims: Mapping[str, int], hidden_dim: int = 128, dropout: float = 0.2, **kwargs: Any
) -> LateFusion:
    """Build the late fusion ``kind`` for encoders with output widths ``input_dims``.

    Args:
        kind: one of ``LATE_FUSIONS``.
        input_dims: modality -> embedding width ``D_m``.
        hidden_dim: output width of the fusion (``out_dim``).
        dropout: dropout on the fused vector.
        **kwargs: fusion-specific options (``tensor_dim`` for tensor, ``rank`` for low_rank,
            ``attention_dim`` for attention). An option the fusion does not take is a
            ``TypeError``, never silently ignored.

    Raises:
        ValueError: if ``kind`` is not a known late fusion.

    >>> build_late_fusion("mean", {"audio": 8, "image": 4}, hidden_dim=16).out_dim
    16
    """
    if kind not in _LATE_FUSION_CLASSES:
        raise ValueError(f"Expected late fusion `kind` in {list(LATE_FUSIONS)}, got `{kind}`.")
    return _LATE_FUSION_CLASSES[kind](input_dims, hidden_dim=hidden_dim, dropout=dropout, **kwargs)
