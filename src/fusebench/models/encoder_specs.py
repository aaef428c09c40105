"""The encoder registry: each encoder kind's typed options and how to build it for an input shape.

``model.encoders.<modality>`` in a run config is the discriminated union of the registered
options models, keyed by ``kind`` (``cnn`` when omitted), so every encoder's own settings
are validated strictly and a misspelt one gets a did-you-mean answer. A new encoder kind
is one :func:`register_encoder` call (``models/`` modules never read config files; the
options models are plain pydantic models).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args

from pydantic import BaseModel, ConfigDict, Discriminator, Field, PositiveInt, Tag
from torch import nn

from fusebench.models.encoders import ConvEncoder, MLPEncoder, ResNetEncoder
from fusebench.models.sequence_encoders import RecurrentEncoder, TransformerSequenceEncoder

DEFAULT_ENCODER = "cnn"


class EncoderOptions(BaseModel):
    """What every encoder has: its kind and the width of the embedding it outputs."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    kind: str
    out_dim: int = Field(default=64, ge=1, description="embedding width")


class CNNOptions(EncoderOptions):
    kind: Literal["cnn"] = "cnn"
    widths: list[PositiveInt] = Field(default_factory=lambda: [32, 64], min_length=1, description="conv channels")


class ResNet18Options(EncoderOptions):
    kind: Literal["resnet18"] = "resnet18"
    base_width: PositiveInt = Field(default=64, description="channels of the first stage")


class ResNet34Options(EncoderOptions):
    kind: Literal["resnet34"] = "resnet34"
    base_width: PositiveInt = Field(default=64, description="channels of the first stage")


class MLPOptions(EncoderOptions):
    kind: Literal["mlp"] = "mlp"
    hidden: list[PositiveInt] = Field(default_factory=lambda: [128], description="hidden layer widths")


class _SequenceOptions(EncoderOptions):
    """What every sequence encoder has: an optional vocabulary for ``[T]`` token-id inputs."""

    vocab_size: PositiveInt | None = Field(default=None, description="read [T] token ids through an embedding table")


class _RecurrentOptions(_SequenceOptions):
    hidden: PositiveInt = Field(default=64, description="hidden size per direction")
    layers: PositiveInt = Field(default=1, description="stacked recurrent layers")
    bidirectional: bool = Field(default=False, description="also run backwards over the real steps")
    pool: Literal["last", "mean"] = Field(
        default="last", description="last real step's hidden state, or the mean of outputs over real steps"
    )
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0, description="dropout between stacked layers")
    embed_dim: PositiveInt = Field(default=64, description="token embedding width (with `vocab_size`)")


class GRUOptions(_RecurrentOptions):
    kind: Literal["gru"] = "gru"


class LSTMOptions(_RecurrentOptions):
    kind: Literal["lstm"] = "lstm"


class TransformerOptions(_SequenceOptions):
    kind: Literal["transformer"] = "transformer"
    dim: PositiveInt = Field(default=64, description="token width")
    layers: PositiveInt = Field(default=2, description="Transformer blocks")
    heads: PositiveInt = Field(default=4, description="attention heads (must divide `dim`)")
    ff_mult: PositiveInt = Field(default=2, description="feed-forward width as a multiple of `dim`")
    dropout: float = Field(default=0.1, ge=0.0, lt=1.0, description="dropout inside the blocks")


@dataclass(frozen=True)
class EncoderEntry:
    """A registered encoder kind.

    Attributes:
        kind: the value of ``model.encoders.<m>.kind``.
        options: its options model (``kind: Literal[kind]``).
        build: ``(options, per-sample input shape) -> nn.Module`` with an ``out_dim``.
        sequences: whether it reads padded variable-length sequences with their lengths
            (``forward(x, lengths)``); a variable-length modality needs such an encoder.
        summary: one line for the README and error messages.
        frozen_by_default: a general pre-trained encoder: frozen unless
            ``model.freeze.<modality>: false`` (the run config fills ``model.freeze``).
    """

    kind: str
    options: type[EncoderOptions]
    build: Callable[[Any, Sequence[int]], nn.Module]
    sequences: bool = False
    summary: str = ""
    frozen_by_default: bool = False


_ENCODERS: dict[str, EncoderEntry] = {}


def register_encoder(entry: EncoderEntry) -> EncoderEntry:
    annotation = entry.options.model_fields["kind"].annotation
    if get_args(annotation) != (entry.kind,):
        raise TypeError(
            f"Expected `{entry.options.__name__}.kind` annotated `Literal[{entry.kind!r}]`, got {annotation}."
        )
    if entry.kind in _ENCODERS and _ENCODERS[entry.kind] is not entry:
        raise ValueError(f"An encoder kind `{entry.kind}` is already registered.")
    _ENCODERS[entry.kind] = entry
    return entry


def encoder_kinds() -> list[str]:
    return list(_ENCODERS)


def sequence_kinds() -> list[str]:
    """Encoder kinds that read padded variable-length sequences with their lengths."""
    return [kind for kind, entry in _ENCODERS.items() if entry.sequences]


