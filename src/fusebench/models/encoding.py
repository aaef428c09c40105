"""Running per-modality encoders: only on present rows, with sequence lengths where a modality has them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from fusebench.data.loader import as_compute, compute_dtype


@runtime_checkable
class Encoder(Protocol):
    """One modality's encoder: ``[B, ...] -> [B, out_dim]``."""

    out_dim: int

    def __call__(self, x: Tensor) -> Tensor: ...


@runtime_checkable
class SequenceEncoder(Protocol):
    """An encoder of padded variable-length sequences ``[B, T, F]`` that reads only the first ``lengths[b]`` steps."""

    out_dim: int

    def __call__(self, x: Tensor, lengths: Tensor | None = None) -> Tensor: ...


def encoder_width(encoder: nn.Module, modality: str) -> int:
    """The embedding width ``out_dim`` of ``modality``'s encoder, checked once where a model is built.

    >>> encoder_width(nn.Linear(3, 2), "audio")
    Traceback (most recent call last):
    ...
    ValueError: Expected the `audio` encoder to follow the Encoder protocol (an int `out_dim`), got `Linear`.
    """
    if not isinstance(encoder, Encoder) or not isinstance(encoder.out_dim, int):
        raise ValueError(
            f"Expected the `{modality}` encoder to follow the Encoder protocol (an int `out_dim`), "
            f"got `{type(encoder).__name__}`."
        )
    return encoder.out_dim


def run_encoder(encoder: nn.Module, x: Tensor, lengths: Tensor | None) -> Tensor:
    """``encoder(x)``, or ``encoder(x, lengths)`` for a modality with sequence lengths.

    Inputs stored at float16 (memory-mapped caches) are computed at float32 here too, for callers
    that pass a split's tensors straight to a model instead of batches from ``TensorLoader``.
    """
    x = as_compute(x)
    out: Tensor = encoder(x) if lengths is None else encoder(x, lengths)
    return out


def encode_present(
    encoders: Mapping[str, nn.Module] | nn.ModuleDict,
    modalities: Sequence[str],
    inputs: Mapping[str, Tensor],
    mask: Tensor | None = None,
    lengths: Mapping[str, Tensor] | None = None,
) -> dict[str, Tensor]:
    """Run every encoder once: modality -> ``[B, D_m]``.

    With ``mask`` (training under missingness) an encoder sees only the rows where its
    modality is present, so absent inputs cannot leak into BatchNorm batch statistics;
    absent rows hold zeros until a missing strategy replaces them.
    """
    lengths = lengths or {}
    if mask is None:
        return {m: run_encoder(encoders[m], inputs[m], lengths.get(m)) for m in modalities}
    embeddings: dict[str, Tensor] = {}
    for j, m in enumerate(modalities):
        rows, length = mask[:, j], lengths.get(m)
        if bool(rows.all()):
            embeddings[m] = run_encoder(encoders[m], inputs[m], length)
            continue
        z = inputs[m].new_zeros(len(rows), encoder_width(encoders[m], m), dtype=_float_dtype(inputs[m]))  # [B, D_m]
        if bool(rows.any()):
            present = run_encoder(encoders[m], inputs[m][rows], None if length is None else length[rows])  # [P, D_m]
            z = z.to(present.dtype).index_put((rows,), present)
        embeddings[m] = z
    return embeddings


def _float_dtype(x: Tensor) -> torch.dtype:
    """Embeddings are floating point even when the input is not (token ids), and float32 for float16 storage."""
    return compute_dtype(x.dtype) if x.is_floating_point() else torch.get_default_dtype()
