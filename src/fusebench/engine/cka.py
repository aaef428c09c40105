"""Linear centred kernel alignment (CKA): how alike two sets of embeddings of the same samples are.

Kornblith, Norouzi, Lee and Hinton, "Similarity of Neural Network Representations
Revisited" (ICML 2019, arXiv:1905.00414), Section 3: for representations ``X`` ``[n, p1]``
and ``Y`` ``[n, p2]`` of the same ``n`` samples, the Hilbert-Schmidt independence criterion
of kernels ``K``, ``L`` is ``HSIC(K, L) = tr(K H L H) / (n - 1)^2`` with the centring matrix
``H = I - 11^T / n`` (Eq. 2), and CKA normalises it,
``CKA(K, L) = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))`` (Eq. 3). With linear kernels
``K = X X^T``, ``L = Y Y^T`` and column-centred ``X``, ``Y``, the dot-product identity of
Eq. 1 (``tr(X X^T Y Y^T) = ||Y^T X||_F^2``) gives linear CKA (Table 1)::

    CKA(X, Y) = ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F)

It is 1 for identical representations, invariant to orthogonal transforms and isotropic
scaling of either side (not to arbitrary invertible linear maps, on purpose: Section 2.1),
and defined for ``p1 != p2``, so an encoder can be compared before and after fine-tuning,
or with another run's encoder of another width. For independent random features it is
small but positive: about ``sqrt(p1 p2) / n`` for ``n >> p`` (its expectation under
independence is not 0; the tests state the bound they use).
"""

from __future__ import annotations

import torch
from torch import Tensor


def _centred(features: Tensor, name: str) -> Tensor:
    if features.dim() != 2:
        raise ValueError(f"Expected `{name}` as [samples, features], got shape {tuple(features.shape)}.")
    if not torch.isfinite(features).all():
        raise ValueError(f"Expected finite values in `{name}`, got NaN or infinity.")
    x = features.double()
    return x - x.mean(dim=0, keepdim=True)


def linear_cka(x: Tensor, y: Tensor) -> float:
    """Linear CKA of two representations of the same samples (Kornblith et al. 2019, Table 1).

    Args:
        x: ``[n, p1]`` features of ``n`` samples (e.g. one encoder's test embeddings).
        y: ``[n, p2]`` features of the same samples, in the same order.

    Returns:
        CKA in ``[0, 1]``; computed in float64 on column-centred features.

    Raises:
        ValueError: shapes that are not ``[n, p]`` with the same ``n >= 2``, non-finite
            values, or a representation that is constant over the samples (CKA undefined).

    >>> x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
    >>> round(linear_cka(x, 3.0 * x), 6)
    1.0
    """
    cx, cy = _centred(x, "x"), _centred(y, "y")
    if cx.shape[0] != cy.shape[0]:
        raise ValueError(
            f"Expected the same samples on both sides, got {cx.shape[0]} rows in `x` and {cy.shape[0]} in `y`."
        )
    if cx.shape[0] < 2:
        raise ValueError(f"Expected at least 2 samples for CKA, got {cx.shape[0]}.")
    cross = torch.linalg.matrix_norm(cy.T @ cx) ** 2  # ||Y^T X||_F^2 = tr(K H L H) for linear kernels (Eq. 1)
    norm_x = torch.linalg.matrix_norm(cx.T @ cx)
    norm_y = torch.linalg.matrix_norm(cy.T @ cy)
    if norm_x == 0 or norm_y == 0:
        side = "x" if norm_x == 0 else "y"
        raise ValueError(
            f"Expected `{side}` to vary over the samples, got the same vector for every sample "
            "(CKA is undefined for a constant representation)."
        )
    return float((cross / (norm_x * norm_y)).clamp(0.0, 1.0))


def hsic_cka(x: Tensor, y: Tensor) -> float:
    """CKA from its kernel definition (Eq. 2-3), ``O(n^2)`` memory: the reference for :func:`linear_cka`.

    ``HSIC(K, L) = tr(K H L H) / (n - 1)^2`` with ``K = x x^T``, ``L = y y^T``; kept for
    tests and small ``n`` (it builds the ``[n, n]`` kernels).
    """
    if x.dim() != 2 or y.dim() != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(f"Expected [n, p1] and [n, p2] with the same n, got {tuple(x.shape)} and {tuple(y.shape)}.")
    n = x.shape[0]
    centring = torch.eye(n, dtype=torch.float64) - torch.full((n, n), 1.0 / n, dtype=torch.float64)
    k, lk = x.double() @ x.double().T, y.double() @ y.double().T

    def hsic(a: Tensor, b: Tensor) -> Tensor:
        return torch.trace(a @ centring @ b @ centring) / (n - 1) ** 2

    return float(hsic(k, lk) / torch.sqrt(hsic(k, k) * hsic(lk, lk)))
