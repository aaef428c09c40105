"""Tensor-backed batching: an epoch is a permutation and index slicing, no per-sample Python.

Inputs may be stored at a lower floating precision than they are computed at (AV-digits'
float16 memory maps, shared by every process that reads them); each batch is converted to
float32 as it is cut (:func:`compute_dtype`), so no float32 copy of a whole split exists.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Literal, Protocol

import torch
from torch import Tensor

from fusebench.data.batch import Batch
from fusebench.seeding import Stream, seeded_generator

#: Storage dtypes whose batches are computed at float32.
_NARROW_FLOATS = (torch.float16, torch.bfloat16)


def as_compute(x: Tensor) -> Tensor:
    """``x`` at the dtype models compute in: float16/bfloat16 storage becomes float32; anything else stays."""
    return x.float() if x.dtype in _NARROW_FLOATS else x


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype a batch of a ``dtype`` tensor has (see :func:`as_compute`)."""
    return torch.float32 if dtype in _NARROW_FLOATS else dtype


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
        shard: ``(rank, world_size)`` of a process that trains with others (DDP): with
            ``shard_by="batch"`` each global batch of ``batch_size`` samples (the same on every
            process) is cut into ``world_size`` contiguous parts and this process gets part
            ``rank``, so the processes together see exactly one process's batches; a last batch
            with fewer samples than processes joins the batch before it. ``shard_by="rows"``
            (evaluation) gives each process one contiguous block of the rows, in order.
        pin_memory: cut batches into pinned host memory (for ``non_blocking`` copies to a GPU).
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
        shard: tuple[int, int] | None = None,
        shard_by: Literal["batch", "rows"] = "batch",
        pin_memory: bool = False,
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
        self.pin_memory = pin_memory
        self.shard_by = shard_by
        rank, world = shard if shard is not None else (0, 1)
        if world < 1 or not 0 <= rank < world:
            raise ValueError(f"Expected `shard` as (rank, world_size) with 0 <= rank < world_size, got {shard}.")
        if batch_size < 1:
            raise ValueError(f"Expected `batch_size` >= 1, got {batch_size}.")
        self.rank, self.world = rank, world
        sizes = {m: len(x) for m, x in self.inputs.items()}
        sizes.update({f"lengths.{m}": len(v) for m, v in (self.lengths or {}).items()})
        if any(n != len(target) for n in sizes.values()):
            raise ValueError(f"Expected every modality to have {len(target)} samples like the target, got {sizes}.")
        unknown = sorted(set(self.lengths or {}) - set(self.modalities))
        if unknown:
            raise ValueError(f"Expected `lengths` keys among {list(self.modalities)}, got {unknown}.")

    def __len__(self) -> int:
        return len(self._batch_bounds(self._sample_count()))

    def _sample_count(self) -> int:
        """Samples per epoch over all processes: the data rows, plus the unimodal parts of split pairs."""
        return len(self._epoch_layout(0)[0]) if self.masks is not None and self.masks.active else len(self.target)

    @property
    def num_samples(self) -> int:
        """Training samples per epoch this process sees (all of them without ``shard``)."""
        return sum(stop - start for start, stop in self._batch_bounds(self._sample_count()))

    def _batch_bounds(self, k: int) -> list[tuple[int, int]]:
        """``(start, stop)`` positions of this process's batches in the epoch's sample order."""
        if self.world == 1:
            return [(start, min(start + self.batch_size, k)) for start in range(0, k, self.batch_size)]
        if self.shard_by == "rows":
            block = -(-k // self.world)
            first, last = min(k, self.rank * block), min(k, (self.rank + 1) * block)
            return [(start, min(start + self.batch_size, last)) for start in range(first, last, self.batch_size)]
        starts = list(range(0, k, self.batch_size))
        if len(starts) > 1 and k - starts[-1] < self.world:  # no process may get an empty part
            starts.pop()
        bounds = []
        for i, start in enumerate(starts):
            stop = starts[i + 1] if i + 1 < len(starts) else k
            size = stop - start
            cut = [start + (size * j) // self.world for j in range(self.world + 1)]
            bounds.append((cut[self.rank], cut[self.rank + 1]))
        return bounds

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
        device = self.target.device
        if device.type != "cpu":  # data held on the GPU: index it there, one transfer per epoch
            order, rows, mask = order.to(device), rows.to(device), mask.to(device)
        for start, stop in self._batch_bounds(k):
            sample = order[start:stop]
            index = rows[sample]
            batch = Batch(
                inputs={m: as_compute(x[index]) for m, x in self.inputs.items()},
                mask=mask[sample],
                target=self.target[index],
                modalities=self.modalities,
                lengths=None if self.lengths is None else {m: v[index] for m, v in self.lengths.items()},
            )
            yield batch.pin_memory() if self.pin_memory else batch


def subset_indices(n: int, fraction: float, seed: int) -> Tensor:
    """A seeded subset of ``round(fraction * n)`` indices, kept in their original order."""
    if fraction >= 1.0:
        return torch.arange(n)
    keep = max(1, round(fraction * n))
    chosen = torch.randperm(n, generator=seeded_generator(seed, 0, Stream.TRAIN_SUBSET))[:keep]
    return torch.sort(chosen).values
