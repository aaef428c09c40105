"""Config -> modules. The only place where ``fusebench.config`` meets ``fusebench.models``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

from torch import nn

from fusebench.config import ConfigError, RunConfig
from fusebench.data.registry import ModalityInfo
from fusebench.engine.fusion_params import check_fusion_params
from fusebench.models.encoder_specs import build_encoder_from, get_encoder, sequence_kinds
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
    """
    if config.pretrain is not None:
        modality = config.pretrain.modality
        encoder = build_encoders(config, input_shapes, [modality], modality_info)[modality]
        return UnimodalModel(modality, encoder, num_classes)
    modalities = list(config.modalities())
    fusion_cfg = config.model.fusion
    check_fusion_params(fusion_cfg)
    try:
        model = _build_fusion_model(config, input_shapes, num_classes, modalities, modality_info)
    except (TypeError, RuntimeError) as error:  # a value the signature check cannot judge (e.g. a negative width)
        raise ValueError(
            f"Cannot build fusion `{fusion_cfg.type}/{fusion_cfg.method}` with `model.fusion.params` "
            f"{fusion_cfg.params}: {error}"
        ) from None
    load_pretrained(model, config, input_shapes)
    return model


def _build_fusion_model(
    config: RunConfig,
    input_shapes: Mapping[str, Sequence[int]],
    num_classes: int,
    modalities: Sequence[str],
    modality_info: Mapping[str, ModalityInfo] | None,
) -> nn.Module:
    fusion_cfg = config.model.fusion
    if fusion_cfg.type == "late":
        from fusebench.models.fusion import build_late_fusion

        encoders = build_encoders(config, input_shapes, modalities, modality_info)
        dims = {m: int(e.out_dim) for m, e in encoders.items()}
        fusion = build_late_fusion(
            fusion_cfg.method, dims, hidden_dim=fusion_cfg.hidden_dim, dropout=fusion_cfg.dropout, **fusion_cfg.params
        )
        head = nn.Linear(fusion.out_dim, num_classes)
        model: nn.Module = MultimodalModel(
            encoders, fusion, head, build_missing_strategy(config.model.missing_strategy, dims)
        )
        return model
    return _build_early_or_mid(config, input_shapes, num_classes, modalities, modality_info)


def _build_early_or_mid(
    config: RunConfig,
    input_shapes: Mapping[str, Sequence[int]],
    num_classes: int,
    modalities: Sequence[str],
    modality_info: Mapping[str, ModalityInfo] | None,
) -> nn.Module:
    from fusebench.models import registry

    fusion_cfg = config.model.fusion
    shapes = {m: input_shapes[m] for m in modalities}
    _reject_ignored_settings(config)
    if fusion_cfg.type == "early" and fusion_cfg.method == "feature":
        encoders = build_encoders(config, input_shapes, modalities, modality_info)
        return registry.build_feature_early_fusion(
            encoders, num_classes, hidden_dim=fusion_cfg.hidden_dim, dropout=fusion_cfg.dropout, **fusion_cfg.params
        )
    _check_token_inputs(fusion_cfg.type, fusion_cfg.method, shapes, modality_info)
    if fusion_cfg.type == "early" and fusion_cfg.method == "token":
        return registry.build_token_early_fusion(shapes, num_classes, **fusion_cfg.params)
    if fusion_cfg.type == "mid" and fusion_cfg.method == "where_to_fuse":
        # tokens from the configured encoders (pre-trainable, freezable) for `encoder_tokens` (002 Sec. 2.2)
        chosen = [m for m in fusion_cfg.params.get("encoder_tokens", ()) if m in modalities]
        encoders = build_encoders(config, input_shapes, chosen, modality_info)
        return registry.build_where_to_fuse(shapes, num_classes, **fusion_cfg.params, encoders=encoders)
    raise ValueError(
        f"Expected `model.fusion.method` in {registry.FUSION_KINDS[fusion_cfg.type]} for fusion type "
        f"`{fusion_cfg.type}`, got `{fusion_cfg.method}`."
    )


def _check_token_inputs(
    kind: str, method: str, shapes: Mapping[str, Sequence[int]], modality_info: Mapping[str, ModalityInfo] | None
) -> None:
    """Token and where-to-fuse models tokenise a variable-length modality step by step: it must be ``[T, F]``."""
    for modality, shape in sorted(shapes.items()):
        info = (modality_info or {}).get(modality)
        if info is not None and info.variable_length and len(shape) != 2:
            raise ConfigError(
                f"Fusion `{kind}/{method}` tokenises `{modality}` one token per step, which needs [T, F] feature "
                f"sequences; `{modality}` is variable-length with per-sample shape {list(shape)}. Use late fusion "
                f"with a sequence encoder ({', '.join(sequence_kinds())}) for it."
            )


def _reject_ignored_settings(config: RunConfig) -> None:
    """Early and mid fusion take their missing-modality handling (and, for token models, their
    width) from ``model.fusion.params``; a late-fusion setting here would be silently ignored."""
    fusion = config.model.fusion
    where = f"fusion `{fusion.type}/{fusion.method}`"
    if config.model.missing_strategy != "zero":
        raise ValueError(
            f"`model.missing_strategy: {config.model.missing_strategy}` applies to late fusion only; for {where} "
            f"set `model.fusion.params.missing` instead."
        )
    defaults = type(fusion)()
    if fusion.method != "feature" and (fusion.hidden_dim, fusion.dropout) != (defaults.hidden_dim, defaults.dropout):
        raise ValueError(
            f"`model.fusion.hidden_dim`/`dropout` do not apply to {where}; set its width and dropout with "
            f"`model.fusion.params.dim` and `model.fusion.params.dropout`."
        )


def used_settings(config: RunConfig, settings: dict[str, T]) -> dict[str, T]:
    """``model.pretrained`` / ``model.freeze`` entries of the run's modalities.

    ``data.modalities`` selects a subset of a config's modalities (ablations over subsets);
    the dropped modalities' encoder settings go with their encoders.
    """
    used = set(config.modalities())
    return {m: v for m, v in sorted(settings.items()) if m in used}


def load_pretrained(model: nn.Module, config: RunConfig,
                    input_shapes: Mapping[str, Sequence[int]] | None = None) -> None:
    """Load ``model.pretrained`` weights by modality name (checked for modality, encoder kind and input
    shape); freeze encoders ``model.freeze`` asks for."""
    from fusebench.models.multimodal import model_encoders

    encoders = model_encoders(model)
    if encoders is None:  # where-to-fuse: the encoders its `encoder_tokens` read tokens from
        found = getattr(model, "token_encoders", None)
        encoders = found if isinstance(found, nn.ModuleDict) and len(found) else None
    for modality, path in used_settings(config, config.model.pretrained).items():
        if encoders is None or modality not in encoders:
            raise ValueError(
                f"`model.pretrained.{modality}` is set but this model has no `{modality}` encoder "
                f"(fusion `{config.model.fusion.type}/{config.model.fusion.method}` builds its own tokenisers)."
            )
        shape = input_shapes.get(modality) if input_shapes is not None else None
        load_encoder(encoders[modality], path, modality, kind=config.model.encoders[modality].kind, input_shape=shape)
    for modality, frozen in used_settings(config, config.model.freeze).items():
        if frozen:
            if encoders is None or modality not in encoders:
                raise ValueError(f"`model.freeze.{modality}` is set but this model has no `{modality}` encoder.")
            for parameter in encoders[modality].parameters():
                parameter.requires_grad_(False)


def frozen_modalities(config: RunConfig) -> list[str]:
    return sorted(m for m, frozen in used_settings(config, config.model.freeze).items() if frozen)
