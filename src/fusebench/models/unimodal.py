"""One modality's encoder plus a linear head: the model that pre-training trains.

It speaks the same ``encode``/``fuse`` contract as ``MultimodalModel`` so the training
engine and all-pattern evaluation treat it like any late-fusion model with one modality.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor, nn

from fusebench.models.encoding import encoder_width, run_encoder
from fusebench.models.multimodal import ModelOutput


class UnimodalModel(nn.Module):
    """``encoder`` then one ``nn.Linear`` head: an ``EncodeFuseModel`` (``models.contract``) of one modality."""

    reruns_per_pattern = False

    def __init__(self, modality: str, encoder: nn.Module, num_classes: int) -> None:
        """``num_classes`` is the width of the head: the task's ``output_size``."""
        super().__init__()
        self.modality = modality
        self.modalities = (modality,)
        self.encoders = nn.ModuleDict({modality: encoder})
        self.width = encoder_width(encoder, modality)
        self.head = nn.Linear(self.width, num_classes)

    def encoder_modules(self) -> nn.ModuleDict:
        return self.encoders

    def embedding_dims(self) -> dict[str, int]:
        return {self.modality: self.width}

    def encode(
        self, inputs: Mapping[str, Tensor], mask: Tensor | None = None, lengths: Mapping[str, Tensor] | None = None
    ) -> dict[str, Tensor]:
        length = (lengths or {}).get(self.modality)
        return {self.modality: run_encoder(self.encoders[self.modality], inputs[self.modality], length)}

    def fuse(self, embeddings: Mapping[str, Tensor], mask: Tensor) -> Tensor:
        out: Tensor = self.head(embeddings[self.modality])
        return out

    def forward(
        self, inputs: Mapping[str, Tensor], mask: Tensor, lengths: Mapping[str, Tensor] | None = None
    ) -> ModelOutput:
        embeddings = self.encode(inputs, lengths=lengths)
        return ModelOutput(self.fuse(embeddings, mask), embeddings)
