"""Uni-modal teacher distillation: keep each encoder close to a frozen unimodal expert.

Adds ``weight_m * mean_i ||z_m(x_i) - t_m(x_i)||^2`` over the samples ``i`` where ``m`` is
present, with ``z_m`` the student encoder's embedding and ``t_m`` the embedding of a frozen
copy of a pre-trained unimodal encoder of the same kind. Feature-level distillation from
unimodal teachers counters the under-trained unimodal branches of joint training
("Modality Competition: what makes joint training of multi-modal network fail in deep
learning?", Huang et al., ICML 2022; Du et al., "Improving multi-modal learning with
uni-modal teachers", arXiv:2106.11059, 2021).

Teachers are not registered on the model: they are not trained, not saved in checkpoints
and always in eval mode; each is moved to the student's device on first use.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from fusebench.data.batch import Batch
from fusebench.engine.strategies.base import Strategy, column, encoder_modules, zero_loss
from fusebench.models.multimodal import ModelOutput
from fusebench.models.weights import load_encoder


def load_teacher(model: nn.Module, modality: str, path: str | Path | None) -> nn.Module:
    """A frozen, eval-mode copy of ``model``'s ``modality`` encoder with the weights at ``path``.

    Copying the student's encoder builds exactly the encoder kind and shape the run
    configured; ``load_encoder`` then rejects a file of another kind, naming the layer.
    ``path=None`` keeps the copied weights (a check of the strategy before the file exists).
    """
    teacher = copy.deepcopy(encoder_modules(model, f"distill.{modality}")[modality])
    if path is not None:
        load_encoder(teacher, path, modality)
    teacher.eval()
    for parameter in teacher.parameters():
        parameter.requires_grad_(False)
    return teacher


def feature_distance(student: Tensor, teacher: Tensor) -> Tensor:
    """Mean over samples of the squared L2 distance ``||s_i - t_i||^2``; ``[N, D]`` inputs.

    >>> feature_distance(torch.ones(2, 3), torch.zeros(2, 3)).item()
    3.0
    """
    if student.shape != teacher.shape:
        raise ValueError(
            f"Expected student and teacher features of the same shape, got "
            f"{tuple(student.shape)} and {tuple(teacher.shape)}."
        )
    return (student - teacher).pow(2).sum(dim=1).mean()


class TeacherDistillation(Strategy):
    """Adds ``weight_m * feature_distance`` per modality, logged as ``distill_<modality>``.

    The student's features are those of the training forward pass (train mode: BatchNorm
    uses batch statistics); the teacher's are computed in eval mode on the present rows.

    Args:
        teachers: modality -> frozen teacher encoder (see ``load_teacher``).
        weights: modality -> weight >= 0.
    """

    def __init__(self, teachers: Mapping[str, nn.Module], weights: Mapping[str, float]) -> None:
        if set(teachers) != set(weights):
            raise ValueError(
                f"Expected a teacher per distilled modality {sorted(weights)}, got teachers for {sorted(teachers)}."
            )
        self.teachers = dict(sorted(teachers.items()))
        self.weights = dict(sorted(weights.items()))

    def extra_losses(self, model: nn.Module, output: ModelOutput, batch: Batch) -> dict[str, Tensor]:
        losses: dict[str, Tensor] = {}
        for m, teacher in self.teachers.items():
            present = batch.mask[:, column(batch.modalities, m)]  # [B]
            student = output.embeddings[m][present]  # [P, D]
            if student.shape[0] == 0:
                losses[f"distill_{m}"] = zero_loss(output.logits)
                continue
            target = self._teach(teacher, batch.inputs[m][present], student.device)  # [P, D]
            losses[f"distill_{m}"] = self.weights[m] * feature_distance(student, target)
        return losses

    @staticmethod
    @torch.no_grad()
    def _teach(teacher: nn.Module, inputs: Tensor, device: torch.device) -> Tensor:
        parameter = next(teacher.parameters(), None)
        if parameter is not None and parameter.device != device:
            teacher.to(device)
        teacher.eval()
        out: Tensor = teacher(inputs.to(device))
        return out
