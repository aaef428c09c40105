"""The multimodal model contract: encode each modality once, then fuse under a presence mask."""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from torch import Tensor, nn

from fusebench.models.encoding import encode_present, encoder_width
from fusebench.models.fusion import LateFusion
from fusebench.models.missing import MissingStrategy, ZeroEmbedding


class ModelOutput(NamedTuple):
    """What every multimodal model returns.

    Attributes:
        logits: ``[B, C]`` task outputs.
        embeddings: modality -> ``[B, D_m]`` encoder outputs *before* missing-modality
            replacement (auxiliary losses and distillation read these).
    """

    logits: Tensor
    embeddings: dict[str, Tensor]


class MultimodalModel(nn.Module):
    """Late-fusion model: ``encoders`` -> missing strategy -> ``fusion`` -> ``head``.

    Because encoders never see the mask, evaluating every modality pattern needs one
    ``encode`` per batch and one cheap ``fuse`` per pattern.

    Args:
        encoders: modality -> encoder with an ``out_dim`` attribute.
        fusion: a late fusion built for the encoders' output dimensions.
        head: maps ``fusion.out_dim`` to the task outputs.
        missing: replaces absent embeddings before fusion (zero vector by default).
    """

    reruns_per_pattern = False

    def __init__(
        self,
        encoders: Mapping[str, nn.Module],
        fusion: LateFusion,
        head: nn.Module,
        missing: MissingStrategy | None = None,
    ) -> None:
        super().__init__()
        self.modalities = tuple(sorted(encoders))
        if tuple(fusion.modalities) != self.modalities:
            raise ValueError(
                f"Expected the fusion to be built for modalities {self.modalities}, got {fusion.modalities}."
            )
        self.encoders = nn.ModuleDict({m: encoders[m] for m in self.modalities})
        self.fusion = fusion
        self.head = head
        dims = {m: encoder_width(encoders[m], m) for m in self.modalities}
        self._embedding_dims = dims
        self.missing = missing if missing is not None else ZeroEmbedding(dims)

    def encoder_modules(self) -> nn.ModuleDict:
        return self.encoders

    def embedding_dims(self) -> dict[str, int]:
        return dict(self._embedding_dims)

    def encode(
        self, inputs: Mapping[str, Tensor], mask: Tensor | None = None, lengths: Mapping[str, Tensor] | None = None
    ) -> dict[str, Tensor]:
        """Run every encoder once: modality -> ``[B, D_m]`` (see :func:`~fusebench.models.encoding.encode_present`)."""
        return encode_present(self.encoders, self.modalities, inputs, mask, lengths)

    def fuse(self, embeddings: Mapping[str, Tensor], mask: Tensor) -> Tensor:
        """Replace absent embeddings, fuse and classify: ``[B, C]`` logits."""
        replaced = self.missing(embeddings, mask)
        out: Tensor = self.head(self.fusion(replaced, mask))
        return out

    def forward(
        self, inputs: Mapping[str, Tensor], mask: Tensor, lengths: Mapping[str, Tensor] | None = None
    ) -> ModelOutput:
        embeddings = self.encode(inputs, mask, lengths)
        return ModelOutput(self.fuse(embeddings, mask), embeddings)
