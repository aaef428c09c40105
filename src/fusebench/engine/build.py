"""Config -> modules. The only place where ``fusebench.config`` meets ``fusebench.models``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

from torch import nn

from fusebench.config import RunConfig
from fusebench.data.registry import ModalityInfo
from fusebench.errors import ConfigError, quoted
from fusebench.models import registry
from fusebench.models.contract import as_fusion_model
from fusebench.models.encoder_specs import build_encoder_from, get_encoder, sequence_kinds
from fusebench.models.encoding import encoder_width
from fusebench.models.fusion import build_late_fusion
from fusebench.models.fusion_specs import FeatureFusionOptions, TokenFusionOptions, WhereToFuseFusionOptions
from fusebench.models.missing import build_missing_strategy
from fusebench.models.multimodal import MultimodalModel
from fusebench.models.unimodal import UnimodalModel
from fusebench.models.weights import load_encoder

T = TypeVar("T")


def build_encoders(
    config: RunConfig,
    input_shapes: Mapping[str, Sequence[int]],
    modalities: Sequence[str],
    modality_info: Mapping[str, ModalityInfo] | None = None,
) -> dict[str, nn.Module]:
    """One encoder per modality; a variable-length modality must get a sequence encoder."""
    encoders: dict[str, nn.Module] = {}
    for modality in sorted(modalities):
        options = config.model.encoders[modality]
        info = (modality_info or {}).get(modality)
        if info is not None and info.variable_length and not get_encoder(options.kind).sequences:
            raise ConfigError(
                f"`model.encoders.{modality}.kind: {options.kind}` cannot read `{modality}`: its samples are "
                f"variable-length sequences (per-sample shape {list(info.shape)}, padded), and `{options.kind}` "
                f"would read the padding as data. Use a sequence encoder ({', '.join(sequence_kinds())}), or "
                "read the sequences at their full padded length where the dataset offers it (e.g. `data.lengths=full`)."
            )
        encoders[modality] = build_encoder_from(options, input_shapes[modality])
    return encoders


def build_model(
    config: RunConfig,
    input_shapes: Mapping[str, Sequence[int]],
    num_classes: int,
    modality_info: Mapping[str, ModalityInfo] | None = None,
) -> nn.Module:
    """The model a run config describes, with pre-trained encoder weights loaded and frozen as asked.

    ``num_classes`` is the width of the model's outputs: the task's ``output_size``
    (classes, labels, or 1 for regression). Only the run's modalities
    (:meth:`RunConfig.modalities`, which honours ``data.modalities``) get an encoder.
    ``modality_info`` (the dataset's :attr:`DatasetInfo.modalities`) lets the build refuse an
    encoder that cannot read a variable-length modality; without it nothing is checked.

    Raises:
        ConfigError: the config's encoders or fusion cannot be built for these inputs
            (e.g. an image patch that does not divide the image), or its pre-trained
            weights do not fit (names the modality and the layer).
    """
    if config.pretrain is not None:
        modality = config.pretrain.modality
        encoder = build_encoders(config, input_shapes, [modality], modality_info)[modality]
        return UnimodalModel(modality, encoder, num_classes)
    model = _build_fusion_model(config, input_shapes, num_classes, list(config.modalities()), modality_info)
    load_pretrained(model, config, input_shapes)
    return model


def _build_fusion_model(
    config: RunConfig,
    input_shapes: Mapping[str, Sequence[int]],
    num_classes: int,
    modalities: Sequence[str],
    modality_info: Mapping[str, ModalityInfo] | None,
) -> nn.Module:
    fusion = config.model.fusion
    if isinstance(fusion, FeatureFusionOptions):
        unknown = sorted(set(fusion.params.projectors) - set(modalities))
        if unknown:
            raise ConfigError(
                f"`model.fusion.params.projectors` names {quoted(unknown)}, which this run does not "
                f"have; its modalities (`model.encoders`) are {quoted(modalities)}."
            )
        encoders = build_encoders(config, input_shapes, modalities, modality_info)
        return registry.build_feature_early_fusion(
            encoders, num_classes, hidden_dim=fusion.hidden_dim, dropout=fusion.dropout, **fusion.params.model_dump()
        )
    if fusion.type == "late":
        encoders = build_encoders(config, input_shapes, modalities, modality_info)
        dims = {m: encoder_width(e, m) for m, e in encoders.items()}
        late = build_late_fusion(
            fusion.method, dims, hidden_dim=fusion.hidden_dim, dropout=fusion.dropout, **fusion.params.model_dump()
        )
        head = nn.Linear(late.out_dim, num_classes)
        return MultimodalModel(encoders, late, head, build_missing_strategy(config.model.missing_strategy, dims))
    shapes = {m: input_shapes[m] for m in modalities}
    _check_token_inputs(fusion.tag, shapes, modality_info)
    try:  # the tokenisers' and pools' checks against the inputs (a patch that does not divide the image)
        if isinstance(fusion, TokenFusionOptions):
            return registry.build_token_early_fusion(shapes, num_classes, **fusion.params.model_dump())
        if isinstance(fusion, WhereToFuseFusionOptions):
            # tokens from the configured encoders (pre-trainable, freezable) for `encoder_tokens` (002 Sec. 2.2)
            chosen = [m for m in fusion.params.encoder_tokens if m in modalities]
            encoders = build_encoders(config, input_shapes, chosen, modality_info)
            return registry.build_where_to_fuse(shapes, num_classes, **fusion.params.model_dump(), encoders=encoders)
    except ValueError as error:
        raise ConfigError(
            f"Cannot build fusion `{fusion.tag}` (`model.fusion.params`) for the inputs "
            f"{ {m: list(s) for m, s in shapes.items()} }: {error}"
        ) from None
    raise TypeError(f"Expected one of the fusion options of `fusebench.models.fusion_specs`, got {type(fusion)}.")


def _check_token_inputs(
    tag: str, shapes: Mapping[str, Sequence[int]], modality_info: Mapping[str, ModalityInfo] | None
) -> None:
    """Token and where-to-fuse models tokenise a variable-length modality step by step: it must be ``[T, F]``."""
    for modality, shape in sorted(shapes.items()):
        info = (modality_info or {}).get(modality)
        if info is not None and info.variable_length and len(shape) != 2:
            raise ConfigError(
                f"Fusion `{tag}` tokenises `{modality}` one token per step, which needs [T, F] feature "
                f"sequences; `{modality}` is variable-length with per-sample shape {list(shape)}. Use late fusion "
                f"with a sequence encoder ({', '.join(sequence_kinds())}) for it."
            )


def used_settings(config: RunConfig, settings: dict[str, T]) -> dict[str, T]:
    """``model.pretrained`` / ``model.freeze`` entries of the run's modalities.

    ``data.modalities`` selects a subset of a config's modalities (ablations over subsets);
    the dropped modalities' encoder settings go with their encoders.
    """
    used = set(config.modalities())
    return {m: v for m, v in sorted(settings.items()) if m in used}


def load_pretrained(
    model: nn.Module, config: RunConfig, input_shapes: Mapping[str, Sequence[int]] | None = None
) -> None:
    """Load ``model.pretrained`` weights by modality name (checked for modality, encoder kind and input
    shape); freeze encoders ``model.freeze`` asks for."""
    encoders = as_fusion_model(model).encoder_modules()
    for modality, path in used_settings(config, config.model.pretrained).items():
        if encoders is None or modality not in encoders:
            raise ConfigError(
                f"`model.pretrained.{modality}` is set but this model has no `{modality}` encoder "
                f"(fusion `{config.model.fusion.tag}` builds its own tokenisers)."
            )
        shape = input_shapes.get(modality) if input_shapes is not None else None
        load_encoder(encoders[modality], path, modality, kind=config.model.encoders[modality].kind, input_shape=shape)
    for modality, frozen in used_settings(config, config.model.freeze).items():
        if frozen:
            if encoders is None or modality not in encoders:
                raise ConfigError(f"`model.freeze.{modality}` is set but this model has no `{modality}` encoder.")
            for parameter in encoders[modality].parameters():
                parameter.requires_grad_(False)


def frozen_modalities(config: RunConfig) -> list[str]:
    return sorted(m for m, frozen in used_settings(config, config.model.freeze).items() if frozen)
