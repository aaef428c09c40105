"""What every training strategy shares: no-op defaults and the model facts strategies need.

A strategy sees the model only through the contract every fusebench model keeps
(``forward(inputs, mask) -> ModelOutput`` with per-modality ``embeddings``), plus, for
the strategies that need them, per-modality encoders (``encoders`` or ``extractors``) and
``fuse``. Models without them get an error that names the strategy, not an AttributeError.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from fusebench.data.batch import Batch
from fusebench.models.multimodal import ModelOutput, model_encoders

#: Model attributes that strategies attach; they hold trainable parameters that are saved
#: in checkpoints but that evaluation never uses (``probe`` drops them when loading).
AUX_HEADS = "aux_heads"
CONTRASTIVE_PROJECTIONS = "contrastive_projections"
ATTACHED_MODULES: tuple[str, ...] = (AUX_HEADS, CONTRASTIVE_PROJECTIONS)


class Strategy:
    """Base class with the no-op form of every ``TrainingStrategy`` hook.

    ``log_values`` returns scalars worth logging that are not losses (e.g. OGM-GE's
    coefficients); the training module logs them after each epoch. ``on_epoch_start``
    receives the 1-based epoch about to train; ``task_loss_scale`` multiplies the task
    loss the engine computes (gradient blending's fused weight; 0 during a contrastive-only
    stage).
    """

    def on_epoch_start(self, epoch: int) -> None:
        return None

    def task_loss_scale(self) -> float:
        return 1.0

    def transform_batch(self, batch: Batch, step: int) -> Batch:
        return batch

    def extra_losses(self, model: nn.Module, output: ModelOutput, batch: Batch) -> dict[str, Tensor]:
        return {}

    def after_backward(self, model: nn.Module) -> None:
        return None

    def log_values(self) -> dict[str, float]:
        return {}


def seeded_generator(seed: int, step: int, stream: int) -> torch.Generator:
    """A CPU generator for ``(seed, step)``, independent per ``stream`` (one per strategy).

    ``SeedSequence`` mixes the three integers, so stream ``a`` at step ``s`` never replays
    stream ``b`` at another step, as ``seed * K + step`` schemes can.
    """
    state = np.random.SeedSequence([seed, step, stream]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def column(modalities: Sequence[str], modality: str) -> int:
    """The mask column of ``modality``."""
    return list(modalities).index(modality)


def zero_loss(like: Tensor) -> Tensor:
    """A scalar 0 on ``like``'s device, for batches in which a loss has no samples."""
    return like.new_zeros(())


def check_modalities(key: str, names: Sequence[str], modalities: Sequence[str]) -> None:
    """Raise if config ``key`` names a modality the run does not have."""
    unknown = sorted(set(names) - set(modalities))
    if unknown:
        raise ValueError(
            f"`training.strategy.{key}` names {unknown}, but this run's modalities are "
            f"{sorted(modalities)}."
        )


def unwrap(model: nn.Module) -> nn.Module:
    """The model itself, or the model inside a frozen-feature cache wrapper (``inner``)."""
    inner = getattr(model, "inner", None)
    return inner if isinstance(inner, nn.Module) else model


def encoder_modules(model: nn.Module, key: str) -> Mapping[str, nn.Module]:
    """The per-modality encoders (``encoders`` of late fusion, ``extractors`` of feature fusion)."""
    found = model_encoders(unwrap(model))
    if found is None:
        raise ValueError(
            f"`training.strategy.{key}` needs per-modality encoders (late fusion, feature early "
            f"fusion or pre-training), but `{type(model).__name__}` has none."
        )
    return found


def check_trainable(model: nn.Module, modalities: Sequence[str], key: str) -> None:
    """Raise if every encoder of ``modalities`` is frozen: ``key`` acts through their gradients."""
    encoders = encoder_modules(model, key)
    if not any(p.requires_grad for m in modalities for p in encoders[m].parameters()):
        raise ValueError(
            f"`training.strategy.{key}` changes the training of the {sorted(modalities)} "
            f"encoder(s), but they are frozen (`model.freeze`); unfreeze them or drop `{key}`."
        )


def embedding_dims(model: nn.Module, modalities: Sequence[str], key: str) -> dict[str, int]:
    """Width of ``output.embeddings[m]`` for each modality, read from the model's modules.

    Late fusion and pre-training: the encoders' ``out_dim``; feature early fusion:
    ``feature_dims``; token models: the tokenisers' ``dim`` (embeddings are mean tokens).
    """
    model = unwrap(model)
    feature_dims = getattr(model, "feature_dims", None)
    if isinstance(feature_dims, Mapping):
        return {m: int(feature_dims[m]) for m in modalities}
    for name, attribute in (("encoders", "out_dim"), ("tokenizers", "dim")):
        modules = getattr(model, name, None)
        if isinstance(modules, nn.ModuleDict):
            dims = {m: getattr(modules[m], attribute, None) for m in modalities}
            if all(isinstance(d, int) for d in dims.values()):
                return {m: int(d) for m, d in dims.items() if d is not None}
    raise ValueError(
        f"`training.strategy.{key}` needs the embedding width of each modality, but "
        f"`{type(model).__name__}` has no encoders with an int `out_dim`."
    )


def infer_num_classes(model: nn.Module) -> int:
    """The width of the model's logits, from its final ``nn.Linear`` (``head`` or ``classifier``)."""
    model = unwrap(model)
    head = getattr(model, "head", None)
    if isinstance(head, nn.Linear):
        return int(head.out_features)
    classifier = getattr(model, "classifier", None)
    if isinstance(classifier, nn.Module):
        linears = [m for m in classifier.modules() if isinstance(m, nn.Linear)]
        if linears:
            return int(linears[-1].out_features)
    raise ValueError(
        f"Could not read the number of classes from `{type(model).__name__}` (no linear "
        f"`head` or `classifier`); pass `num_classes` to `build_strategies`."
    )


def attach(model: nn.Module, name: str, module: nn.Module) -> nn.Module:
    """Register ``module`` on ``model`` as ``name`` so the optimiser and checkpoints see it."""
    if hasattr(model, name):
        raise ValueError(
            f"`{type(model).__name__}` already has an attribute `{name}`; build the strategies "
            f"once per model."
        )
    model.add_module(name, module)
    return module