def get_encoder(kind: str) -> EncoderEntry:
    if kind not in _ENCODERS:
        raise ValueError(f"Expected encoder `kind` in {encoder_kinds()}, got `{kind}`.")
    return _ENCODERS[kind]


def _kind(value: Any) -> str:
    if isinstance(value, Mapping):
        return str(value.get("kind", DEFAULT_ENCODER))
    return str(getattr(value, "kind", DEFAULT_ENCODER))


def encoder_options_union() -> Any:
    """``model.encoders.<m>`` as the discriminated union of every registered kind (``cnn`` by default)."""
    members = tuple(Annotated[entry.options, Tag(kind)] for kind, entry in _ENCODERS.items())
    return Annotated[Union[members], Discriminator(_kind)]  # noqa: UP007 - a runtime-built union


def build_encoder_from(options: EncoderOptions, input_shape: Sequence[int]) -> nn.Module:
    """The encoder ``options`` describe, for one sample of ``input_shape`` (no batch dimension)."""
    return get_encoder(options.kind).build(options, tuple(input_shape))


def _channels(shape: Sequence[int], kind: str) -> int:
    if len(shape) != 3:
        raise ValueError(f"Expected [C, H, W] samples for a `{kind}` encoder, got per-sample shape {tuple(shape)}.")
    return int(shape[0])


def _sequence_shape(shape: Sequence[int], options: _SequenceOptions) -> tuple[int, int]:
    """``(steps, features per step)``: ``[T, F]`` sequences, ``[1, F, T]`` spectrograms read as T steps
    of F, or ``[T]`` token ids with a ``vocab_size`` (features then come from the embedding)."""
    if options.vocab_size is not None:
        if len(shape) != 1:
            raise ValueError(
                f"Expected [T] token ids for a `{options.kind}` encoder with `vocab_size`, got "
                f"per-sample shape {tuple(shape)}; unset `vocab_size` for feature sequences."
            )
        return int(shape[0]), 0
    if len(shape) == 3 and shape[0] == 1:
        return int(shape[2]), int(shape[1])
    if len(shape) == 2:
        return int(shape[0]), int(shape[1])
    raise ValueError(
        f"Expected [T, F] sequences (or [1, F, T] spectrograms, or [T] token ids with `vocab_size`) for a "
        f"`{options.kind}` encoder, got per-sample shape {tuple(shape)}."
    )


def _recurrent(cell: Literal["gru", "lstm"]) -> Callable[[Any, Sequence[int]], nn.Module]:
    def build(o: _RecurrentOptions, shape: Sequence[int]) -> nn.Module:
        return RecurrentEncoder(
            cell,
            _sequence_shape(shape, o)[1],
            o.out_dim,
            o.hidden,
            o.layers,
            bidirectional=o.bidirectional,
            pool=o.pool,
            dropout=o.dropout,
            vocab_size=o.vocab_size,
            embed_dim=o.embed_dim,
        )

    return build


def _transformer(o: TransformerOptions, shape: Sequence[int]) -> nn.Module:
    steps, features = _sequence_shape(shape, o)
    return TransformerSequenceEncoder(
        features, steps, o.out_dim, o.dim, o.layers, o.heads, o.ff_mult, o.dropout, vocab_size=o.vocab_size
    )


for _entry in (
    EncoderEntry(
        "cnn",
        CNNOptions,
        lambda o, s: ConvEncoder(_channels(s, "cnn"), o.out_dim, o.widths),
        summary="Conv-BN-ReLU-MaxPool blocks for [C, H, W] images and spectrograms",
    ),
    EncoderEntry(
        "resnet18",
        ResNet18Options,
        lambda o, s: ResNetEncoder("resnet18", _channels(s, "resnet18"), o.out_dim, o.base_width),
        summary="ResNet-18 with a small-input stem",
    ),
    EncoderEntry(
        "resnet34",
        ResNet34Options,
        lambda o, s: ResNetEncoder("resnet34", _channels(s, "resnet34"), o.out_dim, o.base_width),
        summary="ResNet-34 with a small-input stem",
    ),
    EncoderEntry(
        "mlp",
        MLPOptions,
        lambda o, s: MLPEncoder(math.prod(s), o.out_dim, o.hidden),
        summary="flatten + Linear-ReLU blocks for feature vectors",
    ),
    EncoderEntry(
        "gru",
        GRUOptions,
        _recurrent("gru"),
        sequences=True,
        summary="GRU over the real steps of [T, F] sequences (packed; last hidden state or mean)",
    ),
    EncoderEntry(
        "lstm",
        LSTMOptions,
        _recurrent("lstm"),
        sequences=True,
        summary="LSTM over the real steps of [T, F] sequences (packed; last hidden state or mean)",
    ),
    EncoderEntry(
        "transformer",
        TransformerOptions,
        _transformer,
        sequences=True,
        summary="Transformer over [T, F] sequences with a key-padding mask; mean over real steps",
    ),
):
    register_encoder(_entry)

# text and image encoders of raw media (token ids, UTF-8 text, RGB images), registered on import
import fusebench.models.encoder_specs_media  # noqa: E402,F401
