"""Frozen-feature caching: when every encoder is frozen, encode each split once.

Fusion training epochs then cost only the fusion and the head (the lightweight
early-fusion regime of "Early Fusion with Contrastive Learning"). Frozen encoders run in
eval mode and consume no random numbers, so training on cached embeddings gives the same
results as running the encoders every step, up to floating-point summation order.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from fusebench.data.loader import TensorLoader
from fusebench.engine.datasets import DataSplits, Split
from fusebench.models.contract import EncodeFuseModel, as_fusion_model
from fusebench.models.multimodal import ModelOutput


def can_cache(model: nn.Module, frozen: list[str]) -> bool:
    """True when the model splits into ``encode``/``fuse`` and every one of its encoders is frozen."""
    encoders = as_fusion_model(model).encoder_modules()
    if encoders is None or not isinstance(model, EncodeFuseModel):
        return False
    return set(encoders) <= set(frozen)


class CachedFeatureModel(nn.Module):
    """Wraps a model whose encoders are frozen; its "inputs" are the cached embeddings.

    Evaluation fuses once per pattern on the cached embeddings, which is valid even for
    feature early fusion: with the encoders frozen, a pattern only changes what ``fuse``
    replaces.
    """

    reruns_per_pattern = False

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        if not isinstance(inner, EncodeFuseModel):
            raise TypeError(f"Expected a model with `encode` and `fuse` to wrap, got `{type(inner).__name__}`.")
        self.inner = inner
        self.modalities = tuple(inner.modalities)

    def encoder_modules(self) -> None:
        """None: the encoders ran once, before training; the wrapper has nothing to encode with."""
        return None

    def embedding_dims(self) -> dict[str, int]:
        return self.inner.embedding_dims()

    def encode(
        self, inputs: Mapping[str, Tensor], mask: Tensor | None = None, lengths: Mapping[str, Tensor] | None = None
    ) -> dict[str, Tensor]:
        return dict(inputs)

    def fuse(self, embeddings: Mapping[str, Tensor], mask: Tensor) -> Tensor:
        return self.inner.fuse(embeddings, mask)

    def forward(
        self, inputs: Mapping[str, Tensor], mask: Tensor, lengths: Mapping[str, Tensor] | None = None
    ) -> ModelOutput:
        return ModelOutput(self.fuse(inputs, mask), dict(inputs))


def unwrap(model: nn.Module) -> nn.Module:
    """The model itself, or the model inside a frozen-feature or frozen-token cache wrapper."""
    from fusebench.engine.token_cache import CachedTokenModel

    return model.inner if isinstance(model, CachedFeatureModel | CachedTokenModel) else model


def encode_split(model: nn.Module, split: Split, batch_size: int, device: str = "cpu") -> Split:
    """``split`` with each modality's input replaced by its frozen-encoder embedding ``[N, D_m]``.

    One pass over the split in inference mode (no autograd records at all), the encoders in
    eval mode, batches cut by ``TensorLoader`` (float16 storage computed at float32) and run
    on ``device``; the embeddings come back to the CPU.
    """
    encoders = as_fusion_model(model).encoder_modules()
    if encoders is None or not isinstance(model, EncodeFuseModel):
        raise ValueError(f"Expected a model with per-modality encoders to cache, got {type(model).__name__}.")
    was_training = [(m, e.training) for m, e in encoders.items()]
    encoders.eval()
    chunks: dict[str, list[Tensor]] = {m: [] for m in split.inputs}
    loader = TensorLoader(split.inputs, split.target, batch_size, lengths=split.lengths)
    try:
        with torch.inference_mode():
            for batch in loader:
                batch = batch if device == "cpu" else batch.to(device)
                for modality, z in model.encode(batch.inputs, lengths=batch.lengths).items():
                    chunks[modality].append(z if device == "cpu" else z.cpu())
    finally:
        for modality, training in was_training:
            encoders[modality].train(training)
    # joined outside inference mode: ordinary tensors, which the fusion's backward may save
    return Split({m: torch.cat(parts) for m, parts in chunks.items()}, split.target)


def cache_features(
    model: nn.Module, data: DataSplits, batch_size: int, device: str = "cpu"
) -> tuple[CachedFeatureModel, DataSplits]:
    """The wrapped model and the three splits as embeddings, each split encoded once."""
    model.to(device)
    cached = DataSplits(
        train=encode_split(model, data.train, batch_size, device),
        validation=encode_split(model, data.validation, batch_size, device),
        test=encode_split(model, data.test, batch_size, device),
        modalities=data.modalities,
        task=data.task,
        info=data.info,
    )
    model.to("cpu")
    return CachedFeatureModel(model), cached
