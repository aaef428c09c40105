"""Multi-task learning with auxiliary unimodal heads: ``L = L_mm + sum_m alpha_m * L_m``.

Each ``L_m`` is the cross-entropy of a linear head on modality ``m``'s encoder embedding,
computed on the samples where ``m`` is present. The unimodal losses give every encoder a
training signal of its own, which counters the "modality laziness" of joint training in
which one modality's branch stops learning once the other carries the fused loss
(Wang et al., "What makes training multi-modal classification networks hard?", CVPR 2020;
Du et al., "On uni-modal feature learning in supervised multi-modal learning", ICML 2023).

The heads live on the model as ``model.aux_heads`` (an ``nn.ModuleDict``), attached before
the optimiser is built, so they are trained and saved in checkpoints; evaluation never
calls them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from torch import Tensor, nn
from torch.nn import functional as F

from fusebench.data.batch import Batch
from fusebench.engine.strategies.base import (
    AUX_HEADS,
    Strategy,
    attach,
    attached,
    column,
    embedding_dims,
    zero_loss,
)
from fusebench.models.multimodal import ModelOutput


def unimodal_heads(model: nn.Module, modalities: Sequence[str], num_classes: int) -> nn.ModuleDict:
    """``model.aux_heads``: a linear head ``D_m -> num_classes`` per modality, attached once."""
    dims = embedding_dims(model, modalities)
    heads = nn.ModuleDict({m: nn.Linear(dims[m], num_classes) for m in sorted(modalities)})
    attach(model, AUX_HEADS, heads)
    return heads


TaskLoss = Callable[[Tensor, Tensor], Tensor]


def unimodal_losses(
    model: nn.Module, output: ModelOutput, batch: Batch, modalities: Sequence[str], loss: TaskLoss = F.cross_entropy
) -> dict[str, Tensor]:
    """Mean task loss (``Task.compute_loss``) of each ``model.aux_heads[m]`` over the samples where ``m`` is present.

    A modality absent from the whole batch contributes a zero loss.
    """
    heads = attached(model, AUX_HEADS)
    losses: dict[str, Tensor] = {}
    for m in modalities:
        present = batch.mask[:, column(batch.modalities, m)]  # [B]
        if not bool(present.any()):
            losses[m] = zero_loss(output.logits)
            continue
        logits = heads[m](output.embeddings[m][present])  # [P, C]
        losses[m] = loss(logits, batch.target[present])
    return losses


class AuxiliaryHeads(Strategy):
    """Adds ``alpha_m * L_m`` per configured modality, logged as ``aux_<modality>``.

    Args:
        weights: modality -> ``alpha_m`` >= 0.
        loss: the task's loss (cross-entropy for classification).
    """

    def __init__(self, weights: Mapping[str, float], loss: TaskLoss = F.cross_entropy) -> None:
        self.weights = dict(sorted(weights.items()))
        self.loss = loss

    def extra_losses(self, model: nn.Module, output: ModelOutput, batch: Batch) -> dict[str, Tensor]:
        losses = unimodal_losses(model, output, batch, list(self.weights), self.loss)
        return {f"aux_{m}": self.weights[m] * loss for m, loss in losses.items()}
