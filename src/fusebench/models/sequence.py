"""Padded variable-length sequences: which steps are real, and pooling over real steps only."""

from __future__ import annotations

import torch
from torch import Tensor


def step_mask(lengths: Tensor | None, batch: int, steps: int, device: torch.device) -> Tensor:
    """``[B, T]`` bool, True for the first ``lengths[b]`` steps (all True without lengths).

    Raises:
        ValueError: if a length is outside ``1..steps``.
    """
    if lengths is None:
        return torch.ones(batch, steps, dtype=torch.bool, device=device)
    if lengths.shape != (batch,):
        raise ValueError(f"Expected `lengths` of shape [{batch}], got {tuple(lengths.shape)}.")
    if len(lengths) and (int(lengths.min()) < 1 or int(lengths.max()) > steps):
        raise ValueError(
            f"Expected sequence lengths in 1..{steps}, got values from {int(lengths.min())} to {int(lengths.max())}."
        )
    return torch.arange(steps, device=device).unsqueeze(0) < lengths.to(device).unsqueeze(1)


def masked_mean(values: Tensor, valid: Tensor) -> Tensor:
    """Mean of ``values [B, T, D]`` over the steps where ``valid [B, T]`` is True: ``[B, D]``.

    Padding steps are selected away, not multiplied by 0, so not even an Inf or NaN there
    reaches the result.
    """
    keep = valid.unsqueeze(-1)  # [B, T, 1]
    total = torch.where(keep, values, torch.zeros((), dtype=values.dtype, device=values.device)).sum(dim=1)
    return total / keep.sum(dim=1).clamp(min=1).to(values.dtype)
