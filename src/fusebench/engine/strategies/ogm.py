"""OGM-GE: on-the-fly gradient modulation with generalisation enhancement.

Peng, Wei, Deng, Wang and Hu, "Balanced multimodal learning via on-the-fly gradient
modulation", CVPR 2022. When one modality dominates the fused prediction, the others'
encoders receive little gradient and stay under-trained. Each step, OGM measures how
confident the model is with each modality alone and slows down the dominant modality's
encoder; GE adds Gaussian noise to the encoder gradients to recover the generalisation
that the smaller steps would lose.

Per step, on the samples that have every modality (the only ones on which the modalities
can be compared):

- ``s_m = sum_i softmax(fuse(z, only m present))_i[y_i]`` (the paper's per-modality score,
  computed generically through the model's ``fuse`` with a one-modality pattern mask,
  so any late fusion works, not only a split concat layer);
- ``rho_m = s_m / mean_{u != m} s_u`` (two modalities: the paper's ``s_a / s_v``; with
  more, fusebench compares each modality with the mean of the others);
- ``k_m = 1 - tanh(alpha * relu(rho_m - 1))``: below 1 only for a dominant modality (the
  paper's Eq. 10; the authors' code applies ``relu(rho_m)`` without the ``- 1``);
- after backward, every gradient ``g`` of ``model.encoders[m]`` becomes
  ``k_m * g + N(0, std(g)^2)``, the noise drawn for every modality as in the authors' code
  (``ogm_noise: false`` gives plain OGM).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from fusebench.data.batch import Batch
from fusebench.data.patterns import pattern_mask
from fusebench.engine.strategies.base import Strategy, encoder_modules, seeded_generator
from fusebench.models.multimodal import ModelOutput

_STREAM = 2  # generator stream of this strategy (see ``seeded_generator``)
_log = logging.getLogger(__name__)


def ogm_coefficients(scores: Mapping[str, float], alpha: float) -> dict[str, float]:
    """``k_m = 1 - tanh(alpha * relu(rho_m - 1))`` with ``rho_m = s_m / mean_{u != m} s_u``.

    >>> k = ogm_coefficients({"audio": 30.0, "image": 10.0}, alpha=0.5)
    >>> round(k["audio"], 4), k["image"]
    (0.2384, 1.0)
    """
    if alpha < 0:
        raise ValueError(f"Expected `alpha` >= 0, got {alpha}.")
    if len(scores) < 2:
        raise ValueError(f"Expected scores of at least two modalities, got {sorted(scores)}.")
    coefficients: dict[str, float] = {}
    for m, score in sorted(scores.items()):
        others = sum(s for u, s in scores.items() if u != m) / (len(scores) - 1)
        if others > 0:
            ratio = score / others
        else:
            ratio = math.inf if score > 0 else 1.0
        coefficients[m] = 1.0 - math.tanh(alpha * max(ratio - 1.0, 0.0))
    return coefficients


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode inside, then every submodule's own mode back (frozen encoders stay in eval)."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


@torch.no_grad()
def modality_scores(model: nn.Module, embeddings: Mapping[str, Tensor], target: Tensor,
                    modalities: Sequence[str]) -> dict[str, float]:
    """``s_m``: summed softmax probability of the true class with only ``m`` present.

    Runs ``fuse`` in eval mode (no dropout, no running-statistics updates of the
    missing-modality strategy) on detached embeddings.
    """
    detached = {m: z.detach() for m, z in embeddings.items()}
    rows = torch.arange(len(target), device=target.device)
    scores: dict[str, float] = {}
    with _eval_mode(model):
        for m in modalities:
            mask = pattern_mask((m,), tuple(modalities), len(target)).to(target.device)
            probabilities = model.fuse(detached, mask).float().softmax(dim=1)  # [N, C]
            scores[m] = float(probabilities[rows, target].sum())
    return scores


class OGMGE(Strategy):
    """Gradient modulation per modality encoder (see the module docstring).

    ``extra_losses`` computes and stashes the coefficients (it adds no loss);
    ``after_backward`` applies them. ``coefficients`` holds the last step's ``k_m`` and
    ``log_values`` their running mean since the last call, as ``ogm_k_<modality>``.

    Args:
        modalities: sorted modality names (mask columns); at least two.
        alpha: modulation strength >= 0.
        noise: add the GE noise.
        seed: the run seed (the noise of step ``t`` is drawn from ``(seed, t)``).
    """

    def __init__(self, modalities: Sequence[str], alpha: float, noise: bool, seed: int) -> None:
        if len(modalities) < 2:
            raise ValueError(
                f"`training.strategy.ogm_ge` needs at least two modalities, got {list(modalities)}."
            )
        if alpha < 0:
            raise ValueError(f"Expected `training.strategy.ogm_alpha` >= 0, got {alpha}.")
        self.modalities = tuple(modalities)
        self.alpha = alpha
        self.noise = noise
        self.seed = seed
        self.step = 0
        self.coefficients: dict[str, float] = {m: 1.0 for m in self.modalities}
        self._sums = {m: 0.0 for m in self.modalities}
        self._count = 0

    def transform_batch(self, batch: Batch, step: int) -> Batch:
        self.step = step
        return batch

    def extra_losses(self, model: nn.Module, output: ModelOutput, batch: Batch) -> dict[str, Tensor]:
        full = batch.mask.all(dim=1)  # [B] samples on which modalities can be compared
        if bool(full.any()):
            embeddings = {m: output.embeddings[m][full] for m in self.modalities}
            scores = modality_scores(model, embeddings, batch.target[full], self.modalities)
            self.coefficients = ogm_coefficients(scores, self.alpha)
        else:
            self.coefficients = {m: 1.0 for m in self.modalities}
        for m, k in self.coefficients.items():
            self._sums[m] += k
        self._count += 1
        _log.debug("OGM-GE step %d coefficients %s", self.step, self.coefficients)
        return {}

    @torch.no_grad()
    def after_backward(self, model: nn.Module) -> None:
        encoders = encoder_modules(model, "ogm_ge")
        generator = seeded_generator(self.seed, self.step, _STREAM)
        for m in self.modalities:
            k = self.coefficients[m]
            for parameter in encoders[m].parameters():
                grad = parameter.grad
                if grad is None:
                    continue
                std = float(grad.std()) if grad.numel() > 1 else 0.0
                grad.mul_(k)
                if self.noise and std > 0:
                    noise = torch.randn(grad.shape, generator=generator, dtype=grad.dtype)
                    grad.add_(noise.to(grad.device), alpha=std)

    def log_values(self) -> dict[str, float]:
        if self._count == 0:
            return {}
        values = {f"ogm_k_{m}": total / self._count for m, total in self._sums.items()}
        self._sums = {m: 0.0 for m in self.modalities}
        self._count = 0
        return values
