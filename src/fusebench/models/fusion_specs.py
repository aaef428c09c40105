"""``model.fusion`` as typed options: one pydantic model per fusion type and method.

The run config's ``model.fusion`` is the discriminated union of the models below, keyed by
``type`` and ``method`` together (``late/concat`` when both are omitted), so the
method-specific ``params`` are validated as strictly as every other section: a misspelt
key gets the config's did-you-mean answer and a wrong type or range is named at
validation time, before data is loaded or a study node runs. Each ``params`` model holds
the documented defaults of the builder it feeds (``fusebench.models.fusion`` for late
fusions, ``fusebench.models.registry`` for early and mid fusion); a test checks that the
fields and the builders' keyword arguments stay the same.

Like ``encoder_specs``, this module holds plain pydantic models and reads no files.

>>> options = fusion_options_adapter().validate_python({"method": "low_rank", "params": {"rank": 8}})
>>> type(options).__name__, options.params.rank, options.hidden_dim
('LowRankFusionOptions', 8, 128)
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PositiveInt,
    Tag,
    TypeAdapter,
    model_validator,
)

from fusebench.models.early import FeatureMissing, TokenMissing
from fusebench.models.midfusion import Injection
from fusebench.models.tokens import PoolKind, SpectrogramMode

TokenizerKind = Literal["image", "spectrogram", "sequence"]


def _square(value: Any) -> Any:
    """``4`` -> ``[4, 4]``: one int is a square patch."""
    return [value, value] if isinstance(value, int) and not isinstance(value, bool) else value


Patch = Annotated[list[PositiveInt], Field(min_length=2, max_length=2), BeforeValidator(_square)]
DEFAULT_TYPE, DEFAULT_METHOD = "late", "concat"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class NoParams(_Strict):
    """A fusion without method-specific settings (``params`` must be empty)."""


class AttentionParams(_Strict):
    attention_dim: PositiveInt | None = Field(default=None, description="width of the scoring layer; null: hidden_dim")


class TensorParams(_Strict):
    tensor_dim: PositiveInt | None = Field(
        default=16, description="projection width before the outer product; null: none"
    )


class LowRankParams(_Strict):
    rank: PositiveInt = Field(default=4, description="rank r of the factorised TFN weight tensor")


class FeatureParams(_Strict):
    """``build_feature_early_fusion``: the projector design of "Early Fusion with Contrastive Learning"."""

    missing: FeatureMissing = Field(default="zero", description="absent features: zero or a learned vector")
    projectors: list[str] = Field(default_factory=list, description="modalities enhanced by the residual projector")
    projector_dim: PositiveInt | None = Field(default=None, description="projector width; null: the modality's own")
    projector_dropout: float = Field(default=0.1, ge=0.0, lt=1.0, description="dropout inside the projectors")


class _TokenizerParams(_Strict):
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


class FusionOptions(_Strict):
    """What every ``model.fusion`` has: its type and method, the fusion's width and dropout, its params."""

    type: str
    method: str
    hidden_dim: PositiveInt = Field(default=128, description="fusion output width (late, early/feature)")
    dropout: float = Field(default=0.2, ge=0.0, lt=1.0, description="dropout on the fused vector (late, early/feature)")
    params: BaseModel = Field(default_factory=NoParams, description="method-specific arguments")

    @property
    def tag(self) -> str:
        """``type/method``, the key of the union."""
        return f"{self.type}/{self.method}"


class _Late(FusionOptions):
    type: Literal["late"] = "late"


class ConcatFusionOptions(_Late):
    method: Literal["concat"] = "concat"
    params: NoParams = Field(default_factory=NoParams)


class SumFusionOptions(_Late):
    method: Literal["sum"] = "sum"
    params: NoParams = Field(default_factory=NoParams)


class MeanFusionOptions(_Late):
    method: Literal["mean"] = "mean"
    params: NoParams = Field(default_factory=NoParams)


