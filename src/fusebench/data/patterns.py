"""Modality patterns: the non-empty subsets of modalities a sample can have.

A pattern is the sorted tuple of present modality names and prints as ``audio+image``.
Patterns are never keyed by initials, since two modalities may share a letter.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import combinations

import torch
from torch import Tensor

Pattern = tuple[str, ...]
PATTERN_SEPARATOR = "+"


def all_patterns(modalities: Iterable[str]) -> list[Pattern]:
    """Every non-empty subset of ``modalities``, largest first, then by name.

    >>> all_patterns(["image", "audio"])
    [('audio', 'image'), ('audio',), ('image',)]
    """
    names = sorted(set(modalities))
    if not names:
        raise ValueError("Expected at least one modality, got none.")
    patterns: list[Pattern] = []
    for size in range(len(names), 0, -1):
        patterns.extend(combinations(names, size))
    return patterns


def pattern_name(pattern: Iterable[str]) -> str:
    """``('audio', 'image')`` -> ``'audio+image'``: the one way a pattern is written.

    >>> pattern_name(("image", "audio"))
    'audio+image'
    """
    return PATTERN_SEPARATOR.join(sorted(pattern))


def pattern_names(modalities: Iterable[str]) -> list[str]:
    """The names of :func:`all_patterns`, in the same order.

    >>> pattern_names(["audio", "image"])
    ['audio+image', 'audio', 'image']
    """
    return [pattern_name(p) for p in all_patterns(modalities)]


def pattern_modalities(name: str) -> Pattern:
    """``'audio+image'`` -> ``('audio', 'image')``, unchecked (:func:`parse_pattern` checks a user's name).

    >>> pattern_modalities("image+audio")
    ('audio', 'image')
    """
    return tuple(sorted(name.split(PATTERN_SEPARATOR)))


def parse_pattern(name: str, modalities: Sequence[str]) -> Pattern:
    """``'audio+image'`` -> ``('audio', 'image')``, checked against ``modalities``."""
    parts = tuple(sorted(p.strip() for p in name.split(PATTERN_SEPARATOR) if p.strip()))
    unknown = [p for p in parts if p not in modalities]
    if not parts or unknown or len(set(parts)) != len(parts):
        raise ValueError(
            f"Expected a pattern such as `{pattern_name(modalities)}` made of modalities "
            f"{sorted(modalities)}, got `{name}`."
        )
    return parts


def pattern_mask(pattern: Pattern, modalities: Sequence[str], batch_size: int) -> Tensor:
    """``[batch_size, M]`` bool mask in which every sample has exactly ``pattern``."""
    row = torch.tensor([m in pattern for m in modalities], dtype=torch.bool)
    return row.unsqueeze(0).expand(batch_size, -1).clone()


def mask_to_pattern_index(mask: Tensor, modalities: Sequence[str]) -> Tensor:
    """``[B]`` long: each sample's position in ``all_patterns(modalities)``.

    Raises:
        ValueError: if a sample has no modality at all.
    """
    if bool((~mask.any(dim=1)).any()):
        raise ValueError("Found a sample with every modality missing; a pattern must be non-empty.")
    patterns = all_patterns(modalities)
    weights = 2 ** torch.arange(len(modalities), device=mask.device)
    codes = (mask.long() * weights).sum(dim=1)  # [B] bit code of the present set
    lookup = torch.full((2 ** len(modalities),), -1, dtype=torch.long, device=mask.device)
    for index, pattern in enumerate(patterns):
        code = sum(2**j for j, m in enumerate(modalities) if m in pattern)
        lookup[code] = index
    return lookup[codes]
