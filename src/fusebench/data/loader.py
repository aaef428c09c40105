"""Tensor-backed batching: an epoch is a permutation and index slicing, no per-sample Python."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Protocol

import torch
from torch import Tensor

from fusebench.data.batch import Batch
from fusebench.seeding import Stream, seeded_generator


class MaskSource(Protocol):
    """Train-time missingness: each epoch's samples (data rows) and their presence masks.

    ``layout(n, epoch)`` returns ``rows [K]`` and ``mask [K, M]``: MCAR and pattern mixtures
    give every row once with a fresh mask per epoch (``K = n``); MMPT's split pairs add the
    unimodal parts of the split pairs as samples of their own (``K > n``).
    """

    @property
    def active(self) -> bool:
        """Whether any modality can be missing (otherwise every mask is all-present)."""
        ...

    def layout(self, n: int, epoch: int = 0) -> tuple[Tensor, Tensor]: ...


class TensorLoader:
    """Iterates ``Batch`` objects over whole in-memory tensors.

    Each ``iter()`` is one epoch: it draws the epoch's permutation and train-time masks from
    generators seeded by ``(seed, epoch)``, so a run is reproducible and any epoch's
    missingness can be recomputed. The realised masks of the last epoch are kept in
    ``last_masks`` for the run directory.

    Args:
        inputs: modality -> ``[N, ...]`` tensor.
        target: ``[N]`` labels.
        batch_size: samples per batch.
        shuffle: permute each epoch.
        seed: base seed of permutations.
        masks: optional train-time missingness source; all modalities present otherwise.
        lengths: optional modality -> ``[N]`` valid lengths of variable-length sequences.
    """

    def __init__(
        self,
        inputs: Mapping[str, Tensor],
        target: Tensor,
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int = 0,
        masks: MaskSource | None = None,
        lengths: Mapping[str, Tensor] | None = None,
    ) -> None:
        self.modalities = tuple(sorted(inputs))
        self.inputs = {m: inputs[m] for m in self.modalities}
        self.target = target
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.masks = masks
        self.lengths = {m: lengths[m] for m in sorted(lengths)} if lengths else None
        self.epoch = 0
        self.last_masks: Tensor | None = None
        sizes = {m: len(x) for m, x in self.inputs.items()}
        sizes.update({f"lengths.{m}": len(v) for m, v in (self.lengths or {}).items()})
        if any(n != len(target) for n in sizes.values()):
            raise ValueError(f"Expected every modality to have {len(target)} samples like the target, got {sizes}.")
        unknown = sorted(set(self.lengths or {}) - set(self.modalities))
        if unknown:
            raise ValueError(f"Expected `lengths` keys among {list(self.modalities)}, got {unknown}.")

    def __len__(self) -> int:
        return (self.num_samples + self.batch_size - 1) // self.batch_size

    @property
    def num_samples(self) -> int:
        """Training samples per epoch: the data rows, plus the unimodal parts of split pairs."""
        return len(self._epoch_layout(0)[0]) if self.masks is not None and self.masks.active else len(self.target)

    def _epoch_layout(self, epoch: int) -> tuple[Tensor, Tensor]:
        """``rows [K]`` (data row of each sample) and ``mask [K, M]`` of one epoch."""
        n = len(self.target)
        if self.masks is None or not self.masks.active:
            return torch.arange(n), torch.ones(n, len(self.modalities), dtype=torch.bool)
        return self.masks.layout(n, epoch)

    def __iter__(self) -> Iterator[Batch]:
        epoch, self.epoch = self.epoch, self.epoch + 1
        rows, mask = self._epoch_layout(epoch)  # [K], [K, M]: indexed by training sample
        k = len(rows)
        if self.shuffle:
            order = torch.randperm(k, generator=seeded_generator(self.seed, epoch, Stream.LOADER_ORDER))
        else:
            order = torch.arange(k)
        self.last_masks = mask
        for start in range(0, k, self.batch_size):
            sample = order[start : start + self.batch_size]
            index = rows[sample]
            yield Batch(
                inputs={m: x[index] for m, x in self.inputs.items()},
                mask=mask[sample],
                target=self.target[index],
                modalities=self.modalities,
                lengths=None if self.lengths is None else {m: v[index] for m, v in self.lengths.items()},
            )


def subset_indices(n: int, fraction: float, seed: int) -> Tensor:
    """A seeded subset of ``round(fraction * n)`` indices, kept in their original order."""
    if fraction >= 1.0:
        return torch.arange(n)
    keep = max(1, round(fraction * n))
    chosen = torch.randperm(n, generator=seeded_generator(seed, 0, Stream.TRAIN_SUBSET))[:keep]
    return torch.sort(chosen).values
