"""Frozen encoder tokens computed once per split, for the where-to-fuse model.

"Where to fuse" (``../shared/papers/002_f1eed76e6f5c3665.txt``, section 2.2) caches its
frozen ViT's image tokens ("running inference with ViT separately and storing them in a
database") so training does not pay for the encoder. Here a modality whose tokens come from
a frozen encoder (``encoder_tokens`` + ``model.freeze.<m>``) gets its feature-map tokens
computed once per split when ``training.cache_frozen_features`` is on; the model then reads
them instead of the raw inputs. A frozen encoder runs in eval mode and uses no random
numbers, so the cached run computes what the uncached one does, up to summation order.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from fusebench.data.loader import as_compute
from fusebench.engine.datasets import DataSplits, Split
from fusebench.models.contract import as_fusion_model
from fusebench.models.encoder_tokens import EncoderTokenizer
from fusebench.models.midfusion import WhereToFuseModel
from fusebench.models.midfusion_cost import FusionCost
from fusebench.models.multimodal import ModelOutput


def _encoder_tokenizers(model: nn.Module) -> dict[str, EncoderTokenizer]:
    """A where-to-fuse model's encoder tokenisers (none for any other model)."""
    if not isinstance(model, WhereToFuseModel):
        return {}
    return {m: t for m, t in model.tokenizers.items() if isinstance(t, EncoderTokenizer)}


def frozen_token_modalities(model: nn.Module) -> list[str]:
    """Modalities whose tokeniser is an ``EncoderTokenizer`` over a frozen encoder."""
    return sorted(m for m, t in _encoder_tokenizers(model).items() if t.frozen)


@contextmanager
def _precomputed(model: nn.Module, modalities: Sequence[str]) -> Iterator[None]:
    tokenizers = _encoder_tokenizers(model)
    for m in modalities:
        tokenizers[m].precomputed = True
    try:
        yield
    finally:
        for m in modalities:
            tokenizers[m].precomputed = False


class CachedTokenModel(nn.Module):
    """Wraps a where-to-fuse model; the cached modalities' "inputs" are their encoder tokens ``[N, T, C]``."""

    reruns_per_pattern = True

    def __init__(self, inner: WhereToFuseModel, cached: Sequence[str]) -> None:
        super().__init__()
        self.inner = inner
        self.cached = tuple(cached)
        self.modalities: tuple[str, ...] = inner.modalities

    def encoder_modules(self) -> None:
        """None: the frozen encoders ran once, before training; their tokens are the inputs now."""
        return None

    def embedding_dims(self) -> dict[str, int]:
        return as_fusion_model(self.inner).embedding_dims()

    def cost(self) -> FusionCost:
        """The inner model's cost (``WhereToFuseModel.cost``), for model.json."""
        return self.inner.cost()

    def forward(
        self, inputs: Mapping[str, Tensor], mask: Tensor, lengths: Mapping[str, Tensor] | None = None
    ) -> ModelOutput:
        with _precomputed(self.inner, self.cached):
            output: ModelOutput = self.inner(inputs, mask, lengths)
        return output


@torch.no_grad()
def _encode(model: nn.Module, split: Split, modalities: Sequence[str], batch_size: int) -> Split:
    inputs = dict(split.inputs)
    tokenizers = _encoder_tokenizers(model)
    for m in modalities:
        tokenizer = tokenizers[m]
        tokenizer.eval()  # the frozen encoder is in eval mode anyway; the projection is not used here
        x = split.inputs[m]
        inputs[m] = (
            torch.cat(
                [
                    tokenizer.features(as_compute(x[start : start + batch_size]))
                    for start in range(0, len(x), batch_size)
                ]
            )
            if len(x)
            else x
        )
    return Split(inputs, split.target, split.lengths)


def cache_tokens(model: nn.Module, data: DataSplits, batch_size: int) -> tuple[CachedTokenModel, DataSplits]:
    """The wrapped model and the splits with each frozen encoder modality's tokens in place of its inputs."""
    modalities = frozen_token_modalities(model)
    if not isinstance(model, WhereToFuseModel) or not modalities:
        raise ValueError(f"Expected a where-to-fuse model with frozen `encoder_tokens`, got {type(model).__name__}.")
    splits = {
        name: _encode(model, data.split(name), modalities, batch_size) for name in ("train", "validation", "test")
    }
    cached = DataSplits(splits["train"], splits["validation"], splits["test"], data.modalities, data.task, data.info)
    return CachedTokenModel(model, modalities), cached
