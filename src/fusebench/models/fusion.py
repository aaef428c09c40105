"""Late fusions: ``{modality: embedding [B, D_m]}`` plus presence mask ``[B, M]`` -> ``[B, out_dim]``.

Absent embeddings have already been replaced by the missing-modality strategy when a
fusion sees them; fusions that can ignore a modality outright (attention, max, mean)
also receive the mask so they do.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn


class LateFusion(nn.Module):
    """Base of every late fusion; keeps the sorted modality order that the mask columns follow."""

    out_dim: int

    def __init__(self, input_dims: Mapping[str, int]) -> None:
        super().__init__()
        if not input_dims:
            raise ValueError("Expected `input_dims` with at least one modality, got none.")
        self.input_dims = dict(sorted(input_dims.items()))
        self.modalities = tuple(self.input_dims)


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
        return self.hidden(z)
