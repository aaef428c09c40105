"""Shared cases for the fusion tests: every fusion kind x every modality pattern.

One constant lists every fusion the project offers, so a new fusion cannot ship without
the shape, absent-modality, save/load and training tests running on it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from fusebench.data.patterns import Pattern, all_patterns, pattern_mask, pattern_name
from fusebench.models.early import FeatureEarlyFusionModel
from fusebench.models.encoders import ConvEncoder, MLPEncoder
from fusebench.models.fusion import build_late_fusion
from fusebench.models.multimodal import MultimodalModel
from fusebench.models.registry import build_token_early_fusion, build_where_to_fuse

# Every (family, kind); test_fusion.py pins it against fusebench.models.registry.FUSION_KINDS.
ALL_FUSIONS: tuple[tuple[str, str], ...] = (
    ("late", "concat"),
    ("late", "sum"),
    ("late", "mean"),
    ("late", "max"),
    ("late", "gated"),
    ("late", "attention"),
    ("late", "tensor"),
    ("late", "low_rank"),
    ("early", "feature"),
    ("early", "token"),
    ("mid", "where_to_fuse"),
)
LATE_KINDS: tuple[str, ...] = tuple(kind for family, kind in ALL_FUSIONS if family == "late")
# Late fusions that read the mask themselves, so absent embeddings are ignored even unreplaced.
MASK_AWARE_LATE_KINDS: tuple[str, ...] = ("sum", "mean", "max", "gated", "attention")

TWO_MODALITIES: tuple[str, ...] = ("audio", "image")
THREE_MODALITIES: tuple[str, ...] = ("audio", "image", "text")
# Per-sample shapes close to the real data: log-mel audio, MNIST images, a feature sequence.
INPUT_SHAPES: dict[str, tuple[int, ...]] = {"audio": (1, 40, 32), "image": (1, 28, 28), "text": (12, 20)}
NUM_CLASSES = 4


@contextmanager
def single_thread() -> Iterator[None]:
    """Run on one intra-op thread, then restore the setting.

    The test models are tiny, so extra threads only add synchronisation; on a shared
    two-core machine OpenMP spin-waiting made the training tests ~9x slower with two threads
    (173 s against 19 s).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def fusion_params(family: str | None = None) -> list:
    """``pytest.param((family, kind), id="family-kind")`` for every fusion (of ``family``)."""
    return [pytest.param((f, k), id=f"{f}-{k}") for f, k in ALL_FUSIONS if family in (None, f)]


def pattern_params(modalities: Sequence[str]) -> list:
    """``pytest.param(pattern, id="audio+image")`` for every non-empty modality subset."""
    return [pytest.param(p, id=pattern_name(p)) for p in all_patterns(modalities)]


def mask_for(pattern: Pattern, modalities: Sequence[str], batch_size: int) -> Tensor:
    return pattern_mask(pattern, tuple(modalities), batch_size)


def mixed_mask(modalities: Sequence[str], batch_size: int) -> Tensor:
    """``[B, M]``: the rows cycle through every pattern, so one batch mixes them all."""
    patterns = all_patterns(modalities)
    rows = [[m in patterns[i % len(patterns)] for m in modalities] for i in range(batch_size)]
    return torch.tensor(rows, dtype=torch.bool)


def make_inputs(modalities: Sequence[str], batch_size: int) -> dict[str, Tensor]:
    return {m: torch.randn(batch_size, *INPUT_SHAPES[m]) for m in modalities}


def perturb_absent(inputs: Mapping[str, Tensor], mask: Tensor, modalities: Sequence[str]) -> dict[str, Tensor]:
    """The same inputs with every absent entry replaced by large, unrelated values."""
    out = {}
    for j, m in enumerate(modalities):
        x = inputs[m]
        absent = (~mask[:, j]).view(-1, *[1] * (x.dim() - 1))
        out[m] = torch.where(absent, 100.0 * torch.randn_like(x) + 7.0, x)
    return out


def train_losses(
    model: nn.Module,
    modalities: Sequence[str] = TWO_MODALITIES,
    steps: int = 30,
    batch_size: int = 16,
    lr: float = 3e-3,
) -> list[float]:
    """Adam on fresh batches in which every modality shows the class; the per-step losses.

    Each class is a per-modality template (a class-specific brightness plus a fixed random
    pattern) under unit noise, so convolutional, patch and sequence encoders can all read it.
    Rows cycle through every modality pattern (``mixed_mask``), as MCAR training would.
    """
    generator = torch.Generator().manual_seed(0)
    levels = torch.linspace(-1.0, 1.0, NUM_CLASSES)  # [C]
    templates = {
        m: levels.view(-1, *[1] * len(INPUT_SHAPES[m]))
        + 0.5 * torch.randn(NUM_CLASSES, *INPUT_SHAPES[m], generator=generator)
        for m in modalities
    }  # m -> [C, *shape]
    mask = mixed_mask(modalities, batch_size)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    losses = []
    for _ in range(steps):
        target = torch.randint(0, NUM_CLASSES, (batch_size,), generator=generator)
        inputs = {
            m: templates[m][target] + torch.randn(batch_size, *INPUT_SHAPES[m], generator=generator) for m in modalities
        }
        loss = nn.functional.cross_entropy(model(inputs, mask).logits, target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses


def save_and_reload(model: nn.Module, fresh: nn.Module, path: Path) -> nn.Module:
    """``fresh`` with ``model``'s weights after a round trip through a safetensors file."""
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    fresh.load_state_dict(load_file(str(path)), strict=True)
    return fresh


def _small_encoder(modality: str, out_dim: int) -> nn.Module:
    shape = INPUT_SHAPES[modality]
    if len(shape) == 3:
        return ConvEncoder(shape[0], out_dim, widths=(4, 8))
    return MLPEncoder(shape[0] * shape[1], out_dim, hidden=(32,))


def build_model(family: str, kind: str, modalities: Sequence[str] = TWO_MODALITIES) -> nn.Module:
    """A small model of fusion ``kind`` over ``modalities`` at ``INPUT_SHAPES``."""
    shapes = {m: INPUT_SHAPES[m] for m in modalities}
    if family == "late":
        encoders = {m: _small_encoder(m, 12) for m in modalities}
        fusion = build_late_fusion(kind, {m: 12 for m in modalities}, hidden_dim=16, dropout=0.1)
        return MultimodalModel(encoders, fusion, nn.Linear(fusion.out_dim, NUM_CLASSES))
    if (family, kind) == ("early", "feature"):
        extractors = {m: _small_encoder(m, 12) for m in modalities}
        return FeatureEarlyFusionModel(extractors, NUM_CLASSES, hidden_dim=32, dropout=0.1)
    if (family, kind) == ("early", "token"):
        return build_token_early_fusion(shapes, NUM_CLASSES, dim=16, depth=2, heads=2, dropout=0.0)
    if (family, kind) == ("mid", "where_to_fuse"):
        return build_where_to_fuse(
            shapes,
            NUM_CLASSES,
            primary="image",
            dim=16,
            num_layers=2,
            heads=2,
            fusion_layer=1,
            pooled_tokens=2,
            dropout=0.0,
        )
    raise ValueError(f"Expected (family, kind) in {ALL_FUSIONS}, got {(family, kind)}.")
