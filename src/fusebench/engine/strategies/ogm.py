"""OGM-GE: on-the-fly gradient modulation with generalisation enhancement.

Peng, Wei, Deng, Wang and Hu, "Balanced multimodal learning via on-the-fly gradient
modulation", CVPR 2022 (Sec. 3.2-3.3). When one modality dominates the fused prediction,
the others' encoders receive little gradient and stay under-trained. Each step, OGM
measures how confident the model is with each modality's part of the prediction and slows
down the dominant modality's encoder; GE adds Gaussian noise to the encoder gradients to
recover the generalisation that the smaller steps would lose.

Per step, on the samples that have every modality (the only ones on which the modalities
can be compared):

- per-modality logits (``ogm_scores``):

  - ``"head_share"`` (the paper, Eq. 8, default): modality ``m``'s additive share of the
    fused logits, ``W_m z_m + b / M`` — the paper's ``W^a phi^a + b/2`` for a linear head
    over concatenated embeddings. In fusebench this exists for late ``sum`` fusion, whose
    logits are ``W (sum_m (P_m z_m + c_m)) + b``: the share of ``m`` is
    ``W (P_m z_m + c_m) + b / M``, and the shares add up to the fused logits. Other fusions
    have no such split and are rejected with this explanation;
  - ``"masked_fuse"`` (fusebench's variant for any fusion with ``fuse``): the fused logits
    with only ``m`` present (the missing-modality strategy fills the others);

- ``s_m = sum_i softmax(logits_m)_i[y_i]`` (Eq. 8-9);
- ``rho_m = s_m / mean_{u != m} s_u`` (two modalities: the paper's ``s_a / s_v``, Eq. 9;
  with more, fusebench compares each modality with the mean of the others);
- ``k_m`` (``ogm_coefficient``): ``"eq10"`` (default) ``1 - tanh(alpha * rho_m)`` when
  ``rho_m > 1``, else 1 — the paper's Eq. 10, which the authors' code also applies; or
  ``"continuous"`` ``1 - tanh(alpha * relu(rho_m - 1))``, fusebench's earlier variant that
  is continuous at ``rho = 1``;
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
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Literal, get_args

import torch
from torch import Tensor, nn

from fusebench.data.batch import Batch
from fusebench.data.patterns import pattern_mask
from fusebench.engine.strategies.base import Strategy, Stream, contract, encoder_modules, seeded_generator
from fusebench.errors import ConfigError
from fusebench.models.contract import EncodeFuseModel
from fusebench.models.fusion import SumFusion
from fusebench.models.multimodal import ModelOutput, MultimodalModel

OGMCoefficient = Literal["eq10", "continuous"]
OGMScores = Literal["head_share", "masked_fuse"]
OGMParameters = Literal["all", "weights"]

_STREAM = Stream.OGM_NOISE
_log = logging.getLogger(__name__)


def discrepancy_ratios(scores: Mapping[str, float]) -> dict[str, float]:
    """``rho_m = s_m / mean_{u != m} s_u`` (Peng et al., Eq. 9, for two modalities ``s_a / s_v``).

    >>> discrepancy_ratios({"audio": 30.0, "image": 10.0})
    {'audio': 3.0, 'image': 0.3333333333333333}
    """
    if len(scores) < 2:
        raise ValueError(f"Expected scores of at least two modalities, got {sorted(scores)}.")
    ratios: dict[str, float] = {}
    for m, score in sorted(scores.items()):
        others = sum(s for u, s in scores.items() if u != m) / (len(scores) - 1)
        if others > 0:
            ratios[m] = score / others
        else:
            ratios[m] = math.inf if score > 0 else 1.0
    return ratios


def ogm_coefficients(
    scores: Mapping[str, float], alpha: float, coefficient: OGMCoefficient = "eq10"
) -> dict[str, float]:
    """The modulation coefficient ``k_m`` of each modality from its score ``s_m``.

    ``"eq10"`` (Peng et al., Eq. 10): ``k_m = 1 - tanh(alpha * rho_m)`` if ``rho_m > 1``,
    else 1. ``"continuous"``: ``k_m = 1 - tanh(alpha * max(rho_m - 1, 0))``.

    >>> k = ogm_coefficients({"audio": 30.0, "image": 10.0}, alpha=0.5)  # rho_audio = 3
    >>> round(k["audio"], 4), k["image"]
    (0.0949, 1.0)
    >>> round(ogm_coefficients({"audio": 30.0, "image": 10.0}, 0.5, "continuous")["audio"], 4)
    0.2384
    """
    if alpha < 0:
        raise ValueError(f"Expected `alpha` >= 0, got {alpha}.")
    if coefficient not in get_args(OGMCoefficient):
        raise ValueError(f"Expected `coefficient` in {list(get_args(OGMCoefficient))}, got `{coefficient}`.")
    coefficients: dict[str, float] = {}
    for m, rho in discrepancy_ratios(scores).items():
        if coefficient == "eq10":
            coefficients[m] = 1.0 - math.tanh(alpha * rho) if rho > 1.0 else 1.0
        else:
            coefficients[m] = 1.0 - math.tanh(alpha * max(rho - 1.0, 0.0))
    return coefficients


def head_shares_check(model: nn.Module, modalities: Sequence[str]) -> None:
    """Raise unless ``head_shares`` is defined for ``model`` (checked when the strategy is built)."""
    _additive_parts(model)


def _additive_parts(model: nn.Module) -> tuple[SumFusion, nn.Linear]:
    """The ``SumFusion`` and linear head of a late-fusion model, or a ValueError that says why not."""
    inner = contract(model)
    if isinstance(inner, MultimodalModel) and isinstance(inner.fusion, SumFusion) and isinstance(inner.head, nn.Linear):
        return inner.fusion, inner.head
    name = type(inner.fusion if isinstance(inner, MultimodalModel) else inner).__name__
    raise ConfigError(
        f"`training.strategy.ogm_scores: head_share` (Peng et al., CVPR 2022, Eq. 8: each modality's "
        f"share W_m z_m + b/M of a linear head) needs logits that split into per-modality terms, which "
        f"fusebench's late `sum` fusion has; got `{name}`. Set `model.fusion.type` `late` with "
        f"`model.fusion.method` `sum`, or `training.strategy.ogm_scores` `masked_fuse` (fusebench's variant "
        f"for any fusion)."
    )


def head_shares(model: nn.Module, embeddings: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Each modality's additive share of the fused logits, ``W (P_m z_m + c_m) + b / M``.

    Defined for late ``sum`` fusion with a linear head (see the module docstring); computed
    without the fusion's dropout, so the shares add up to the eval-mode fused logits.

    Raises:
        ValueError: for a model whose logits do not split into per-modality terms.
    """
    fusion, head = _additive_parts(model)
    modalities = sorted(embeddings)
    bias = head.bias / len(modalities) if head.bias is not None else 0.0
    return {m: fusion.project[m](embeddings[m]) @ head.weight.T + bias for m in modalities}  # M x [N, C]


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


