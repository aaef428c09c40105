"""Seeded train-time missingness: which modalities each sample lacks.

``missing_rate[m]`` is the probability that a sample lacks ``m`` — the realised marginal
rate, not a rate before some correction. Because a sample must keep at least one
modality, independent Bernoulli draws at the configured rates cannot be used as they are
(rejecting all-missing rows would lower every realised rate). Instead we draw
independent Bernoulli masks at *adjusted* rates ``q`` and resample the all-missing rows,
choosing ``q`` so that the marginals conditioned on "not all missing" equal the
configured rates: ``p_m = (q_m - Q) / (1 - Q)`` with ``Q = prod(q)``. When no such ``q``
exists (e.g. two modalities at 0.6 and 0.6, whose rates add above 1 while both can never
be missing together) the rates are rejected with an error that says so.

In the spirit of iMML's ``Amputer``: an explicit generator, ``draw(n, epoch)`` is a pure
function of (seed, epoch, n), so any epoch's masks can be recomputed and recorded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from fusebench.data.patterns import all_patterns, parse_pattern, pattern_name
from fusebench.seeding import Stream, seeded_generator

_MAX_ITERATIONS = 10_000


def adjusted_rates(rates: Sequence[float]) -> list[float]:
    """Per-modality Bernoulli rates whose conditional (not-all-missing) marginals equal ``rates``.

    Solves ``q_m = p_m (1 - Q) + Q`` with ``Q = prod(q)`` by fixed-point iteration.

    Raises:
        ValueError: if no valid ``q`` exists for these rates.
    """
    p = torch.tensor(rates, dtype=torch.float64)
    if len(p) == 1:
        if float(p[0]) > 0:
            raise ValueError(f"A single modality cannot be missing; got missing rate {float(p[0])}.")
        return [0.0]
    q = p.clone()
    for _ in range(_MAX_ITERATIONS):
        total = torch.prod(q)
        nxt = p * (1 - total) + total
        if torch.max(torch.abs(nxt - q)) < 1e-13:
            q = nxt
            break
        q = nxt
    total = torch.prod(q)
    if bool((q >= 1).any()) or not torch.allclose(p, (q - total) / (1 - total), atol=1e-9):
        raise ValueError(
            f"Missing rates {list(rates)} cannot all hold when a sample must keep at least one modality "
            f"(with two modalities the rates must add up to less than 1, since both can never be missing "
            f"together); lower some rates, or give an explicit mixture with `data.missing_patterns`."
        )
    return q.tolist()


class MCARAmputer:
    """Draws presence masks ``[n, M]`` missing completely at random, never all-missing.

    Args:
        modalities: modality names (sorted internally; mask columns follow that order).
        missing_rate: modality -> probability that a sample lacks it (absent keys mean 0).
        seed: base seed; each epoch draws from ``seeded_generator(seed, epoch, Stream.MISSING_MASKS)``.
    """

    def __init__(self, modalities: Sequence[str], missing_rate: Mapping[str, float], seed: int) -> None:
        self.modalities = tuple(sorted(modalities))
        unknown = sorted(set(missing_rate) - set(self.modalities))
        if unknown:
            raise ValueError(f"Expected missing rates for modalities {list(self.modalities)}, got unknown {unknown}.")
        self.rates = [float(missing_rate.get(m, 0.0)) for m in self.modalities]
        self.adjusted = adjusted_rates(self.rates) if any(self.rates) else [0.0] * len(self.modalities)
        self.seed = seed

    @property
    def active(self) -> bool:
        return any(r > 0 for r in self.rates)

    def draw(self, n: int, epoch: int = 0) -> Tensor:
        generator = seeded_generator(self.seed, epoch, Stream.MISSING_MASKS)
        q = torch.tensor(self.adjusted, dtype=torch.float64)
        absent = torch.rand(n, len(q), generator=generator, dtype=torch.float64) < q
        redo = absent.all(dim=1)
        while bool(redo.any()):  # resample all-missing rows: conditions the draw on "not all missing"
            absent[redo] = torch.rand(int(redo.sum()), len(q), generator=generator, dtype=torch.float64) < q
            redo = absent.all(dim=1)
        return ~absent

    def layout(self, n: int, epoch: int = 0) -> tuple[Tensor, Tensor]:
        """Every data row once, with this epoch's masks (see ``TensorLoader``)."""
        return torch.arange(n), self.draw(n, epoch)


