"""The bare PyTorch loop every ratio is measured against: float32 tensors, a permutation, forward/backward/step.

It is what a user writes without a framework: the three splits loaded into float32 tensors,
each epoch a ``randperm`` and index slicing, ``cross_entropy``, ``backward``, ``Adam.step``;
the test pass one forward per batch under ``torch.no_grad``. The model is the very module
fusebench builds (the model is not the framework), called with the all-present mask.

Run as a script it is the bare *process* of the memory row: load, train one epoch, test,
print the peak resident memory.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass
class BareSplit:
    inputs: dict[str, Tensor]
    target: Tensor

    def __len__(self) -> int:
        return len(self.target)


def bare_split(inputs: Mapping[str, Tensor], target: Tensor) -> BareSplit:
    """A split as float32 tensors in memory (a copy of fusebench's float16 memory maps)."""
    return BareSplit({m: x.float().contiguous() for m, x in sorted(inputs.items())}, target.clone())


def _mask(size: int, modalities: int) -> Tensor:
    return torch.ones(size, modalities, dtype=torch.bool)


def train_epoch(
    model: nn.Module, optimizer: torch.optim.Optimizer, split: BareSplit, batch_size: int, seed: int = 0
) -> None:
    model.train()
    order = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))
    full = _mask(batch_size, len(split.inputs))
    for start in range(0, len(split), batch_size):
        index = order[start : start + batch_size]
        inputs = {m: x[index] for m, x in split.inputs.items()}
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(inputs, full[: len(index)]).logits, split.target[index])
        loss.backward()
        optimizer.step()


@torch.no_grad()
def test_pass(model: nn.Module, split: BareSplit, batch_size: int) -> Tensor:
    """Logits of every sample with every modality present."""
    model.eval()
    full = _mask(batch_size, len(split.inputs))
    parts = []
    for start in range(0, len(split), batch_size):
        inputs = {m: x[start : start + batch_size] for m, x in split.inputs.items()}
        parts.append(model(inputs, full[: len(split.target[start : start + batch_size])]).logits)
    model.train()
    return torch.cat(parts)


def late_fusion_cnn(widths: list[int], shapes: Mapping[str, tuple[int, ...]], classes: int = 10) -> nn.Module:
    """fusebench's default late-fusion model (CNN encoders, concat, hidden 128, dropout 0.2, zero missing)."""
    from fusebench.models.encoders import ConvEncoder
    from fusebench.models.fusion import ConcatFusion
    from fusebench.models.missing import build_missing_strategy
    from fusebench.models.multimodal import MultimodalModel

    encoders = {m: ConvEncoder(shape[0], 64, widths) for m, shape in sorted(shapes.items())}
    dims = {m: 64 for m in encoders}
    return MultimodalModel(
        encoders, ConcatFusion(dims, 128, 0.2), nn.Linear(128, classes), build_missing_strategy("zero", dims)
    )


def _process(settings: dict[str, object]) -> dict[str, float]:
    """The bare process of the memory row: torch, numpy and fusebench's model classes, nothing else.

    ``settings``: ``cache`` (an AV-digits cache folder), ``limit`` (rows per split), ``widths``,
    ``batch_size``, ``eval_batch_size``, ``threads``.
    """
    from pathlib import Path

    import numpy as np
    from harness import peak_rss_bytes, rss_bytes

    after_imports = rss_bytes()
    folder = Path(str(settings["cache"]))
    limit = dict(settings["limit"])  # type: ignore[call-overload]
    torch.set_num_threads(int(settings["threads"]))  # type: ignore[call-overload]
    torch.manual_seed(0)
    splits = {}
    for split in ("train", "validation", "test"):
        n = limit.get(split)
        # the rows it uses, read from the file and held as float32 (what a user's own loop would do)
        inputs = {
            m: torch.from_numpy(np.load(folder / f"{split}.{m}.npy", mmap_mode="r")[:n].astype(np.float32))
            for m in ("audio", "image")
        }
        target = np.load(folder / f"{split}.target.npy", mmap_mode="r")[:n].astype(np.int64)
        splits[split] = BareSplit(inputs, torch.from_numpy(target))
    shapes = {m: tuple(x.shape[1:]) for m, x in splits["train"].inputs.items()}
    model = late_fusion_cnn(list(settings["widths"]), shapes)  # imports fusebench's model classes  # type: ignore[call-overload]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    train_epoch(model, optimizer, splits["train"], int(settings["batch_size"]))  # type: ignore[call-overload]
    for split in ("validation", "test"):
        test_pass(model, splits[split], int(settings["eval_batch_size"]))  # type: ignore[call-overload]
    return {"peak_rss_bytes": peak_rss_bytes(), "rss_after_imports": after_imports, "modules": len(sys.modules)}


if __name__ == "__main__":
    print(json.dumps(_process(json.loads(sys.argv[1]))))
