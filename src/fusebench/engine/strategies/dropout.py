"""Modality dropout: train on batches in which some samples lose one of their modalities.

Training with whole modalities removed at random is the standard way to make a fusion
model robust to a modality missing at test time (ModDrop, Neverova et al., TPAMI 2016;
"Are Multimodal Transformers Robust to Missing Modality?", Ma et al., CVPR 2022). It acts
on the mask only: the mask is the truth about presence, so the model's missing-modality
strategy replaces the dropped embedding exactly as it would for a truly absent one.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from fusebench.data.batch import Batch
from fusebench.engine.strategies.base import Strategy, Stream, seeded_generator

_STREAM = Stream.MODALITY_DROPOUT


def drop_one_modality(mask: Tensor, p: float, generator: torch.Generator) -> Tensor:
    """``mask`` with, per sample and with probability ``p``, one present modality removed.

    The dropped modality is drawn uniformly among the sample's present ones. A sample
    with a single present modality keeps it: a pattern is never empty.

    Args:
        mask: ``[B, M]`` bool presence.
        p: probability that a sample (with at least two present modalities) loses one.
        generator: CPU generator; the draws do not depend on ``mask``'s device.

    Returns:
        ``[B, M]`` bool mask on ``mask``'s device.

    >>> g = torch.Generator().manual_seed(0)
    >>> drop_one_modality(torch.ones(4, 2, dtype=torch.bool), 0.0, g).all().item()
    True
    """
    if not 0.0 <= p < 1.0:
        raise ValueError(f"Expected `p` in [0, 1), got {p}.")
    batch, columns = mask.shape
    drop = torch.rand(batch, generator=generator) < p  # [B]
    scores = torch.rand(batch, columns, generator=generator)  # [B, M] uniform choice by argmax
    cpu = mask.cpu()
    choice = scores.masked_fill(~cpu, -1.0).argmax(dim=1)  # [B] a present column
    drop &= cpu.sum(dim=1) >= 2
    removed = torch.zeros_like(cpu)
    removed[torch.arange(batch)[drop], choice[drop]] = True
    return (cpu & ~removed).to(mask.device)


class ModalityDropout(Strategy):
    """Per training sample, with probability ``p``, drop one present modality (never all).

    Draws come from a generator seeded by ``(seed, step)``, so a run is reproducible and
    independent of the device and of the data order's own generator.

    Args:
        p: probability in [0, 1) that a sample loses one modality.
        modalities: sorted modality names (mask columns); at least two.
        seed: the run seed.
    """

    def __init__(self, p: float, modalities: Sequence[str], seed: int) -> None:
        if not 0.0 <= p < 1.0:
            raise ValueError(f"Expected `training.strategy.modality_dropout` in [0, 1), got {p}.")
        if len(modalities) < 2:
            raise ValueError(
                f"`training.strategy.modality_dropout` needs at least two modalities, got "
                f"{list(modalities)}."
            )
        self.p = p
        self.modalities = tuple(modalities)
        self.seed = seed

    def transform_batch(self, batch: Batch, step: int) -> Batch:
        if self.p == 0.0:
            return batch
        generator = seeded_generator(self.seed, step, _STREAM)
        return batch.with_mask(drop_one_modality(batch.mask, self.p, generator))