class PatternMixtureAmputer:
    """Draws each sample's pattern from an explicit mixture, e.g. ``{audio+image: 0.5, audio: 0.5}``."""

    def __init__(self, modalities: Sequence[str], weights: Mapping[str, float], seed: int) -> None:
        self.modalities = tuple(sorted(modalities))
        self.patterns = [parse_pattern(name, self.modalities) for name in weights]
        w = torch.tensor([float(weights[name]) for name in weights], dtype=torch.float64)
        if bool((w < 0).any()) or float(w.sum()) <= 0:
            raise ValueError(
                f"Expected non-negative `missing_patterns` weights with a positive sum, got {dict(weights)}."
            )
        self.probabilities = w / w.sum()
        self.seed = seed

    active = True

    def draw(self, n: int, epoch: int = 0) -> Tensor:
        generator = seeded_generator(self.seed, epoch, Stream.MISSING_MASKS)
        choice = torch.multinomial(self.probabilities, n, replacement=True, generator=generator)  # [n]
        table = torch.tensor([[m in p for m in self.modalities] for p in self.patterns], dtype=torch.bool)
        return table[choice]

    def layout(self, n: int, epoch: int = 0) -> tuple[Tensor, Tensor]:
        """Every data row once, with this epoch's masks (see ``TensorLoader``)."""
        return torch.arange(n), self.draw(n, epoch)


class FixedUnpairing:
    """MMPT's train-time missingness (``../shared/papers/004_d6fb5191247edfc1.txt``, section 2.2).

    "For train-time modality loss, we collect all the available unimodal data by splitting
    the paired data and redistributing it with the unpaired inputs. Then, we train a model
    on the aggregate unimodal and multimodal data." The masks are drawn once (epoch 0 of
    ``source``) and kept for every epoch; each sample that lacks a modality there is a split
    pair: besides the sample with its remaining modalities, each of its absent modalities
    becomes a unimodal sample of its own, so no training input is thrown away. A fixed
    fraction ``missing_rate[m]`` of the pairs is thus unpaired in ``m``.

    Args:
        source: the amputer that decides which pairs are split (drawn once).
    """

    active = True

    def __init__(self, source: MCARAmputer | PatternMixtureAmputer) -> None:
        self.source = source
        self.modalities = source.modalities
        self._layout: tuple[int, Tensor, Tensor] | None = None

    def layout(self, n: int, epoch: int = 0) -> tuple[Tensor, Tensor]:
        """``rows [K]`` (the data row of each training sample) and ``mask [K, M]``; the same every epoch.

        The first ``n`` entries are the pairs as amputed (``rows = 0..n-1``); then, for each
        absent (row, modality) in row order, a unimodal sample of that row.
        """
        if self._layout is None or self._layout[0] != n:
            paired = self.source.draw(n, 0)  # [n, M]
            absent_rows, absent_columns = torch.nonzero(~paired, as_tuple=True)  # row-major order
            unimodal = torch.zeros(len(absent_rows), len(self.modalities), dtype=torch.bool)
            unimodal[torch.arange(len(absent_rows)), absent_columns] = True
            rows = torch.cat([torch.arange(n), absent_rows])
            self._layout = (n, rows, torch.cat([paired, unimodal]))
        return self._layout[1], self._layout[2]


def realised_rates(mask: Tensor, modalities: Sequence[str]) -> dict[str, object]:
    """Per-modality absent fraction and per-pattern counts of a drawn mask (recorded in runs)."""
    missing = (~mask).double().mean(dim=0)
    counts: dict[str, int] = {}
    for pattern in all_patterns(modalities):
        row = torch.tensor([m in pattern for m in modalities], dtype=torch.bool)
        counts[pattern_name(pattern)] = int((mask == row).all(dim=1).sum())
    return {
        "missing_rate": {m: float(missing[j]) for j, m in enumerate(modalities)},
        "pattern_counts": counts,
        "samples": int(mask.shape[0]),
    }
