"""What every training strategy shares: no-op defaults and the model facts strategies need.

A strategy sees the model only through the contract every fusebench model keeps
(:mod:`fusebench.models.contract`: ``forward(inputs, mask) -> ModelOutput`` with
per-modality ``embeddings`` and their widths), plus, for the strategies that need them,
per-modality encoders (``encoder_modules()``) and ``fuse``. Models without them get an
error that names the strategy, not an AttributeError.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from torch import Tensor, nn

from fusebench.data.batch import Batch
from fusebench.engine.feature_cache import unwrap
from fusebench.errors import ConfigError, quoted
from fusebench.models.contract import FusionModel, as_fusion_model
from fusebench.models.multimodal import ModelOutput
from fusebench.seeding import Stream, seeded_generator

__all__ = ["Stream", "seeded_generator"]  # re-exported: strategies draw from the run's one seeding scheme

#: Model attributes that strategies attach; they hold trainable parameters that are saved
#: in checkpoints but that evaluation never uses (``probe`` drops them when loading).
AUX_HEADS = "aux_heads"
CONTRASTIVE_PROJECTIONS = "contrastive_projections"
ATTACHED_MODULES: tuple[str, ...] = (AUX_HEADS, CONTRASTIVE_PROJECTIONS)


class TrainingStrategy(Protocol):
    """A training-time addition (modality dropout, auxiliary heads, distillation, gradient modulation, ...).

    The training module (``fusebench.engine.module.FusionModule``) calls the hooks in this
    order: ``on_epoch_start`` before each epoch; per step ``transform_batch``, the forward
    pass, ``task_loss_scale`` and ``extra_losses``, the backward pass, ``after_backward``;
    ``log_values`` after each epoch. :class:`Strategy` implements every hook as a no-op.
    """

    def on_epoch_start(self, epoch: int) -> None: ...

    def task_loss_scale(self) -> float: ...

    def transform_batch(self, batch: Batch, step: int) -> Batch: ...

    def extra_losses(self, model: nn.Module, output: ModelOutput, batch: Batch) -> dict[str, Tensor]: ...

    def after_backward(self, model: nn.Module) -> None: ...

    def log_values(self) -> dict[str, float]: ...


class Strategy:
    """Base class with the no-op form of every :class:`TrainingStrategy` hook.

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
        keys = quoted(f"training.strategy.{key}.{m}" for m in unknown)
        raise ConfigError(f"{keys} names a modality this run does not have; its modalities are {quoted(modalities)}.")


def contract(model: nn.Module) -> FusionModel:
    """The model as the fusebench model contract (the inner model of a frozen-feature cache wrapper)."""
    return as_fusion_model(unwrap(model))


def encoder_modules(model: nn.Module, key: str) -> nn.ModuleDict:
    """The per-modality encoders (``encoders`` of late fusion, ``extractors`` of feature fusion)."""
    found = contract(model).encoder_modules()
    if found is None:
        raise ConfigError(
            f"`training.strategy.{key}` needs per-modality encoders (late fusion, feature early "
            f"fusion or pre-training), but `{type(model).__name__}` has none."
        )
    return found


def check_trainable(model: nn.Module, modalities: Sequence[str], key: str) -> None:
    """Raise if every encoder of ``modalities`` is frozen: ``key`` acts through their gradients."""
    encoders = encoder_modules(model, key)
    if not any(p.requires_grad for m in modalities for p in encoders[m].parameters()):
        raise ConfigError(
            f"`training.strategy.{key}` changes the training of the {sorted(modalities)} "
            f"encoder(s), but they are frozen (`model.freeze`); unfreeze them or drop `{key}`."
        )


def embedding_dims(model: nn.Module, modalities: Sequence[str]) -> dict[str, int]:
    """Width of ``output.embeddings[m]`` for each modality (:meth:`FusionModel.embedding_dims`)."""
    dims = contract(model).embedding_dims()
    return {m: dims[m] for m in modalities}


def attached(model: nn.Module, name: str) -> nn.ModuleDict:
    """The modules a strategy attached to ``model`` as ``name`` (see :func:`attach`), per modality."""
    found = model.get_submodule(name)
    if not isinstance(found, nn.ModuleDict):
        raise TypeError(
            f"Expected `{name}` to be an nn.ModuleDict attached by a strategy, got `{type(found).__name__}`."
        )
    return found


def attach(model: nn.Module, name: str, module: nn.Module) -> nn.Module:
    """Register ``module`` on ``model`` as ``name`` so the optimiser and checkpoints see it."""
    if name in dict(model.named_children()) or name in vars(type(model)):
        raise ValueError(
            f"`{type(model).__name__}` already has an attribute `{name}`; build the strategies once per model."
        )
    model.add_module(name, module)
    return module
