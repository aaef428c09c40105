"""Modality dropout: train on batches in which some samples lose a modality.

Training with whole modalities removed at random is the standard way to make a fusion
model robust to a modality missing at test time (ModDrop, Neverova et al., TPAMI 2016;
"Are Multimodal Transformers Robust to Missing Modality?", Ma et al., CVPR 2022). It acts
on the mask only: the mask is the truth about presence, so the model's missing-modality
strategy replaces the dropped embedding exactly as it would for a truly absent one.

Two protocols (``training.strategy.modality_dropout_of``):

- a modality name — the MMPT paper's protocol (``../shared/papers/004_d6fb5191247edfc1.txt``,
  section 4.1 "Modality Dropout"): that one modality is dropped with probability ``p``
  (the paper's empirically chosen ``p = 0.5``, the default), because dropping either of the
  two "can cause training instability"; one model is trained per modality and the study
  reports the better of the two (``analysis.best_of``, :mod:`fusebench.study.analysis_best`);
- ``any`` — fusebench's own variant: per sample, one of the present modalities, chosen
  uniformly, is dropped with probability ``p``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from fusebench.data.batch import Batch
from fusebench.engine.strategies.base import Strategy, Stream, seeded_generator

_STREAM = Stream.MODALITY_DROPOUT
ANY = "any"
PAPER_P = 0.5  # MMPT section 4.1: "an empirically-chosen probability of p = 0.5"


def drop_one_modality(mask: Tensor, p: float, generator: torch.Generator) -> Tensor:
    """``mask`` with, per sample and with probability ``p``, one present modality removed (variant ``any``).

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


def drop_chosen_modality(mask: Tensor, column: int, p: float, generator: torch.Generator) -> Tensor:
    """``mask`` with modality ``column`` removed from each sample with probability ``p`` (MMPT section 4.1).

    One uniform ``u`` per sample (``torch.rand(B, generator=generator)``); the sample loses
    the modality when ``u < p``, it has it, and it has another modality (never an empty
    pattern). The other modalities are never dropped.

    >>> g = torch.Generator().manual_seed(0)
    >>> drop_chosen_modality(torch.ones(3, 2, dtype=torch.bool), 1, 0.0, g)[:, 1].all().item()
    True
    """
    if not 0.0 <= p < 1.0:
        raise ValueError(f"Expected `p` in [0, 1), got {p}.")
    batch, columns = mask.shape
    if not 0 <= column < columns:
        raise ValueError(f"Expected `column` in 0..{columns - 1}, got {column}.")
    cpu = mask.cpu()
    drop = (torch.rand(batch, generator=generator) < p) & cpu[:, column] & (cpu.sum(dim=1) >= 2)  # [B]
    out = cpu.clone()
    out[drop, column] = False
    return out.to(mask.device)


class ModalityDropout(Strategy):
    """Per training sample, with probability ``p``, drop a modality (never all of them).

    Draws come from a generator seeded by ``(seed, step)``, so a run is reproducible and
    independent of the device and of the data order's own generator.

    Args:
        p: probability in [0, 1) that a sample loses the modality.
        modalities: sorted modality names (mask columns); at least two.
        seed: the run seed.
        drop: the one modality to drop (the MMPT paper's protocol, section 4.1), or
            ``"any"`` for fusebench's variant (a uniformly chosen present modality).
    """

    def __init__(self, p: float, modalities: Sequence[str], seed: int, drop: str = ANY) -> None:
        if not 0.0 <= p < 1.0:
            raise ValueError(f"Expected `training.strategy.modality_dropout` in [0, 1), got {p}.")
        if len(modalities) < 2:
            raise ValueError(
                f"`training.strategy.modality_dropout` needs at least two modalities, got {list(modalities)}."
            )
        if drop != ANY and drop not in modalities:
            raise ValueError(
                f"`training.strategy.modality_dropout_of` must be one of the run's modalities {list(modalities)} "
                f"or `{ANY}`, got `{drop}`."
            )
        self.p = p
        self.modalities = tuple(modalities)
        self.seed = seed
        self.drop = drop

    def transform_batch(self, batch: Batch, step: int) -> Batch:
        if self.p == 0.0:
            return batch
        generator = seeded_generator(self.seed, step, _STREAM)
        if self.drop == ANY:
            return batch.with_mask(drop_one_modality(batch.mask, self.p, generator))
        return batch.with_mask(drop_chosen_modality(batch.mask, self.modalities.index(self.drop), self.p, generator))
