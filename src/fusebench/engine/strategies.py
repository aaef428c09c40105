"""Training strategies selected in ``training.strategy`` (none configured -> an empty list)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from fusebench.config import RunConfig


def build_strategies(config: RunConfig, model: nn.Module, modalities: Sequence[str]) -> list:
    return []
