"""What an absent modality's embedding becomes before late fusion.

The mask is the truth about presence: whatever the encoder produced for an absent
modality is replaced here, so models never learn from inputs a sample does not have.
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from collections.abc import Mapping
from typing import Literal, get_args

import torch
from torch import Tensor, nn

MissingStrategyName = Literal["zero", "learned", "mean"]


class MissingStrategy(nn.Module, metaclass=ABCMeta):
    """Replace each absent modality's embedding; column ``j`` of ``mask`` is ``modalities[j]``."""

    def __init__(self, input_dims: Mapping[str, int]) -> None:
        super().__init__()
        self.modalities = tuple(sorted(input_dims))
        self.input_dims = dict(sorted(input_dims.items()))

    @abstractmethod
    def replacement(self, modality: str, like: Tensor) -> Tensor:
        """The embedding ``[D]`` that stands in for an absent ``modality``."""

    def observe(self, embeddings: Mapping[str, Tensor], mask: Tensor) -> None:
        """Hook for strategies that learn from present embeddings during training."""

    def forward(self, embeddings: Mapping[str, Tensor], mask: Tensor) -> dict[str, Tensor]:
        if self.training:
            self.observe(embeddings, mask)
        out: dict[str, Tensor] = {}
        for j, modality in enumerate(self.modalities):
            z = embeddings[modality]  # [B, D]
            present = mask[:, j].unsqueeze(1)  # [B, 1]
            out[modality] = torch.where(present, z, self.replacement(modality, z).to(z.dtype))
        return out


class ZeroEmbedding(MissingStrategy):
    """A zero vector, as in the thesis."""

    def replacement(self, modality: str, like: Tensor) -> Tensor:
        return torch.zeros(like.shape[1], device=like.device, dtype=like.dtype)


class LearnedToken(MissingStrategy):
    """A learned per-modality vector, trained with the rest of the model."""

    def __init__(self, input_dims: Mapping[str, int]) -> None:
        super().__init__(input_dims)
        self.tokens = nn.ParameterDict({m: nn.Parameter(torch.zeros(d)) for m, d in self.input_dims.items()})

    def replacement(self, modality: str, like: Tensor) -> Tensor:
        out: Tensor = self.tokens[modality]
        return out


class TrainingMeanEmbedding(MissingStrategy):
    """The mean of the modality's present embeddings over all training batches seen so far.

    Kept as buffers so it is saved with checkpoints and frozen at evaluation.
    """

    def __init__(self, input_dims: Mapping[str, int]) -> None:
        super().__init__(input_dims)
        for m, d in self.input_dims.items():
            self.register_buffer(f"sum_{m}", torch.zeros(d, dtype=torch.float64))
            self.register_buffer(f"count_{m}", torch.zeros((), dtype=torch.float64))

    @torch.no_grad()
    def observe(self, embeddings: Mapping[str, Tensor], mask: Tensor) -> None:
        for j, m in enumerate(self.modalities):
            present = embeddings[m][mask[:, j]]
            self.get_buffer(f"sum_{m}").add_(present.detach().double().sum(dim=0))
            self.get_buffer(f"count_{m}").add_(present.shape[0])

    def replacement(self, modality: str, like: Tensor) -> Tensor:
        count = self.get_buffer(f"count_{modality}").clamp(min=1.0)
        return (self.get_buffer(f"sum_{modality}") / count).to(like.dtype)


_STRATEGIES: dict[str, type[MissingStrategy]] = {
    "zero": ZeroEmbedding,
    "learned": LearnedToken,
    "mean": TrainingMeanEmbedding,
}


def build_missing_strategy(name: str, input_dims: Mapping[str, int]) -> MissingStrategy:
    if name not in _STRATEGIES:
        raise ValueError(f"Expected missing strategy in {list(get_args(MissingStrategyName))}, got `{name}`.")
    return _STRATEGIES[name](input_dims)
