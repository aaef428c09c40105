"""Evaluation of a model under every modality pattern.

For late fusion the encoders do not depend on the mask, so one ``encode`` per batch serves
every pattern and only ``fuse`` runs per pattern. Early and mid fusion declare
``reruns_per_pattern`` and are run once per pattern.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from fusebench.data.batch import Batch
from fusebench.data.patterns import Pattern, all_patterns, pattern_mask, pattern_name
from fusebench.models.contract import EncodeFuseModel, as_fusion_model


@dataclass(frozen=True)
class PatternEvaluation:
    """Logits of the same samples under each pattern: ``{pattern name: [N, C]}`` and ``target [N]``."""

    logits: dict[str, Tensor]
    target: Tensor
    modalities: tuple[str, ...]


def batch_pattern_logits(model: nn.Module, batch: Batch, patterns: Sequence[Pattern]) -> dict[str, Tensor]:
    """Logits of one batch under each pattern, overriding the batch's own mask."""
    out: dict[str, Tensor] = {}
    contract = as_fusion_model(model)
    if contract.reruns_per_pattern or not isinstance(contract, EncodeFuseModel):
        for pattern in patterns:
            mask = pattern_mask(pattern, batch.modalities, batch.size).to(batch.mask.device)
            out[pattern_name(pattern)] = contract(batch.inputs, mask, batch.lengths).logits
        return out
    embeddings = contract.encode(batch.inputs, lengths=batch.lengths)
    for pattern in patterns:
        mask = pattern_mask(pattern, batch.modalities, batch.size).to(batch.mask.device)
        out[pattern_name(pattern)] = contract.fuse(embeddings, mask)
    return out


@torch.no_grad()
def evaluate_patterns(
    model: nn.Module,
    batches: Iterable[Batch],
    modalities: Sequence[str],
    patterns: Sequence[Pattern] | None = None,
    device: torch.device | str = "cpu",
) -> PatternEvaluation:
    """Run ``model`` in eval mode over ``batches`` under every pattern (default: all non-empty subsets)."""
    patterns = list(patterns) if patterns is not None else all_patterns(modalities)
    was_training = model.training
    model.eval()
    chunks: dict[str, list[Tensor]] = {pattern_name(p): [] for p in patterns}
    targets: list[Tensor] = []
    try:
        for batch in batches:
            batch = batch.to(device)
            for name, logits in batch_pattern_logits(model, batch, patterns).items():
                chunks[name].append(logits.float().cpu())
            targets.append(batch.target.cpu())
    finally:
        model.train(was_training)
    return PatternEvaluation(
        logits={name: torch.cat(parts) for name, parts in chunks.items()},
        target=torch.cat(targets),
        modalities=tuple(sorted(modalities)),
    )