def fuse_of(model: nn.Module) -> Callable[[Mapping[str, Tensor], Tensor], Tensor]:
    """``model.fuse`` of a model that splits into ``encode``/``fuse``, or an error naming the strategy."""
    if not isinstance(model, EncodeFuseModel):
        raise ConfigError(
            f"`training.strategy.ogm_ge` needs a model with `fuse(embeddings, mask)` (late or "
            f"feature early fusion), got `{type(model).__name__}`."
        )
    return model.fuse


@torch.no_grad()
def modality_scores(
    model: nn.Module,
    embeddings: Mapping[str, Tensor],
    target: Tensor,
    modalities: Sequence[str],
    scores: OGMScores = "head_share",
) -> dict[str, float]:
    """``s_m``: summed softmax probability of the true class from modality ``m``'s logits.

    Runs in eval mode (no dropout, no running-statistics updates of the missing-modality
    strategy) on detached embeddings; ``scores`` picks the per-modality logits (module
    docstring).
    """
    detached = {m: z.detach() for m, z in embeddings.items()}
    rows = torch.arange(len(target), device=target.device)
    with _eval_mode(model):
        if scores == "head_share":
            logits = head_shares(model, detached)
        else:
            logits = {}
            fuse = fuse_of(model)
            for m in modalities:
                mask = pattern_mask((m,), tuple(modalities), len(target)).to(target.device)
                logits[m] = fuse(detached, mask)
    return {m: float(logits[m].float().softmax(dim=1)[rows, target].sum()) for m in modalities}


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
