"""Linear CKA (Kornblith et al. 2019) against its definition, a hand-worked example and its invariances."""

from __future__ import annotations

import math

import pytest
import torch

from fusebench.engine.cka import hsic_cka, linear_cka


def _features(n: int, p: int, seed: int) -> torch.Tensor:
    return torch.randn(n, p, generator=torch.Generator().manual_seed(seed))


def _orthogonal(p: int, seed: int) -> torch.Tensor:
    q, _ = torch.linalg.qr(_features(p, p, seed).double())
    return q


def test_hand_computed_example() -> None:
    """x = [1, 2, 3]^T, y = [[1, 0], [0, 1], [1, 1]].

    Centred: x = [-1, 0, 1]; y columns [1/3, -2/3, 1/3] and [-2/3, 1/3, 1/3].
    y^T x = [0, 1], so ||y^T x||_F^2 = 1; x^T x = 2; y^T y = [[2/3, -1/3], [-1/3, 2/3]],
    ||y^T y||_F = sqrt(10)/3. CKA = 1 / (2 sqrt(10) / 3) = 3 / (2 sqrt(10)) = 0.474342.
    """
    x = torch.tensor([[1.0], [2.0], [3.0]])
    y = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    expected = 3 / (2 * math.sqrt(10))
    assert linear_cka(x, y) == pytest.approx(expected, abs=1e-12)
    assert hsic_cka(x, y) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(("n", "p1", "p2"), [(50, 5, 5), (200, 8, 3), (40, 60, 10)], ids=["square", "wide", "p>n"])
def test_equals_the_kernel_definition(n: int, p1: int, p2: int) -> None:
    """||Y^T X||^2 / (||X^T X|| ||Y^T Y||) on centred features is HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))."""
    x, y = _features(n, p1, 1), _features(n, p2, 2) + 0.5 * _features(n, p1, 1)[:, :1]
    assert linear_cka(x, y) == pytest.approx(hsic_cka(x, y), rel=1e-9)


def test_identical_inputs_give_one() -> None:
    x = _features(300, 16, 3)
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)


def test_invariant_to_orthogonal_transforms_isotropic_scaling_and_offsets() -> None:
    x = _features(400, 12, 4).double()  # float64 throughout: the scaled copies must not round differently
    y = (torch.tanh(x.float() @ _features(12, 7, 5)) + 0.3 * _features(400, 7, 6)).double()  # related, not equal
    reference = linear_cka(x, y)
    assert 0.2 < reference < 0.99
    assert linear_cka(x @ _orthogonal(12, 7), y) == pytest.approx(reference, rel=1e-9)
    assert linear_cka(x, y @ _orthogonal(7, 8)) == pytest.approx(reference, rel=1e-9)
    assert linear_cka(3.7 * x, 0.01 * y) == pytest.approx(reference, rel=1e-9)
    assert linear_cka(x + 5.0, y - 2.0) == pytest.approx(reference, rel=1e-9)  # centring removes offsets


def test_not_invariant_to_an_anisotropic_linear_map() -> None:
    """Section 2.1 of the paper: invariance to every invertible linear map would make CKA meaningless for
    wide layers, so a non-orthogonal rescaling of the features changes it."""
    x = _features(400, 12, 9)
    y = x[:, :6] + 0.5 * _features(400, 6, 10)
    stretched = x * torch.linspace(0.1, 10.0, 12)
    assert abs(linear_cka(stretched, y) - linear_cka(x, y)) > 0.05


def test_independent_random_features_are_near_zero() -> None:
    """For independent Gaussian X [n, p1] and Y [n, p2], E||Y^T X||^2 = (n - 1) p1 p2 after centring and
    ||X^T X||_F ~ (n - 1) sqrt(p1), so CKA ~ sqrt(p1 p2) / (n - 1) = 0.0226 at n = 1000, p1 = 16, p2 = 32;
    its relative spread is about sqrt(2 / (p1 p2)) = 6%, so every draw lies within 0.7-1.3 times that."""
    n, p1, p2 = 1000, 16, 32
    expected = math.sqrt(p1 * p2) / (n - 1)
    values = [linear_cka(_features(n, p1, 100 + i), _features(n, p2, 200 + i)) for i in range(10)]
    assert all(0.7 * expected < v < 1.3 * expected for v in values), (expected, values)
    assert max(values) < 0.03


@pytest.mark.parametrize(
    ("x", "y", "match"),
    [
        (torch.ones(5, 3), torch.randn(5, 2), "`x` to vary"),
        (torch.randn(5, 3), torch.randn(4, 2), "same samples"),
        (torch.randn(5), torch.randn(5, 2), r"\[samples, features\]"),
        (torch.randn(1, 3), torch.randn(1, 2), "at least 2 samples"),
        (torch.tensor([[0.0, float("nan")], [1.0, 2.0]]), torch.randn(2, 2), "finite"),
    ],
    ids=["constant", "rows", "1-d", "one-sample", "nan"],
)
def test_bad_input_is_a_clear_error(x: torch.Tensor, y: torch.Tensor, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        linear_cka(x, y)
