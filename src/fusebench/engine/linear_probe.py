"""Fitting one linear probe on frozen features and choosing its L2 strength on validation.

The maths of the linear-probe protocol (MMPT section 3.2), on tensors only: no run folder,
model or file is read here, so :mod:`fusebench.engine.probe` (a run's encoders) and
:mod:`fusebench.engine.representations` (encoder views before and after fine-tuning) fit
their probes the same way. Everything is deterministic: zero-initialised weights and
full-batch L-BFGS on standardised features (a convex problem), with the L2 strength chosen
on validation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from fusebench.engine.datasets import DataSplits
from fusebench.tasks import Task, higher_is_better

DEFAULT_L2_GRID: tuple[float, ...] = (1e-1, 1e-2, 1e-3, 1e-4)  # strongest first: ties keep it
MAX_ITER = 200


def fit_linear_probe(features: Tensor, target: Tensor, task: Task, l2: float, max_iter: int = MAX_ITER) -> nn.Linear:
    """A linear probe for ``task``, deterministic (no seed involved).

    Classification (MMPT section 3.2: logistic regression): minimises
    ``task loss(W x + b, y) + l2 * ||W||^2`` — softmax cross-entropy for multiclass, one
    sigmoid BCE per label for multilabel — by full-batch L-BFGS from zero weights; convex,
    so the result depends only on the data. Regression: ridge regression in closed form,
    ``W = (X^T X + l2 N I)^{-1} X^T (y - mean y)``, ``b = mean y - W mean x``.
    """
    linear = nn.Linear(features.shape[1], task.output_size)
    nn.init.zeros_(linear.weight)
    nn.init.zeros_(linear.bias)
    if task.kind == "regression":
        x = features.double()
        mean_x, mean_y = x.mean(dim=0), target.double().mean()
        centred = x - mean_x
        gram = centred.T @ centred + l2 * len(x) * torch.eye(x.shape[1], dtype=torch.float64)
        weight = torch.linalg.solve(gram, centred.T @ (target.double() - mean_y))  # [D]
        with torch.no_grad():
            linear.weight.copy_(weight.float().unsqueeze(0))
            linear.bias.fill_(float(mean_y - weight @ mean_x))
        return linear.requires_grad_(False)
    optimizer = torch.optim.LBFGS(linear.parameters(), max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = task.compute_loss(linear(features), target) + l2 * linear.weight.pow(2).sum()
        torch.autograd.backward(loss)
        return loss

    with torch.enable_grad():
        optimizer.step(closure)  # type: ignore[no-untyped-call]  # torch's LBFGS.step carries no annotations
    return linear.requires_grad_(False)


def probe_features(
    train: Tensor,
    validation: Tensor,
    test: Tensor,
    data: DataSplits,
    metric_names: Sequence[str],
    l2_grid: Sequence[float] = DEFAULT_L2_GRID,
    select_on: str | None = None,
) -> dict[str, Any]:
    """Fit a probe per ``l2`` on standardised features, keep the best on the validation ``select_on`` metric.

    ``train_loss`` is the chosen probe's task loss on the training features without the
    L2 term: ``l(phi, T_train)`` of the MMPT weakness score (Definition 3).
    """
    task = data.task
    select_on = select_on or task.primary_metric
    sign = 1.0 if higher_is_better(select_on) else -1.0
    mean, std = train.mean(dim=0), train.std(dim=0).clamp(min=1e-6)  # train statistics only
    train, validation, test = ((x - mean) / std for x in (train, validation, test))
    best: dict[str, Any] | None = None
    for l2 in l2_grid:
        probe = fit_linear_probe(train, data.train.target, task, l2)
        scores = task.metrics(probe(validation), data.validation.target, metric_names)
        if best is None or sign * scores[select_on] > sign * best["validation"][select_on]:
            best = {"l2": l2, "validation": scores, "probe": probe}
    if best is None:
        raise ValueError(f"Expected a non-empty `l2_grid`, got {list(l2_grid)}.")
    test_scores = task.metrics(best["probe"](test), data.test.target, metric_names)
    train_loss = float(task.compute_loss(best["probe"](train), data.train.target))
    return {
        "dim": int(train.shape[1]),
        "l2": best["l2"],
        "train_loss": train_loss,
        "validation": best["validation"],
        "test": test_scores,
    }
