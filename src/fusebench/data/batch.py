"""The one batch type every dataset, model and metric in fusebench agrees on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import Tensor


@dataclass(frozen=True)
class Batch:
    """A batch of multimodal samples.

    The mask, not the input values, says which modality a sample has: an absent
    modality may hold any numbers in ``inputs`` and models must not look at them.

    Args:
        inputs: modality name -> tensor ``[B, ...]``.
        mask: ``[B, M]`` bool; column ``j`` is ``modalities[j]``.
        target: ``[B]`` class indices (or ``[B, C]`` for multi-label / regression).
        modalities: sorted modality names, the column order of ``mask``.
        lengths: optional modality name -> ``[B]`` long sequence lengths.
    """

    inputs: Mapping[str, Tensor]
    mask: Tensor
    target: Tensor
    modalities: tuple[str, ...]
    lengths: Mapping[str, Tensor] | None = field(default=None)

    def __post_init__(self) -> None:
        if tuple(sorted(self.modalities)) != tuple(self.modalities):
            raise ValueError(f"Expected `modalities` sorted by name, got {self.modalities}.")
        if set(self.inputs) != set(self.modalities):
            raise ValueError(f"Expected `inputs` keys {sorted(self.modalities)}, got {sorted(self.inputs)}.")
        if self.mask.dtype != torch.bool or self.mask.shape != (len(self.target), len(self.modalities)):
            raise ValueError(
                f"Expected `mask` bool of shape {(len(self.target), len(self.modalities))}, "
                f"got {self.mask.dtype} {tuple(self.mask.shape)}."
            )

    @property
    def size(self) -> int:
        return len(self.target)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        """The batch on ``device``; ``non_blocking`` copies from pinned memory overlap with GPU work."""
        return Batch(
            inputs={m: x.to(device, non_blocking=non_blocking) for m, x in self.inputs.items()},
            mask=self.mask.to(device, non_blocking=non_blocking),
            target=self.target.to(device, non_blocking=non_blocking),
            modalities=self.modalities,
            lengths=None
            if self.lengths is None
            else {m: v.to(device, non_blocking=non_blocking) for m, v in self.lengths.items()},
        )

    def pin_memory(self) -> Batch:
        """The batch in page-locked host memory, so a ``non_blocking`` copy to a GPU does not wait."""
        return Batch(
            inputs={m: x.pin_memory() for m, x in self.inputs.items()},
            mask=self.mask.pin_memory(),
            target=self.target.pin_memory(),
            modalities=self.modalities,
            lengths=None if self.lengths is None else {m: v.pin_memory() for m, v in self.lengths.items()},
        )

    def with_mask(self, mask: Tensor) -> Batch:
        """The same samples seen through another presence mask."""
        return Batch(self.inputs, mask, self.target, self.modalities, self.lengths)

    def select(self, index: Tensor) -> Batch:
        """The rows ``index`` of every tensor."""
        return Batch(
            inputs={m: x[index] for m, x in self.inputs.items()},
            mask=self.mask[index],
            target=self.target[index],
            modalities=self.modalities,
            lengths=None if self.lengths is None else {m: v[index] for m, v in self.lengths.items()},
        )
