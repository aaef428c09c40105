"""Plain builders for every fusion family, fed by the engine from the validated config.

Late fusions are built with ``fusebench.models.fusion.build_late_fusion`` and wrapped in a
``MultimodalModel``; the builders here make the early and mid fusion models. The token and
where-to-fuse models tokenise raw inputs themselves; the feature early-fusion model takes
the run's encoders. Nothing here reads configuration files.

Tokeniser choice from one sample's shape (no batch dimension), ``tokenizer_kinds`` overriding:

- ``[C, H, W]`` named ``"audio"``: ``SpectrogramTokenizer(n_mels=H, frames=W)``;
- any other ``[C, H, W]`` (``"image"`` included): ``ImagePatchTokenizer``;
- ``[T, F]``: ``SequenceTokenizer`` with ``T`` tokens (whatever the name: MOSI's audio
  features are ``[T, F]`` sequences, not spectrograms);
- ``[F]``: ``SequenceTokenizer`` with one token (a pre-extracted feature vector).

Only the exact name ``"audio"`` decides between the two 3-D readings; names are never
matched by substring.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, get_args

from torch import nn

from fusebench.models.early import (
    FeatureEarlyFusionModel,
    FeatureMissing,
    TokenEarlyFusionModel,
    TokenMissing,
)
from fusebench.models.encoder_tokens import EncoderTokenizer
from fusebench.models.fusion import LATE_FUSIONS
from fusebench.models.midfusion import Injection, WhereToFuseModel, check_fusion_spec
from fusebench.models.tokens import (
    ImagePatchTokenizer,
    PoolKind,
    SequenceTokenizer,
    SpectrogramMode,
    SpectrogramTokenizer,
)

FUSION_KINDS: dict[str, tuple[str, ...]] = {
    "late": LATE_FUSIONS,
    "early": ("feature", "token"),
    "mid": ("where_to_fuse",),
}
TokenizerKind = Literal["image", "spectrogram", "sequence"]


def infer_tokenizer_kind(modality: str, shape: Sequence[int]) -> TokenizerKind:
    """Which tokeniser fits one sample of ``shape`` (see the module docstring).

    >>> infer_tokenizer_kind("audio", (1, 40, 32)), infer_tokenizer_kind("audio", (50, 74))
    ('spectrogram', 'sequence')
    """
    if len(shape) == 3:
        return "spectrogram" if modality == "audio" else "image"
    if len(shape) in (1, 2):
        return "sequence"
    raise ValueError(
        f"Expected a per-sample shape of 1 to 3 dims for modality `{modality}` "
        f"([F], [T, F] or [C, H, W]), got {tuple(shape)}."
    )


def build_tokenizer(
    modality: str,
    shape: Sequence[int],
    dim: int = 64,
    *,
    kind: TokenizerKind | None = None,
    image_patch: int | Sequence[int] = (4, 4),
    spectrogram_mode: SpectrogramMode = "frames",
    spectrogram_patch: int | Sequence[int] = (8, 8),
) -> nn.Module:
    """The tokeniser for ``modality`` with per-sample ``shape``; ``kind=None`` infers it."""
    kind = kind or infer_tokenizer_kind(modality, shape)
    if kind not in get_args(TokenizerKind):
        raise ValueError(f"Expected tokenizer `kind` in {list(get_args(TokenizerKind))}, got `{kind}`.")
    if kind != "sequence" and len(shape) != 3:
        raise ValueError(f"Expected a [C, H, W] sample for a `{kind}` tokenizer on `{modality}`, got {tuple(shape)}.")
    if kind == "image":
        try:
            return ImagePatchTokenizer(tuple(shape[1:]), image_patch, dim, in_channels=shape[0])
        except ValueError as error:  # named by the option that set the patch, not the tokeniser's argument
            raise ValueError(f"`image_patch` {image_patch} does not fit `{modality}`: {error}") from None
    if kind == "spectrogram":
        if shape[0] != 1:
            raise ValueError(f"Expected a one-channel spectrogram for `{modality}`, got {tuple(shape)}.")
        return SpectrogramTokenizer(shape[1], shape[2], spectrogram_mode, dim, spectrogram_patch)
    if len(shape) not in (1, 2):
        raise ValueError(
            f"Expected a [T, F] or [F] sample for a sequence tokenizer on `{modality}`, got {tuple(shape)}."
        )
    return SequenceTokenizer(shape[-1], dim, length=shape[0] if len(shape) == 2 else 1)


def build_tokenizers(
    input_shapes: Mapping[str, Sequence[int]],
    dim: int = 64,
    tokenizer_kinds: Mapping[str, TokenizerKind] | None = None,
    image_patch: int | Sequence[int] = (4, 4),
    spectrogram_mode: SpectrogramMode = "frames",
    spectrogram_patch: int | Sequence[int] = (8, 8),
) -> dict[str, nn.Module]:
    """modality -> tokeniser, in sorted modality order."""
    kinds = dict(tokenizer_kinds or {})
    unknown = sorted(set(kinds) - set(input_shapes))
    if unknown:
        raise ValueError(f"Expected `tokenizer_kinds` keys among {sorted(input_shapes)}, got {unknown}.")
    return {
        m: build_tokenizer(
            m,
            input_shapes[m],
            dim,
            kind=kinds.get(m),
            image_patch=image_patch,
            spectrogram_mode=spectrogram_mode,
            spectrogram_patch=spectrogram_patch,
        )
        for m in sorted(input_shapes)
    }


def build_feature_early_fusion(
    extractors: Mapping[str, nn.Module],
    num_classes: int,
    hidden_dim: int = 256,
    dropout: float = 0.2,
    missing: FeatureMissing = "zero",
    projectors: Sequence[str] = (),
    projector_dim: int | None = None,
    projector_dropout: float = 0.1,
) -> FeatureEarlyFusionModel:
    """``FeatureEarlyFusionModel`` over the run's configured encoders.

    The extractors are built like late fusion's encoders (``encoder_specs.build_encoder_from`` from
    the encoder config), so pre-trained weights load into ``model.extractors[m]`` by
    modality name and freezing works the same way.

    Args:
        extractors: modality -> encoder with an ``out_dim``.
        num_classes: width of the logits.
        hidden_dim: width of the two classifier blocks.
        dropout: dropout after each classifier block.
        missing: ``"zero"`` or ``"learned"`` replacement of absent features.
        projectors: modalities enhanced by the paper's projector (``ResidualTanhProjector``).
        projector_dim: the projectors' output width (``None``: each modality's own width).
        projector_dropout: dropout inside the projectors.
    """
    if isinstance(projectors, str):
        raise ValueError(f"Expected `model.fusion.params.projectors` as a list of modalities, got `{projectors}`.")
    return FeatureEarlyFusionModel(
        extractors, num_classes, hidden_dim, dropout, missing, list(projectors), projector_dim, projector_dropout
    )


def build_token_early_fusion(
    input_shapes: Mapping[str, Sequence[int]],
    num_classes: int,
    *,
    dim: int = 64,
    depth: int = 2,
    heads: int = 4,
    ff_mult: int = 2,
    dropout: float = 0.1,
    missing: TokenMissing = "mask",
    tokenizer_kinds: Mapping[str, TokenizerKind] | None = None,
    image_patch: int | Sequence[int] = (4, 4),
    spectrogram_mode: SpectrogramMode = "frames",
    spectrogram_patch: int | Sequence[int] = (8, 8),
) -> TokenEarlyFusionModel:
    """``TokenEarlyFusionModel`` with tokenisers chosen from ``input_shapes``."""
    tokenizers = build_tokenizers(input_shapes, dim, tokenizer_kinds, image_patch, spectrogram_mode, spectrogram_patch)
    return TokenEarlyFusionModel(tokenizers, num_classes, dim, depth, heads, ff_mult, dropout, missing)


def build_where_to_fuse(
    input_shapes: Mapping[str, Sequence[int]],
    num_classes: int,
    *,
    primary: str | None = None,
    dim: int = 64,
    num_layers: int = 4,
    heads: int = 4,
    fusion_layer: int | None = None,
    pool_kind: PoolKind = "mean",
    pooled_tokens: int | Mapping[str, int] | None = 1,
    ff_mult: int = 2,
    dropout: float = 0.1,
    tokenizer_kinds: Mapping[str, TokenizerKind] | None = None,
    image_patch: int | Sequence[int] = (4, 4),
    spectrogram_mode: SpectrogramMode = "frames",
    spectrogram_patch: int | Sequence[int] = (8, 8),
    fusion_spec: Mapping[str, int] | None = None,
    injection: Injection = "direct",
    decoder_layers: int = 1,
    encoder_tokens: Sequence[str] = (),
    encoders: Mapping[str, nn.Module] | None = None,
) -> WhereToFuseModel:
    """``WhereToFuseModel`` (``../shared/papers/002_f1eed76e6f5c3665.txt``, section 2.2) from ``model.fusion.params``.

    Where each modality joins, one of:

    - ``primary`` + ``fusion_layer`` (default 2): ``primary`` starts the stream at layer 0 and
      every other modality joins at ``fusion_layer`` (0 = early, ``num_layers`` = late), the
      paper's experiments (question at layer 0, image at layer ``k``);
    - ``fusion_spec``: modality -> layer for any number of modalities and layers (the paper's
      ``fusion_spec``, keyed by modality because config keys are strings).

    Args:
        input_shapes: modality -> one sample's shape (set by fusebench from the data).
        num_classes: width of the logits (set by fusebench).
        primary: the modality that starts the stream (with ``fusion_layer``).
        dim: token width.
        num_layers: encoder blocks of the stream.
        heads: attention heads (must divide ``dim``).
        fusion_layer: the layer the other modalities join at (with ``primary``; default 2).
        pool_kind: ``mean``, ``max`` or ``attention`` pooling (002 section 1.3.3).
        pooled_tokens: an int pools every modality that joins after layer 0 (``primary`` mode: every
            other modality) to that many tokens; a mapping gives per-modality counts (the paper's
            ``pooled_modalities={"image": 16, "audio": 4}``), unlisted modalities unpooled; ``None``:
            no pooling.
        ff_mult: feed-forward width as a multiple of ``dim``.
        dropout: dropout inside the blocks.
        tokenizer_kinds: modality -> ``image`` / ``spectrogram`` / ``sequence`` tokeniser (default: from the shape).
        image_patch: patch size of image tokenisers.
        spectrogram_mode: ``frames`` (one token per frame) or ``patches``.
        spectrogram_patch: patch size with ``spectrogram_mode: patches``.
        fusion_spec: modality -> the layer it joins at (instead of ``primary``/``fusion_layer``).
        injection: ``direct`` (the paper: tokens join as tokenised) or ``side_blocks``
            (fusebench's variant: a joining modality first runs through its own blocks).
        decoder_layers: decoder blocks reading the stream (the decoder-size axis of section 3.2).
        encoder_tokens: modalities whose tokens are the feature map of the run's configured
            encoder (``model.encoders.<m>``: pre-trainable with ``model.pretrained``, frozen with
            ``model.freeze``, then cached once per split) instead of a tokeniser.
        encoders: modality -> built encoder of each ``encoder_tokens`` modality (set by fusebench).
    """
    modalities = sorted(input_shapes)
    if (primary is None) == (fusion_spec is None):
        raise ValueError(
            "Expected exactly one of `primary` (with `fusion_layer`) and `fusion_spec` in "
            f"`model.fusion.params`, got primary={primary!r}, fusion_spec={fusion_spec!r}."
        )
    if fusion_spec is None:
        if primary not in modalities:
            raise ValueError(f"Expected `primary` in {modalities}, got `{primary}`.")
        layer = 2 if fusion_layer is None else fusion_layer
        if not 0 <= layer <= num_layers:
            raise ValueError(
                f"Expected `fusion_layer` in 0..{num_layers} (0 = early, {num_layers} = late), got {layer}."
            )
        spec = {m: 0 if m == primary else layer for m in modalities}
    elif fusion_layer is not None:
        raise ValueError(
            f"`fusion_layer` ({fusion_layer}) goes with `primary`; with `fusion_spec` each modality's "
            "layer is in the spec."
        )
    else:
        spec = check_fusion_spec(fusion_spec, tuple(modalities), num_layers)
    if isinstance(pooled_tokens, int):  # every modality that joins the stream (primary mode: at layer 0 too)
        pooled = {m: pooled_tokens for m in modalities if (m != primary if primary is not None else spec[m] > 0)}
    else:
        pooled = dict(pooled_tokens or {})
    unknown = sorted(set(encoder_tokens) - set(modalities))
    if unknown:
        raise ValueError(f"Expected `encoder_tokens` among {modalities}, got {unknown}.")
    tokenizers = build_tokenizers(input_shapes, dim, tokenizer_kinds, image_patch, spectrogram_mode, spectrogram_patch)
    for m in encoder_tokens:
        if encoders is None or m not in encoders:
            raise ValueError(f"`encoder_tokens` names `{m}`, but no encoder was built for it (`model.encoders.{m}`).")
        tokenizers[m] = EncoderTokenizer(encoders[m], input_shapes[m], dim)
    return WhereToFuseModel(
        tokenizers,
        num_classes,
        spec,
        dim=dim,
        num_layers=num_layers,
        heads=heads,
        pool_kind=pool_kind,
        pooled_tokens=pooled,
        injection=injection,
        decoder_layers=decoder_layers,
        ff_mult=ff_mult,
        dropout=dropout,
    )