class MaxFusionOptions(_Late):
    method: Literal["max"] = "max"
    params: NoParams = Field(default_factory=NoParams)


class GatedFusionOptions(_Late):
    method: Literal["gated"] = "gated"
    params: NoParams = Field(default_factory=NoParams)


class AttentionFusionOptions(_Late):
    method: Literal["attention"] = "attention"
    params: AttentionParams = Field(default_factory=AttentionParams)


class TensorFusionOptions(_Late):
    method: Literal["tensor"] = "tensor"
    params: TensorParams = Field(default_factory=TensorParams)


class LowRankFusionOptions(_Late):
    method: Literal["low_rank"] = "low_rank"
    params: LowRankParams = Field(default_factory=LowRankParams)


class FeatureFusionOptions(FusionOptions):
    type: Literal["early"] = "early"
    method: Literal["feature"] = "feature"
    params: FeatureParams = Field(default_factory=FeatureParams)


class _OwnWidth(FusionOptions):
    """Token models take their width and dropout from ``params``; the shared keys would be ignored."""

    @model_validator(mode="after")
    def _no_shared_width(self) -> _OwnWidth:
        defaults = FusionOptions.model_fields
        if (self.hidden_dim, self.dropout) != (defaults["hidden_dim"].default, defaults["dropout"].default):
            raise ValueError(
                f"`hidden_dim`/`dropout` do not apply to fusion `{self.tag}`; set its width and dropout "
                "with `params.dim` and `params.dropout`"
            )
        return self


class TokenFusionOptions(_OwnWidth):
    type: Literal["early"] = "early"
    method: Literal["token"] = "token"
    params: TokenParams = Field(default_factory=TokenParams)


class WhereToFuseFusionOptions(_OwnWidth):
    type: Literal["mid"] = "mid"
    method: Literal["where_to_fuse"] = "where_to_fuse"
    params: WhereToFuseParams


FUSION_OPTIONS: tuple[type[FusionOptions], ...] = (
    ConcatFusionOptions,
    SumFusionOptions,
    MeanFusionOptions,
    MaxFusionOptions,
    GatedFusionOptions,
    AttentionFusionOptions,
    TensorFusionOptions,
    LowRankFusionOptions,
    FeatureFusionOptions,
    TokenFusionOptions,
    WhereToFuseFusionOptions,
)


def _default(options: type[FusionOptions], field: str) -> str:
    return str(options.model_fields[field].default)


#: ``type/method`` -> its options model
BY_TAG: dict[str, type[FusionOptions]] = {f"{_default(o, 'type')}/{_default(o, 'method')}": o for o in FUSION_OPTIONS}


def fusion_methods() -> dict[str, list[str]]:
    """Fusion type -> its methods, in registration order.

    >>> fusion_methods()["early"]
    ['feature', 'token']
    """
    methods: dict[str, list[str]] = {}
    for tag in BY_TAG:
        kind, method = tag.split("/")
        methods.setdefault(kind, []).append(method)
    return methods


def fusion_tag(value: Any) -> str:
    """The union key of a raw ``model.fusion`` mapping or a validated options model."""
    if isinstance(value, FusionOptions):
        return value.tag
    if isinstance(value, Mapping):
        return f"{value.get('type', DEFAULT_TYPE)}/{value.get('method', DEFAULT_METHOD)}"
    return f"{DEFAULT_TYPE}/{DEFAULT_METHOD}"


def fusion_options_union() -> Any:
    """``model.fusion`` as the discriminated union of every fusion's options, keyed by ``type/method``."""
    members = tuple(Annotated[options, Tag(tag)] for tag, options in BY_TAG.items())
    return Annotated[Union[members], Discriminator(fusion_tag)]  # noqa: UP007 - a runtime-built union


@functools.cache
def fusion_options_adapter() -> TypeAdapter[FusionOptions]:
    """A validator of one ``model.fusion`` mapping on its own (tests, notebooks)."""
    return TypeAdapter(fusion_options_union())
