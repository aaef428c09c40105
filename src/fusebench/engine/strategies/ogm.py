"""OGM-GE: on-the-fly gradient modulation with generalisation enhancement.

Peng, Wei, Deng, Wang and Hu, "Balanced multimodal learning via on-the-fly gradient
modulation", CVPR 2022 (Sec. 3.2-3.3). When one modality dominates the fused prediction,
the others' encoders receive little gradient and stay under-trained. Each step, OGM
measures how confident the model is with each modality's part of the prediction and slows
down the dominant modality's encoder; GE adds Gaussian noise to the encoder gradients to
recover the generalisation that the smaller steps would lose.

Per step, on the samples that have every modality (the only ones on which the modalities
can be compared):

- per-modality logits, their scores ``s_m``, the ratios ``rho_m`` and the coefficients
  ``k_m`` (Eq. 8-10; ``ogm_scores``, ``ogm_coefficient``):
  :mod:`fusebench.engine.strategies.ogm_scores`;
- after backward, each gradient ``g`` of ``model.encoders[m]`` becomes
  ``k_m * g + N(0, std(g)^2)`` (Sec. 3.3: the GE noise has the covariance of the SGD
  gradient, estimated by the std of ``g`` over the tensor's entries before modulation; the
  authors' code takes the std after scaling by ``k_m``). The noise is drawn for every
  modality, as in the authors' code; ``ogm_noise: false`` gives plain OGM.
  ``ogm_parameters: weights`` modulates only multi-dimensional weight tensors (convolution
  kernels and linear weights, no biases or normalisation parameters), the generalisation of
  the authors' code, which modulates only the 4-D convolution kernels of its encoders.
- modulation and noise act only in epochs ``ogm_start_epoch <= epoch <= ogm_end_epoch``
  (1-based; the authors' ``modulation_starts``/``modulation_ends``); outside the window the
  gradients are left alone.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal, get_args

import torch
from torch import Tensor, nn

from fusebench.data.batch import Batch
from fusebench.engine.strategies.base import Strategy, Stream, encoder_modules, seeded_generator
from fusebench.engine.strategies.ogm_scores import (
    OGMCoefficient,
    OGMScores,
    discrepancy_ratios,
    modality_scores,
    ogm_coefficients,
)
from fusebench.models.multimodal import ModelOutput

OGMParameters = Literal["all", "weights"]

_STREAM = Stream.OGM_NOISE
_log = logging.getLogger(__name__)


class OGMGE(Strategy):
    """Gradient modulation per modality encoder (see the module docstring).

    ``extra_losses`` computes and stashes the coefficients (it adds no loss);
    ``after_backward`` applies them. ``coefficients`` holds the last step's ``k_m`` and
    ``log_values`` the running means since the last call of ``k_m`` (``ogm_k_<modality>``)
    and of ``rho_m`` (``ogm_rho_<modality>``).

    Args:
        modalities: sorted modality names (mask columns); at least two.
        alpha: modulation strength >= 0.
        noise: add the GE noise.
        seed: the run seed (the noise of step ``t`` is drawn from ``(seed, t)``).
        coefficient: ``"eq10"`` (paper) or ``"continuous"``.
        scores: ``"head_share"`` (paper) or ``"masked_fuse"``.
        parameters: ``"all"`` encoder parameters or only ``"weights"`` (ndim >= 2).
        start_epoch: first epoch (1-based) with modulation.
        end_epoch: last epoch with modulation; ``None`` = until the end.
    """

    def __init__(
        self,
        modalities: Sequence[str],
        alpha: float,
        noise: bool,
        seed: int,
        *,
        coefficient: OGMCoefficient = "eq10",
        scores: OGMScores = "head_share",
        parameters: OGMParameters = "all",
        start_epoch: int = 1,
        end_epoch: int | None = None,
    ) -> None:
        if len(modalities) < 2:
            raise ValueError(f"`training.strategy.ogm_ge` needs at least two modalities, got {list(modalities)}.")
        if alpha < 0:
            raise ValueError(f"Expected `training.strategy.ogm_alpha` >= 0, got {alpha}.")
        for key, value, allowed in (
            ("ogm_coefficient", coefficient, OGMCoefficient),
            ("ogm_scores", scores, OGMScores),
            ("ogm_parameters", parameters, OGMParameters),
        ):
            if value not in get_args(allowed):
                raise ValueError(f"Expected `training.strategy.{key}` in {list(get_args(allowed))}, got `{value}`.")
        if start_epoch < 1 or (end_epoch is not None and end_epoch < start_epoch):
            raise ValueError(
                f"Expected 1 <= `training.strategy.ogm_start_epoch` <= `ogm_end_epoch`, got "
                f"{start_epoch} and {end_epoch}."
            )
        self.modalities = tuple(modalities)
        self.alpha = alpha
        self.noise = noise
        self.seed = seed
        self.coefficient: OGMCoefficient = coefficient
        self.scores: OGMScores = scores
        self.parameters: OGMParameters = parameters
        self.start_epoch, self.end_epoch = start_epoch, end_epoch
        self.epoch = 1
        self.step = 0
        self.coefficients: dict[str, float] = {m: 1.0 for m in self.modalities}
        self.ratios: dict[str, float] = {m: 1.0 for m in self.modalities}
        self._sums = {f"ogm_{kind}_{m}": 0.0 for kind in ("k", "rho") for m in self.modalities}
        self._count = 0

    @property
    def active(self) -> bool:
        """Whether the current epoch lies in the modulation window."""
        return self.start_epoch <= self.epoch and (self.end_epoch is None or self.epoch <= self.end_epoch)

    def on_epoch_start(self, epoch: int) -> None:
        self.epoch = epoch

    def transform_batch(self, batch: Batch, step: int) -> Batch:
        self.step = step
        return batch

    def extra_losses(self, model: nn.Module, output: ModelOutput, batch: Batch) -> dict[str, Tensor]:
        full = batch.mask.all(dim=1)  # [B] samples on which modalities can be compared
        self.coefficients = {m: 1.0 for m in self.modalities}
        if not self.active:
            return {}
        if bool(full.any()):
            embeddings = {m: output.embeddings[m][full] for m in self.modalities}
            scores = modality_scores(model, embeddings, batch.target[full], self.modalities, self.scores)
            self.ratios = discrepancy_ratios(scores)
            self.coefficients = ogm_coefficients(scores, self.alpha, self.coefficient)
            for m in self.modalities:
                self._sums[f"ogm_k_{m}"] += self.coefficients[m]
                self._sums[f"ogm_rho_{m}"] += self.ratios[m]
            self._count += 1
        _log.debug("OGM-GE step %d coefficients %s", self.step, self.coefficients)
        return {}

    @torch.no_grad()
    def after_backward(self, model: nn.Module) -> None:
        if not self.active:
            return
        encoders = encoder_modules(model, "ogm_ge")
        generator = seeded_generator(self.seed, self.step, _STREAM)
        for m in self.modalities:
            k = self.coefficients[m]
            for parameter in encoders[m].parameters():
                grad = parameter.grad
                if grad is None or (self.parameters == "weights" and grad.dim() < 2):
                    continue
                std = float(grad.std()) if grad.numel() > 1 else 0.0
                grad.mul_(k)
                if self.noise and std > 0:
                    noise = torch.randn(grad.shape, generator=generator, dtype=grad.dtype)
                    grad.add_(noise.to(grad.device), alpha=std)

    def log_values(self) -> dict[str, float]:
        if self._count == 0:
            return {}
        values = {name: total / self._count for name, total in self._sums.items()}
        self._sums = dict.fromkeys(self._sums, 0.0)
        self._count = 0
        return values
