"""Contrastive auxiliary loss between two modalities' encoder embeddings.

``weight * loss(anchor embeddings, other embeddings)`` on the samples where both are
present, with the losses of ``fusebench.models.losses``: the hard-negative loss of "Early
Fusion with Contrastive Learning" or InfoNCE (van den Oord et al., 2018; CLIP). Aligning
the modalities' embeddings of the same sample gives the encoders a signal that does not
run through the fused head, and makes one modality's embedding informative about the
other's when that one is missing.

When the two embedding widths differ (or ``dim`` is set), learned linear projections to a
common width are attached to the model as ``model.contrastive_projections``, trained and
checkpointed with it, as CLIP's projection heads are.

Contrastive *pre-training* in fusebench is a multimodal run with this loss switched on,
whose encoders are then exported per modality (``fusebench probe RUN --export-encoders``
or ``fusebench.engine.probe.export_encoders``) and loaded by ``model.pretrained`` like the
encoders of ``fusebench pretrain``. The run still trains its fused head with
cross-entropy, so it is a contrastive-regularised supervised pre-training.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor, nn

from fusebench.data.batch import Batch
from fusebench.engine.strategies.base import (
    CONTRASTIVE_PROJECTIONS,
    Strategy,
    attach,
    column,
    embedding_dims,
    zero_loss,
)
from fusebench.models.losses import build_contrastive_loss, present_pairs
from fusebench.models.multimodal import ModelOutput


class ContrastiveAlignment(Strategy):
    """Adds ``weight * loss(anchor, other)`` over present pairs, logged as ``contrastive``.

    Batches with fewer than two present pairs (no negative to contrast with) add 0.

    Args:
        anchor: the anchor modality.
        other: the other modality.
        modalities: sorted modality names (mask columns).
        loss: a loss module ``(anchor [P, D], other [P, D]) -> scalar``.
        weight: loss weight >= 0.
        projected: whether ``model.contrastive_projections`` maps both embeddings first.
    """

    def __init__(self, anchor: str, other: str, modalities: Sequence[str], loss: nn.Module,
                 weight: float, projected: bool) -> None:
        self.anchor, self.other = anchor, other
        self.columns = (column(modalities, anchor), column(modalities, other))
        self.loss = loss
        self.weight = float(weight)
        self.projected = projected

    def extra_losses(self, model: nn.Module, output: ModelOutput, batch: Batch) -> dict[str, Tensor]:
        pairs = present_pairs(batch.mask, *self.columns)  # [B]
        if int(pairs.sum()) < 2:
            return {"contrastive": zero_loss(output.logits)}
        a = output.embeddings[self.anchor][pairs]  # [P, D_anchor]
        o = output.embeddings[self.other][pairs]  # [P, D_other]
        if self.projected:
            projections = getattr(model, CONTRASTIVE_PROJECTIONS)
            a, o = projections[self.anchor](a), projections[self.other](o)  # [P, D]
        return {"contrastive": self.weight * self.loss(a, o)}


def build_contrastive(settings: Mapping[str, Any], model: nn.Module,
                      modalities: Sequence[str]) -> ContrastiveAlignment:
    """The strategy for the resolved ``training.strategy.contrastive`` settings.

    Attaches ``model.contrastive_projections`` when the embedding widths differ or ``dim``
    is set; the common width is ``dim``, else the smaller of the two widths.
    """
    anchor, other = settings["anchor"], settings["other"]
    for key, modality in (("anchor", anchor), ("other", other)):
        if modality not in modalities:
            raise ValueError(
                f"`training.strategy.contrastive.{key}` must be one of this run's modalities "
                f"{sorted(modalities)}, got `{modality}`."
            )
    options = {"temperature": settings["temperature"], "symmetric": settings["symmetric"]}
    if settings["kind"] == "hard_negative":
        options |= {"k": settings["k"], "eps": settings["eps"]}
    loss = build_contrastive_loss(settings["kind"], **options)
    dims = embedding_dims(model, [anchor, other], "contrastive")
    dim = settings.get("dim")
    projected = dim is not None or dims[anchor] != dims[other]
    if projected:
        width = int(dim) if dim is not None else min(dims.values())
        attach(model, CONTRASTIVE_PROJECTIONS,
               nn.ModuleDict({m: nn.Linear(dims[m], width) for m in sorted((anchor, other))}))
    return ContrastiveAlignment(anchor, other, modalities, loss, settings["weight"], projected)
