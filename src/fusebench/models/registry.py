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
from fusebench.models.fusion import LATE_FUSIONS
from fusebench.models.midfusion import WhereToFuseModel
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
        return ImagePatchTokenizer(tuple(shape[1:]), image_patch, dim, in_channels=shape[0])
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
    return FeatureEarlyFusionModel(extractors, num_classes, hidden_dim, dropout, missing, list(projectors),
                                   projector_dim, projector_dropout)


def build_token_early_fusion(
    input_shapes: Mapping[str, Sequence[int]],
    num_classes: int,
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
    primary: str,
    dim: int = 64,
    num_layers: int = 4,
    heads: int = 4,
    fusion_layer: int = 2,
    pool_kind: PoolKind = "mean",
    pooled_tokens: int = 1,
    ff_mult: int = 2,
    dropout: float = 0.1,
    tokenizer_kinds: Mapping[str, TokenizerKind] | None = None,
    image_patch: int | Sequence[int] = (4, 4),
    spectrogram_mode: SpectrogramMode = "frames",
    spectrogram_patch: int | Sequence[int] = (8, 8),
) -> WhereToFuseModel:
    """``WhereToFuseModel`` with tokenisers chosen from ``input_shapes``."""
    tokenizers = build_tokenizers(input_shapes, dim, tokenizer_kinds, image_patch, spectrogram_mode, spectrogram_patch)
    return WhereToFuseModel(
        primary,
        tokenizers,
        num_classes,
        dim,
        num_layers,
        heads,
        fusion_layer,
        pool_kind,
        pooled_tokens,
        ff_mult,
        dropout,
    )
