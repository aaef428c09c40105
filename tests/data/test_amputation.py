"""Train-time MCAR: rates mean what they say, no sample loses everything, draws are seeded."""

from __future__ import annotations

import math

import pytest
import torch

from fusebench.data.amputation import MCARAmputer, PatternMixtureAmputer, adjusted_rates, realised_rates

N = 10_000


@pytest.mark.parametrize(
    "rates",
    [
        pytest.param({"audio": 0.2, "image": 0.0}, id="audio-0.2"),
        pytest.param({"audio": 0.9, "image": 0.0}, id="audio-0.9"),
        pytest.param({"audio": 0.2, "image": 0.7}, id="both"),
        pytest.param({"audio": 0.3, "image": 0.3, "text": 0.5}, id="three"),
    ],
)
def test_realised_rates_match_configured_within_sampling_error(rates: dict[str, float]) -> None:
    modalities = tuple(sorted(rates))
    mask = MCARAmputer(modalities, rates, seed=3).draw(N, epoch=0)
    realised = realised_rates(mask, modalities)["missing_rate"]
    for modality, rate in rates.items():
        tolerance = 4 * math.sqrt(max(rate * (1 - rate), 1e-12) / N) + 1e-12
        assert abs(realised[modality] - rate) <= tolerance, (modality, realised[modality], rate)
    assert bool(mask.any(dim=1).all()), "a sample lost every modality"


def test_adjusted_rates_solve_the_conditional_equation() -> None:
    p = [0.3, 0.3, 0.5]
    q = adjusted_rates(p)
    total = math.prod(q)
    assert [(qm - total) / (1 - total) for qm in q] == pytest.approx(p, abs=1e-9)


def test_impossible_rates_are_rejected_with_a_hint() -> None:
    with pytest.raises(ValueError, match=r"cannot all hold.*missing_patterns"):
        MCARAmputer(("audio", "image"), {"audio": 0.6, "image": 0.6}, seed=0)


def test_draws_are_seeded_per_epoch() -> None:
    amputer = MCARAmputer(("audio", "image"), {"audio": 0.4}, seed=1)
    assert torch.equal(amputer.draw(500, 2), amputer.draw(500, 2))
    assert not torch.equal(amputer.draw(500, 2), amputer.draw(500, 3))


def test_pattern_mixture_frequencies() -> None:
    mixture = PatternMixtureAmputer(("audio", "image"), {"audio+image": 0.5, "audio": 0.25, "image": 0.25}, seed=0)
    counts = realised_rates(mixture.draw(N), ("audio", "image"))["pattern_counts"]
    for name, weight in {"audio+image": 0.5, "audio": 0.25, "image": 0.25}.items():
        assert abs(counts[name] / N - weight) < 4 * math.sqrt(weight * (1 - weight) / N)


def test_fixed_unpairing_splits_a_fixed_set_of_pairs_into_their_unimodal_parts() -> None:
    """MMPT section 2.2: every modality part of every row is trained on exactly once, a fixed fraction unpaired."""
    from fusebench.data.amputation import FixedUnpairing
    from fusebench.data.loader import TensorLoader

    n, rate = 2000, 0.3
    source = FixedUnpairing(MCARAmputer(["audio", "image"], {"audio": rate}, seed=5))
    rows, mask = source.layout(n, epoch=0)
    again_rows, again_mask = source.layout(n, epoch=7)
    assert torch.equal(rows, again_rows) and torch.equal(mask, again_mask)  # fixed, not redrawn per epoch
    paired = mask[:n]
    assert torch.equal(rows[:n], torch.arange(n))
    split = ~paired[:, 0]  # pairs that lost their audio in the paired view ...
    assert abs(float(split.double().mean()) - rate) < 0.03
    extra_rows, extra_mask = rows[n:], mask[n:]
    assert torch.equal(extra_rows, torch.nonzero(split).flatten())  # ... give back their audio as audio-only samples
    assert extra_mask.tolist() == [[True, False]] * int(split.sum())
    for column in range(2):  # every part of every row exactly once
        counts = torch.bincount(rows[mask[:, column]], minlength=n)
        assert bool((counts == 1).all())
    loader = TensorLoader(
        {"audio": torch.arange(n).float(), "image": torch.arange(n).float()},
        torch.arange(n),
        batch_size=256,
        shuffle=True,
        masks=source,
    )
    seen = torch.cat([batch.target for batch in loader])
    assert loader.num_samples == len(rows) == len(seen) and len(loader) == (len(rows) + 255) // 256
    assert torch.equal(torch.sort(seen).values, torch.sort(rows).values)
