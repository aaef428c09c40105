"""``model.fusion`` as typed options: one pydantic model per fusion type and method.

The run config's ``model.fusion`` is the discriminated union of the models below, keyed by
``type`` and ``method`` together (``late/concat`` when both are omitted), so the
method-specific ``params`` are validated as strictly as every other section: a misspelt
key gets the config's did-you-mean answer and a wrong type or range is named at
validation time, before data is loaded or a study node runs. The ``params`` models are in
:mod:`fusebench.models.fusion_params`.

Like ``encoder_specs``, this module holds plain pydantic models and reads no files.

>>> options = fusion_options_adapter().validate_python({"method": "low_rank", "params": {"rank": 8}})
>>> type(options).__name__, options.params.rank, options.hidden_dim
('LowRankFusionOptions', 8, 128)
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, Discriminator, Field, PositiveInt, Tag, TypeAdapter, model_validator

from fusebench.models.fusion_params import (
    AttentionParams,
    FeatureParams,
    LowRankParams,
    NoParams,
    StrictModel,
    TensorParams,
    TokenParams,
    WhereToFuseParams,
)

DEFAULT_TYPE, DEFAULT_METHOD = "late", "concat"


class FusionOptions(StrictModel):
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
