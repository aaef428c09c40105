"""2-D projections of encoder embeddings (PCA always; t-SNE and UMAP when installed) and their colours.

PCA needs nothing beyond torch and is always drawn. t-SNE comes from scikit-learn
(``pip install 'fusebench[analysis]'``) and UMAP from ``umap-learn``; either is used when
its package is importable and skipped otherwise, and asking for a missing one by name is
an error that says what to install. Every method is seeded, so a figure is reproducible.

What the colours mean depends on the task (:func:`colours`): the class for multiclass,
the target score for regression, and for multilabel the *most frequent present label*:
among the labels a sample has, the one that is most common in the projected samples (ties
to the lower label index); a sample without any label is coloured as ``none``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor

from fusebench.errors import ConfigError
from fusebench.tasks import Task

Method = Literal["pca", "tsne", "umap"]
METHODS: tuple[Method, ...] = ("pca", "tsne", "umap")
_PACKAGES: dict[str, tuple[str, str]] = {
    "tsne": ("sklearn", "scikit-learn (`pip install 'fusebench[analysis]'`)"),
    "umap": ("umap", "umap-learn (`pip install umap-learn`)"),
}


def installed(method: str) -> bool:
    """Whether ``method`` can run here (PCA always can)."""
    if method == "pca":
        return True
    return importlib.util.find_spec(_PACKAGES[method][0]) is not None


def resolve_methods(requested: Sequence[str] | None) -> tuple[list[Method], dict[str, str]]:
    """The methods to draw and, for the default set, why any was left out.

    ``None`` is the default: PCA plus t-SNE and UMAP where their packages are installed.

    Raises:
        ConfigError: an unknown method, or a requested one whose package is missing.
    """
    if requested is None:
        chosen = [m for m in METHODS if installed(m)]
        skipped: dict[str, str] = {m: f"not installed: needs {_PACKAGES[m][1]}" for m in METHODS if not installed(m)}
        return chosen, skipped
    unknown = [m for m in requested if m not in METHODS]
    if unknown:
        raise ConfigError(f"Expected projections among {list(METHODS)}, got {unknown}.")
    for method in requested:
        if not installed(method):
            raise ConfigError(f"Projection `{method}` needs {_PACKAGES[method][1]}, which is not installed.")
    return [cast(Method, m) for m in dict.fromkeys(requested)], {}


def pca_2d(features: Tensor) -> tuple[npt.NDArray[np.float64], list[float]]:
    """The first two principal components of ``features`` ``[n, d]`` and their share of the variance.

    Computed by SVD of the centred features in float64; each component's sign is fixed so
    that its largest-magnitude loading is positive (SVD signs are arbitrary).
    """
    x = features.double()
    x = x - x.mean(dim=0, keepdim=True)
    _, singular, vh = torch.linalg.svd(x, full_matrices=False)
    k = min(2, vh.shape[0])
    components = vh[:k]
    signs = torch.sign(components.gather(1, components.abs().argmax(dim=1, keepdim=True)))
    components = components * torch.where(signs == 0, torch.ones_like(signs), signs)
    points = (x @ components.T).numpy()
    if k < 2:  # one-dimensional features: the second axis is flat
        points = np.concatenate([points, np.zeros((len(points), 2 - k))], axis=1)
    variance = singular.pow(2)
    share = (variance[:k] / variance.sum()).tolist() if float(variance.sum()) > 0 else [0.0] * k
    return points, [float(s) for s in share]


def project(features: Tensor, method: Method, seed: int) -> tuple[npt.NDArray[np.float64], dict[str, Any]]:
    """``[n, 2]`` coordinates of ``features`` by ``method``, and what the method reports about itself."""
    if method == "pca":
        points, share = pca_2d(features)
        return points, {"explained_variance": share}
    x = features.double().numpy()
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = float(min(30.0, max(2.0, (len(x) - 1) / 3)))
        tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed)
        return np.asarray(tsne.fit_transform(x), dtype=np.float64), {
            "perplexity": perplexity,
            "kl_divergence": float(tsne.kl_divergence_),
        }
    import umap  # type: ignore[import-not-found, unused-ignore]

    reducer = umap.UMAP(n_components=2, random_state=seed, n_neighbors=min(15, len(x) - 1))
    return np.asarray(reducer.fit_transform(x), dtype=np.float64), {"n_neighbors": min(15, len(x) - 1)}


@dataclass(frozen=True)
class Colours:
    """What each projected point is coloured by.

    Attributes:
        values: ``[n]`` class index (categorical) or score (continuous).
        categorical: whether ``values`` are categories.
        names: category names (categorical only; index -> name).
        description: what the colour means, for the figure and the JSON.
    """

    values: npt.NDArray[np.float64]
    categorical: bool
    names: tuple[str, ...]
    description: str


def colours(target: Tensor, task: Task) -> Colours:
    """The colour of every sample for ``task`` (see the module docstring for multilabel)."""
    if task.kind == "regression":
        return Colours(target.double().reshape(-1).numpy(), False, (), "target score")
    names = task.label_names or tuple(str(i) for i in range(task.output_size))
    if task.kind == "multiclass":
        return Colours(target.long().numpy().astype(np.float64), True, tuple(names), "class")
    present = target.float() > 0.5  # [n, L] multi-hot
    frequency = present.sum(dim=0).double()  # [L]: how common each label is among these samples
    score = torch.where(present, frequency.unsqueeze(0) - torch.arange(task.output_size) * 1e-9, -1.0)
    chosen = score.argmax(dim=1)
    none = ~present.any(dim=1)
    values = torch.where(none, torch.full_like(chosen, task.output_size), chosen)
    return Colours(
        values.numpy().astype(np.float64),
        True,
        (*names, "none"),
        "most frequent present label (multilabel: the sample's label that is most common here)",
    )


def sample_indices(n: int, at_most: int, seed: int) -> Tensor:
    """A seeded, sorted subset of ``range(n)`` of size ``min(n, at_most)`` (the same for every encoder)."""
    if n <= at_most:
        return torch.arange(n)
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(n, generator=generator)[:at_most].sort().values
