"""Contrastive losses against hand-computed values and torch's cross-entropy."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F
from tests._helpers.fusion_cases import THREE_MODALITIES, mask_for, pattern_params, single_thread
from torch.testing import assert_close

from fusebench.models.losses import (
    HardNegativeContrastiveLoss,
    InfoNCELoss,
    build_contrastive_loss,
    hard_negative_contrastive_loss,
    info_nce_loss,
    present_pairs,
)


@pytest.fixture(autouse=True)
def _seed() -> Iterator[None]:
    torch.manual_seed(0)
    with single_thread():
        yield


def _reference_hard_negative(
    anchor: torch.Tensor, other: torch.Tensor, temperature: float, k: int, eps: float, symmetric: bool = True
) -> float:
    """The source formula in plain Python: -log(pos / (pos + sum of k hardest negatives + eps))."""
    a, o = anchor.tolist(), other.tolist()

    def cosine(u: list[float], v: list[float]) -> float:
        dot = sum(x * y for x, y in zip(u, v, strict=True))
        return dot / (math.sqrt(sum(x * x for x in u)) * math.sqrt(sum(y * y for y in v)))

    sims = [[cosine(u, v) / temperature for v in o] for u in a]

    def mean_rows(matrix: list[list[float]]) -> float:
        losses = []
        for i, row in enumerate(matrix):
            negatives = sorted((s for j, s in enumerate(row) if j != i), reverse=True)[:k]
            positive = math.exp(row[i])
            losses.append(-math.log(positive / (positive + sum(map(math.exp, negatives)) + eps)))
        return sum(losses) / len(losses)

    rows = mean_rows(sims)
    if not symmetric:
        return rows
    return (rows + mean_rows([list(column) for column in zip(*sims, strict=True)])) / 2


def test_hard_negative_loss_on_a_hand_computed_example() -> None:
    # Unit vectors: cos(anchor_i, other_j) is the matrix [[1, 0, 0], [0, 1, -1], [-1, 0, 0]].
    anchor = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    other = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    # tau = 0.5 doubles the similarities; with k = 1 every row's and column's hardest negative
    # has similarity 0, positives are 2, 2 and 0.
    expected = (2 * math.log(1 + math.exp(-2)) + math.log(2)) / 3
    loss = hard_negative_contrastive_loss(anchor, other, temperature=0.5, k=1, eps=0.0)
    assert_close(loss, torch.tensor(expected))


def test_hard_negative_defaults_are_the_papers_one_direction_loss_with_eps_1e_7() -> None:
    # 003_*.txt Sec. 3.2: sim = exp(cos / tau), loss_i = -log(pos_i / (pos_i + neg_sum_i + eps)) over the
    # anchor rows. Unit vectors with o_2 = (r, r), r = sqrt(1/2): cos rows [1, 0, r], [0, 1, r], [-1, 0, -r].
    r = math.sqrt(0.5)
    anchor = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    other = torch.tensor([[1.0, 0.0], [0.0, 1.0], [r, r]])
    eps = 1e-7  # tau = 1, k = 1: rows 0 and 1 keep the negative r, row 2 the negative 0
    row_01 = -math.log(math.e / (math.e + math.exp(r) + eps))
    row_2 = -math.log(math.exp(-r) / (math.exp(-r) + 1.0 + eps))
    loss = hard_negative_contrastive_loss(anchor, other, temperature=1.0, k=1)
    assert_close(loss, torch.tensor((2 * row_01 + row_2) / 3))
    assert float(loss) != pytest.approx(float(hard_negative_contrastive_loss(anchor, other, 1.0, k=1, symmetric=True)))
    assert HardNegativeContrastiveLoss().eps == 1e-7 and HardNegativeContrastiveLoss().symmetric is False


@pytest.mark.parametrize("symmetric", [True, False], ids=["symmetric", "one-way"])
@pytest.mark.parametrize("k", [1, 2, 4])
def test_hard_negative_loss_matches_the_formula(k: int, symmetric: bool) -> None:
    anchor, other = torch.randn(6, 5), torch.randn(6, 5)
    loss = hard_negative_contrastive_loss(anchor, other, temperature=0.3, k=k, eps=1e-3, symmetric=symmetric)
    expected = _reference_hard_negative(anchor, other, 0.3, k, 1e-3, symmetric)
    assert_close(loss, torch.tensor(expected), rtol=1e-5, atol=1e-6)


def test_symmetric_is_the_mean_of_both_directions() -> None:
    anchor, other = torch.randn(5, 4), torch.randn(5, 4)
    one_way = [
        hard_negative_contrastive_loss(a, b, k=2, symmetric=False) for a, b in ((anchor, other), (other, anchor))
    ]
    assert_close(hard_negative_contrastive_loss(anchor, other, k=2, symmetric=True), (one_way[0] + one_way[1]) / 2)


@pytest.mark.parametrize("symmetric", [True, False], ids=["symmetric", "one-way"])
def test_k_of_batch_minus_one_is_the_all_negatives_form(symmetric: bool) -> None:
    anchor, other = torch.randn(5, 4), torch.randn(5, 4)
    all_negatives = hard_negative_contrastive_loss(anchor, other, 0.2, k=4, eps=0.0, symmetric=symmetric)
    assert_close(all_negatives, info_nce_loss(anchor, other, 0.2, symmetric=symmetric))
    clipped = hard_negative_contrastive_loss(anchor, other, 0.2, k=50, eps=0.0, symmetric=symmetric)
    assert_close(clipped, all_negatives)


def test_single_sample_has_no_negatives() -> None:
    x = torch.randn(1, 3)
    assert_close(hard_negative_contrastive_loss(x, x, k=5, eps=0.0), torch.tensor(0.0))


@pytest.mark.parametrize("loss", [hard_negative_contrastive_loss, info_nce_loss], ids=["hard", "infonce"])
def test_batch_without_present_pairs_gives_zero(loss) -> None:
    empty = torch.randn(0, 4, requires_grad=True)
    value = loss(empty, torch.randn(0, 4))
    value.backward()
    assert float(value.detach()) == 0.0 and empty.grad is not None


@pytest.mark.parametrize("symmetric", [True, False], ids=["symmetric", "one-way"])
def test_info_nce_matches_torch_cross_entropy(symmetric: bool) -> None:
    anchor, other = torch.randn(8, 6), torch.randn(8, 6)
    logits = F.normalize(anchor, dim=1) @ F.normalize(other, dim=1).T / 0.07
    labels = torch.arange(8)
    expected = F.cross_entropy(logits, labels)
    if symmetric:
        expected = (expected + F.cross_entropy(logits.T, labels)) / 2
    assert_close(info_nce_loss(anchor, other, symmetric=symmetric), expected)


@pytest.mark.parametrize(
    "loss",
    [
        pytest.param(lambda a, b: hard_negative_contrastive_loss(a, b, temperature=1e-3), id="hard"),
        pytest.param(lambda a, b: info_nce_loss(a, b, temperature=1e-3), id="infonce"),
    ],
)
def test_small_temperatures_stay_finite(loss) -> None:
    anchor = torch.randn(4, 3, requires_grad=True)
    value = loss(anchor, anchor.detach() + 0.01 * torch.randn(4, 3))
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(anchor.grad).all()


def test_modules_wrap_the_functions() -> None:
    anchor, other = torch.randn(6, 4), torch.randn(6, 4)
    assert_close(
        HardNegativeContrastiveLoss(0.2, k=3)(anchor, other), hard_negative_contrastive_loss(anchor, other, 0.2, k=3)
    )
    assert_close(InfoNCELoss(0.1, symmetric=False)(anchor, other), info_nce_loss(anchor, other, 0.1, symmetric=False))
    assert isinstance(build_contrastive_loss("hard_negative", k=2), HardNegativeContrastiveLoss)
    assert build_contrastive_loss("infonce", temperature=0.5).temperature == 0.5


@pytest.mark.parametrize(
    ("call", "message"),
    [
        pytest.param(
            lambda: build_contrastive_loss("triplet"),
            r"`kind` in \['hard_negative', 'infonce'\], got `triplet`",
            id="kind",
        ),
        pytest.param(
            lambda: info_nce_loss(torch.randn(3, 2), torch.randn(4, 2)),
            r"same shape \[B, D\], got \(3, 2\) and \(4, 2\)",
            id="shape",
        ),
        pytest.param(
            lambda: info_nce_loss(torch.randn(3, 2), torch.randn(3, 2), temperature=0.0),
            r"`temperature` > 0, got 0.0",
            id="temperature",
        ),
        pytest.param(
            lambda: hard_negative_contrastive_loss(torch.randn(3, 2), torch.randn(3, 2), k=0),
            r"`k` >= 1, got 0",
            id="k",
        ),
        pytest.param(lambda: HardNegativeContrastiveLoss(k=0), r"`k` >= 1 .* got .*k=0", id="module-k"),
        pytest.param(
            lambda: present_pairs(torch.ones(2, 3, dtype=torch.bool), 1, 1),
            r"two different columns `i`, `j` in 0\.\.2, got 1, 1",
            id="pairs",
        ),
    ],
)
def test_invalid_arguments_raise(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("pattern", pattern_params(THREE_MODALITIES))
def test_present_pairs_for_every_pattern(pattern: tuple[str, ...]) -> None:
    mask = mask_for(pattern, THREE_MODALITIES, 2)
    for i, first in enumerate(THREE_MODALITIES):
        for j, second in enumerate(THREE_MODALITIES):
            if i != j:
                expected = first in pattern and second in pattern
                assert present_pairs(mask, i, j).tolist() == [expected, expected]
