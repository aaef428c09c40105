"""An epoch's training outputs, kept on the device step by step and reduced once, over every process.

A training step only appends references to tensors it already has (loss, logits, target,
mask): no copy to the host, no ``self.log``, no pattern bookkeeping. The epoch's end
concatenates them, gathers them from every DDP process (:func:`gather_rows`: padded to
equal length, because collectives need one shape, then cut back), and hands the host one
tensor each.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import lightning as L
import torch
from torch import Tensor


def distributed(module: L.LightningModule) -> bool:
    """True when ``module`` trains in more than one process."""
    trainer = module._trainer  # a module outside a Trainer (tests, G-Blend heads) trains alone
    return trainer is not None and trainer.world_size > 1


def cat_rows(parts: list[Tensor]) -> Tensor:
    """``parts`` joined along rows; an empty list gives an empty tensor (an epoch without batches)."""
    return torch.cat(parts) if parts else torch.empty(0)


def _all_gather(module: L.LightningModule, value: Tensor) -> Tensor:
    gathered = module.all_gather(value)
    if not isinstance(gathered, Tensor):
        raise TypeError(f"Expected all_gather of a tensor to give a tensor, got {type(gathered).__name__}.")
    return gathered


def gather_rows(module: L.LightningModule, rows: Tensor) -> Tensor:
    """``rows`` of every process, concatenated in rank order (this process's own rows alone).

    Processes may hold different numbers of rows (the last evaluation block is shorter), so
    each pads to the longest before the all-gather and the padding is cut off after it.
    """
    if not distributed(module):
        return rows
    if rows.dtype == torch.bool:  # not every backend gathers bool tensors
        return gather_rows(module, rows.to(torch.uint8)).bool()
    counts = _all_gather(module, torch.tensor(len(rows), device=module.device)).reshape(-1).tolist()
    longest = max(int(c) for c in counts)
    padded = rows.new_zeros((longest, *rows.shape[1:]))
    padded[: len(rows)] = rows
    gathered = _all_gather(module, padded)  # [world, longest, ...]
    return torch.cat([gathered[rank, : int(count)] for rank, count in enumerate(counts)])


def gather_sum(module: L.LightningModule, value: Tensor) -> Tensor:
    """``value`` summed over every process."""
    if not distributed(module):
        return value
    return _all_gather(module, value).sum(dim=0)


@dataclass
class Gathered:
    """One epoch's outputs of every process, on the CPU: the loss is the sample-weighted mean."""

    loss: float
    count: int
    logits: Tensor
    target: Tensor
    mask: Tensor


@dataclass
class EpochOutputs:
    """Device-side references to each training step's outputs (see the module docstring)."""

    losses: list[Tensor] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    logits: list[Tensor] = field(default_factory=list)
    targets: list[Tensor] = field(default_factory=list)
    masks: list[Tensor] = field(default_factory=list)
    first_step: int | None = None

    def add(self, loss: Tensor, logits: Tensor, target: Tensor, mask: Tensor, step: int) -> None:
        if self.first_step is None:
            self.first_step = step
        self.losses.append(loss)
        self.sizes.append(len(target))
        self.logits.append(logits)
        self.targets.append(target)
        self.masks.append(mask)

    def first_non_finite(self) -> tuple[int, float] | None:
        """``(global step, loss)`` of the first non-finite loss this epoch, or ``None``."""
        if not self.losses:
            return None
        losses = torch.stack(self.losses)
        bad = (~torch.isfinite(losses)).nonzero()
        if not len(bad):
            return None
        index = int(bad[0, 0])
        return (self.first_step or 0) + index, float(losses[index])

    def gathered(self, module: L.LightningModule) -> Gathered:
        """The epoch's outputs of every process (``module`` does the collectives), on the CPU."""
        device = module.device
        sizes = torch.tensor(self.sizes, dtype=torch.float32, device=device)
        if self.losses:
            total = (torch.stack(self.losses).float() * sizes).sum()
        else:
            total = torch.zeros((), device=device)
        total = gather_sum(module, total)
        count = int(gather_sum(module, sizes.sum() if self.sizes else torch.zeros((), device=device)))
        logits = gather_rows(module, cat_rows(self.logits).float()).cpu()
        target = gather_rows(module, cat_rows(self.targets)).cpu()
        mask = gather_rows(module, cat_rows(self.masks)).cpu()
        self.losses, self.sizes, self.logits, self.targets, self.masks = [], [], [], [], []
        return Gathered(float(total) / count if count else float("nan"), count, logits, target, mask)
