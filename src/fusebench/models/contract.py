"""The model contract every fusebench model keeps, as protocols the engine is typed against.

The engine (training, all-pattern evaluation, strategies, probes, feature caching) talks to
a model only through these members, so it never probes for attributes:

- :class:`FusionModel` is every model: its sorted ``modalities`` (the mask columns),
  ``forward(inputs, mask, lengths) -> ModelOutput``, whether evaluating each modality
  pattern needs a full forward pass (``reruns_per_pattern``), its per-modality encoders
  where it has them (``encoder_modules``: the late-fusion encoders, the feature
  early-fusion extractors; ``None`` for token models, which tokenise inside the fusion)
  and the width of each ``ModelOutput.embeddings[m]`` (``embedding_dims``).
- :class:`EncodeFuseModel` is a model whose forward pass splits into ``encode`` (each
  encoder once, independent of the mask) and ``fuse(embeddings, mask)``: late fusion, the
  pre-training model and feature early fusion. Token and where-to-fuse models cannot
  split (their modalities meet inside one transformer), so they only keep
  :class:`FusionModel`.

Both are ``runtime_checkable`` so a third-party model is checked once, where it enters
(``isinstance(model, EncodeFuseModel)``), with an error that names what is missing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Protocol, runtime_checkable

from torch import Tensor, nn

from fusebench.models.multimodal import ModelOutput


@runtime_checkable
class FusionModel(Protocol):
    """Any fusebench model (an ``nn.Module``): inputs and presence mask in, :class:`ModelOutput` out."""

    modalities: tuple[str, ...]
    reruns_per_pattern: bool
    training: bool

    def __call__(
        self, inputs: Mapping[str, Tensor], mask: Tensor, lengths: Mapping[str, Tensor] | None = None
    ) -> ModelOutput: ...

    def encoder_modules(self) -> nn.ModuleDict | None:
        """modality -> its encoder (trained, frozen, loaded by name), or None where there is none."""
        ...

    def embedding_dims(self) -> dict[str, int]:
        """modality -> width of ``ModelOutput.embeddings[modality]``."""
        ...

    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]: ...

    def named_children(self) -> Iterator[tuple[str, nn.Module]]: ...


@runtime_checkable
class EncodeFuseModel(FusionModel, Protocol):
    """A :class:`FusionModel` whose forward pass is ``fuse(encode(inputs), mask)``."""

    def encode(
        self, inputs: Mapping[str, Tensor], mask: Tensor | None = None, lengths: Mapping[str, Tensor] | None = None
    ) -> dict[str, Tensor]:
        """modality -> ``[B, D_m]``; with ``mask``, absent rows are not computed (zeros)."""
        ...

    def fuse(self, embeddings: Mapping[str, Tensor], mask: Tensor) -> Tensor:
        """``[B, C]`` logits of ``embeddings`` under the presence ``mask``."""
        ...


def as_fusion_model(model: nn.Module) -> FusionModel:
    """``model`` typed as the contract, or a TypeError naming what a fusebench model must have.

    >>> as_fusion_model(nn.Linear(2, 2))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    TypeError: Expected a fusebench model (`modalities`, ...), got `Linear`.
    """
    if not isinstance(model, FusionModel):
        raise TypeError(
            "Expected a fusebench model (`modalities`, `reruns_per_pattern`, `encoder_modules()`, `embedding_dims()`, "
            f"forward -> ModelOutput; see fusebench.models.contract), got `{type(model).__name__}`."
        )
    return model
