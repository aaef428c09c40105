"""Contrastive alignment of an enhanced modality with one or two anchor modalities.

"Early Fusion with Contrastive Learning" (../shared/papers/003_*.txt, Sec. 3.2): the
dominant modalities (text and image) are *anchors*; another modality ``M`` is *enhanced*
by a projector (Linear -> Tanh -> Dropout plus a residual to the projection) trained with
the hard-negative loss of ``fusebench.models.losses`` from each anchor's rows to the
projected ``M``; with two anchors the two losses are averaged
(``contrastive_loss = (text_loss + image_loss) / 2``). Each anchor's loss is computed on
the samples where it and ``M`` are both present; an anchor with fewer than two such
samples in a batch (no negative to contrast with) is left out of that batch's mean.

Where the projector lives (``projector``):

- a feature early-fusion model built with ``model.fusion.params.projectors: [M]`` has the
  paper's projector inside the model, so its classifier sees the enhanced features; the
  loss uses that projector (``projector: enhanced``, the default, is then the only choice);
- otherwise ``projector: enhanced`` attaches the paper's projector for ``M`` to the model
  as ``model.contrastive_projections`` (trained, checkpointed, unused at evaluation: in late
  fusion it shapes ``M``'s encoder through the loss only);
- ``projector: linear`` (fusebench's CLIP-style variant) projects the anchors and ``M``
  linearly to a common width ``dim`` (default: the smallest width); ``projector: none``
  compares the raw embeddings (widths must match).

``contrastive_epochs: N`` is the paper's optional first stage: for the first ``N`` epochs
only the contrastive loss trains (the task loss is scaled by 0), then training continues
with ``task loss + weight * contrastive``.

Contrastive *pre-training* of encoders is a run with this loss switched on whose
encoders are then exported per modality (``fusebench probe RUN --export-encoders``) and
loaded by ``model.pretrained`` like the encoders of ``fusebench pretrain``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from fusebench.config_training import ContrastiveOptions, EnhancedProjectorKeys, HardNegativeKeys, LinearProjectorKeys
from fusebench.data.batch import Batch
from fusebench.engine.strategies.base import (
    CONTRASTIVE_PROJECTIONS,
    Strategy,
    attach,
    attached,
    column,
    contract,
    embedding_dims,
    encoder_modules,
    zero_loss,
)
from fusebench.errors import ConfigError
from fusebench.models.early import FeatureEarlyFusionModel, ResidualTanhProjector
from fusebench.models.losses import build_contrastive_loss, present_pairs
from fusebench.models.multimodal import ModelOutput

_WHERE = "`training.strategy.contrastive"


class ContrastiveAlignment(Strategy):
    """Adds ``weight * mean_a loss(anchor a, projected other)``, logged as ``contrastive``.

    Args:
        anchors: the anchor modalities (one or more; their losses are averaged).
        other: the enhanced modality.
        modalities: sorted modality names (mask columns).
        loss: a loss module ``(anchor [P, D], other [P, D]) -> scalar``.
        weight: loss weight >= 0.
        projected: modalities mapped by ``model.contrastive_projections`` before the loss.
        model_projector: whether ``other`` goes through the early-fusion model's own projector.
        contrastive_epochs: leading epochs in which only the contrastive loss trains.
    """

    def __init__(
        self,
        anchors: Sequence[str],
        other: str,
        modalities: Sequence[str],
        loss: nn.Module,
        weight: float,
        projected: Sequence[str] = (),
        model_projector: bool = False,
        contrastive_epochs: int = 0,
    ) -> None:
        self.anchors, self.other = tuple(anchors), other
        self.columns = {m: column(modalities, m) for m in (*self.anchors, other)}
        self.loss = loss
        self.weight = float(weight)
        self.projected = tuple(projected)
        self.model_projector = model_projector
        self.contrastive_epochs = int(contrastive_epochs)
        self.epoch = 1

    def on_epoch_start(self, epoch: int) -> None:
        self.epoch = epoch

    def task_loss_scale(self) -> float:
        return 0.0 if self.epoch <= self.contrastive_epochs else 1.0

    def _view(self, model: nn.Module, modality: str, z: Tensor) -> Tensor:
        if modality == self.other and self.model_projector:
            inner = contract(model)
            if not isinstance(inner, FeatureEarlyFusionModel):  # build_contrastive found its projector
                raise TypeError(
                    f"Expected the feature early-fusion model the strategy was built for, got `{type(inner).__name__}`."
                )
            return inner.enhance(modality, z)
        if modality in self.projected:
            projected: Tensor = attached(model, CONTRASTIVE_PROJECTIONS)[modality](z)
            return projected
        return z

    def extra_losses(self, model: nn.Module, output: ModelOutput, batch: Batch) -> dict[str, Tensor]:
        losses: list[Tensor] = []
        for anchor in self.anchors:
            pairs = present_pairs(batch.mask, self.columns[anchor], self.columns[self.other])  # [B]
            if int(pairs.sum()) < 2:
                continue
            a = self._view(model, anchor, output.embeddings[anchor][pairs])  # [P, D]
            o = self._view(model, self.other, output.embeddings[self.other][pairs])  # [P, D]
            losses.append(self.loss(a, o))
        if not losses:
            return {"contrastive": zero_loss(output.logits)}
        return {"contrastive": self.weight * torch.stack(losses).mean()}


def build_contrastive(
    settings: ContrastiveOptions,
    model: nn.Module,
    modalities: Sequence[str],
    *,
    epochs: int | None = None,
    early_stopping: bool = False,
) -> ContrastiveAlignment:
    """The strategy for the validated ``training.strategy.contrastive`` settings.

    Args:
        settings: ``training.strategy.contrastive`` (one of the ``kind/projector`` models of
            ``fusebench.config_training``).
        model: the model; projections are attached to it where the settings ask.
        modalities: the run's modalities.
        epochs: ``training.epochs`` (a contrastive-only stage must leave epochs to train the task).
        early_stopping: whether early stopping is on (it would judge the contrastive-only stage).

    Raises:
        ConfigError: for modalities the run lacks, widths that cannot be compared, a loss that
            would train nothing, or a contrastive-only stage that cannot work.
    """
    anchors, other = list(settings.anchors), settings.other
    for key, names in (("anchors", anchors), ("other", [other])):
        for modality in names:
            if modality not in modalities:
                raise ConfigError(
                    f"{_WHERE}.{key}` must name this run's modalities {sorted(modalities)}, got `{modality}`."
                )
    options: dict[str, float | int | bool] = {"temperature": settings.temperature, "symmetric": settings.symmetric}
    if isinstance(settings, HardNegativeKeys):
        options |= {"k": settings.k, "eps": settings.eps}
    loss = build_contrastive_loss(settings.kind, **options)
    dims = embedding_dims(model, [*anchors, other])
    inner = contract(model)
    early = inner if isinstance(inner, FeatureEarlyFusionModel) and other in inner.projectors else None
    model_projector = early is not None
    projected: list[str] = []
    if early is not None:
        if settings.projector != "enhanced":
            raise ConfigError(
                f"{_WHERE}.projector` is `{settings.projector}`, but the model enhances `{other}` with its own "
                f"projector (`model.fusion.params.projectors`); leave `projector: enhanced` or drop the model's "
                "projector."
            )
        _same_width(anchors, dims, early.fused_dims[other], "`model.fusion.params.projector_dim`")
    elif isinstance(settings, EnhancedProjectorKeys):
        width = _same_width(anchors, dims, None, "the anchors")
        attach(
            model,
            CONTRASTIVE_PROJECTIONS,
            nn.ModuleDict({other: ResidualTanhProjector(dims[other], width, settings.dropout)}),
        )
        projected = [other]
    elif isinstance(settings, LinearProjectorKeys):
        width = settings.dim if settings.dim is not None else min(dims.values())
        projected = sorted({*anchors, other})
        attach(model, CONTRASTIVE_PROJECTIONS, nn.ModuleDict({m: nn.Linear(dims[m], width) for m in projected}))
    else:
        _same_width(anchors, dims, dims[other], f"`{other}`")
    if not projected and not model_projector:
        encoders = encoder_modules(model, "contrastive")
        if not any(p.requires_grad for m in (*anchors, other) for p in encoders[m].parameters()):
            raise ConfigError(
                f"{_WHERE}` with `projector: none` trains only the encoders, but {sorted({*anchors, other})} are "
                f"frozen (`model.freeze`); unfreeze one or use `projector: enhanced`."
            )
    stage = settings.contrastive_epochs
    if stage:
        if epochs is not None and stage >= epochs:
            raise ConfigError(
                f"{_WHERE}.contrastive_epochs` is {stage}, but `training.epochs` is {epochs}: no epoch would train "
                f"the classifier; use fewer contrastive-only epochs or more epochs."
            )
        if early_stopping:
            raise ConfigError(
                f"{_WHERE}.contrastive_epochs` trains without the task loss for {stage} epoch(s), during which "
                f"early stopping would judge an untrained classifier; set `training.early_stopping.enabled: false`."
            )
        if settings.weight == 0:
            raise ConfigError(f"{_WHERE}.contrastive_epochs` is {stage} with `weight: 0`: those epochs train nothing.")
    return ContrastiveAlignment(anchors, other, modalities, loss, settings.weight, projected, model_projector, stage)


def _same_width(anchors: Sequence[str], dims: Mapping[str, int], width: int | None, source: str) -> int:
    """The anchors' common embedding width (equal to ``width`` when given), or a ConfigError."""
    widths = {dims[a] for a in anchors} | ({width} if width is not None else set())
    if len(widths) != 1:
        raise ConfigError(
            f"{_WHERE}` compares the anchors {list(anchors)} (widths "
            f"{', '.join(f'`model.encoders.{a}.out_dim` = {dims[a]}' for a in anchors)}) with the enhanced "
            f"modality's projection, so their widths must agree with {source}"
            f"{f' ({width})' if width is not None else ''}; use encoders of equal `out_dim` or `projector: linear`."
        )
    return widths.pop()
