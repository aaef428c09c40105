"""The method-specific ``params`` of ``model.fusion``: one strict pydantic model per fusion method.

Each ``params`` model holds the documented defaults of the builder it feeds
(``fusebench.models.fusion`` for late fusions, ``fusebench.models.registry`` for early and
mid fusion); a test checks that the fields and the builders' keyword arguments stay the
same. :mod:`fusebench.models.fusion_specs` pairs each with its ``type``/``method`` in the
options union; the params are kept apart because they mirror the builders, while the
union mirrors the config. Plain pydantic models; no files are read.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PositiveInt, model_validator

from fusebench.models.early import FeatureMissing, TokenMissing
from fusebench.models.midfusion import Injection
from fusebench.models.tokens import PoolKind, SpectrogramMode

TokenizerKind = Literal["image", "spectrogram", "sequence"]


def _square(value: Any) -> Any:
    """``4`` -> ``[4, 4]``: one int is a square patch."""
    return [value, value] if isinstance(value, int) and not isinstance(value, bool) else value


Patch = Annotated[list[PositiveInt], Field(min_length=2, max_length=2), BeforeValidator(_square)]


class StrictModel(BaseModel):
    """Options that reject unknown keys and validate every assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class NoParams(StrictModel):
    """A fusion without method-specific settings (``params`` must be empty)."""


class AttentionParams(StrictModel):
    """``attention`` late fusion: scores from a learned context vector, softmax over the present modalities."""

    attention_dim: PositiveInt | None = Field(default=None, description="width of the scoring layer; null: hidden_dim")


class TensorParams(StrictModel):
    """``tensor`` late fusion (TFN): the outer product of the embeddings, each padded with a 1."""

    tensor_dim: PositiveInt | None = Field(
        default=16, description="projection width before the outer product; null: none"
    )


class LowRankParams(StrictModel):
    """``low_rank`` late fusion (LMF): TFN's weight tensor factorised into ``rank`` modality factors."""

    rank: PositiveInt = Field(default=4, description="rank r of the factorised TFN weight tensor")


class FeatureParams(StrictModel):
    """``build_feature_early_fusion``: the projector design of "Early Fusion with Contrastive Learning"."""

    missing: FeatureMissing = Field(default="zero", description="absent features: zero or a learned vector")
    projectors: list[str] = Field(default_factory=list, description="modalities enhanced by the residual projector")
    projector_dim: PositiveInt | None = Field(default=None, description="projector width; null: the modality's own")
    projector_dropout: float = Field(default=0.1, ge=0.0, lt=1.0, description="dropout inside the projectors")


class _TokenizerParams(StrictModel):
    """How token models cut each modality into ``dim``-wide tokens (``registry.build_tokenizer``)."""

    dim: PositiveInt = Field(default=64, description="token width")
    heads: PositiveInt = Field(default=4, description="attention heads (must divide `dim`)")
    ff_mult: PositiveInt = Field(default=2, description="feed-forward width as a multiple of `dim`")
    dropout: float = Field(default=0.1, ge=0.0, lt=1.0, description="dropout inside the transformer blocks")
    tokenizer_kinds: dict[str, TokenizerKind] | None = Field(
        default=None, description="modality -> tokeniser; null: chosen from the sample shape"
    )
    image_patch: Patch = Field(default_factory=lambda: [4, 4], description="image patch height and width")
    spectrogram_mode: SpectrogramMode = Field(default="frames", description="one token per frame, or patches")
    spectrogram_patch: Patch = Field(default_factory=lambda: [8, 8], description="patch size in `patches` mode")

    @model_validator(mode="after")
    def _heads_divide_dim(self) -> _TokenizerParams:
        if self.dim % self.heads:
            raise ValueError(f"`heads` ({self.heads}) must divide `dim` ({self.dim})")
        return self


class TokenParams(_TokenizerParams):
    """``build_token_early_fusion``: one transformer over every modality's tokens."""

    depth: PositiveInt = Field(default=2, description="transformer blocks")
    missing: TokenMissing = Field(default="mask", description="absent tokens: masked out, zero input, or learned")


class WhereToFuseParams(_TokenizerParams):
    """``build_where_to_fuse`` ("Where to fuse", ``../shared/papers/002_f1eed76e6f5c3665.txt``, section 2.2).

    Where each modality joins the stream is given by exactly one of ``primary`` (with
    ``fusion_layer``: ``primary`` starts the stream, every other modality joins at
    ``fusion_layer``) and ``fusion_spec`` (modality -> layer, the paper's ``fusion_spec``).
    """

    primary: str | None = Field(
        default=None,
        description="the modality that starts the stream (with "
        "`fusion_layer`); null: `fusion_spec` says where each modality joins",
    )
    num_layers: PositiveInt = Field(default=4, description="blocks of the stream (the encoder)")
    fusion_layer: Annotated[int, Field(ge=0)] | None = Field(
        default=None,
        description="with `primary`: the layer the others join at, 0 = early .. num_layers = late (null: 2)",
    )
    fusion_spec: dict[str, Annotated[int, Field(ge=0)]] | None = Field(
        default=None, description="modality -> the layer it joins at (002 Sec. 2.2), instead of `primary`"
    )
    pool_kind: PoolKind = Field(
        default="mean", description="pooling of the joining modalities' tokens (002 Sec. 1.3.3)"
    )
    pooled_tokens: PositiveInt | dict[str, PositiveInt] | None = Field(
        default=1,
        description="tokens each modality joining after layer 0 is pooled to; a mapping: per modality "
        "(the paper's pooled_modalities, unlisted ones unpooled); null: no pooling",
    )
    injection: Injection = Field(
        default="direct",
        description="direct: the tokens join as tokenised (the paper); "
        "side_blocks: fusebench's variant, a joining modality first runs its own blocks",
    )
    decoder_layers: PositiveInt = Field(default=1, description="decoder blocks reading the stream (002 Sec. 3.2)")
    encoder_tokens: list[str] = Field(
        default_factory=list,
        description="modalities whose tokens are the feature map of `model.encoders.<m>` "
        "(pre-trainable, freezable, cached once when frozen) instead of a tokeniser",
    )

    @model_validator(mode="after")
    def _one_placement(self) -> WhereToFuseParams:
        if (self.primary is None) == (self.fusion_spec is None):
            raise ValueError(
                f"set exactly one of `primary` (with `fusion_layer`) and `fusion_spec`, got "
                f"primary={self.primary!r}, fusion_spec={self.fusion_spec!r}"
            )
        if self.fusion_spec is not None and self.fusion_layer is not None:
            raise ValueError(
                f"`fusion_layer` ({self.fusion_layer}) goes with `primary`; with `fusion_spec` each "
                "modality's layer is in the spec"
            )
        layers = [self.fusion_layer] if self.fusion_layer is not None else list((self.fusion_spec or {}).values())
        if any(k > self.num_layers for k in layers):
            raise ValueError(f"fusion layers must be in 0..num_layers (0..{self.num_layers}), got {layers}")
        return self
