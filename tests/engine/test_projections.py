"""2-D projections (PCA against numpy's SVD; optional t-SNE), colours per task kind, method resolution."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fusebench.engine.projections import colours, installed, pca_2d, project, resolve_methods, sample_indices
from fusebench.errors import ConfigError
from fusebench.tasks import Task


def test_pca_matches_numpy_and_reports_the_variance_share() -> None:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(200, 6, generator=generator) * torch.tensor([5.0, 3.0, 1.0, 0.5, 0.2, 0.1])
    points, share = pca_2d(x)
    centred = x.double().numpy() - x.double().numpy().mean(axis=0)
    _, singular, vh = np.linalg.svd(centred, full_matrices=False)
    reference = centred @ vh[:2].T
    np.testing.assert_allclose(np.abs(points), np.abs(reference), atol=1e-9)  # up to the sign of each axis
    np.testing.assert_allclose(share, (singular[:2] ** 2 / (singular**2).sum()), rtol=1e-9)
    assert share[0] > 0.6  # the first axis holds the scale-5 direction


def test_pca_of_one_dimensional_features_has_a_flat_second_axis() -> None:
    points, share = pca_2d(torch.arange(10.0).unsqueeze(1))
    assert points.shape == (10, 2) and np.all(points[:, 1] == 0) and share == [pytest.approx(1.0)]


@pytest.mark.skipif(not installed("tsne"), reason="scikit-learn is not installed")
def test_tsne_is_seeded_and_separates_two_clusters() -> None:
    generator = torch.Generator().manual_seed(1)
    x = torch.cat([torch.randn(60, 8, generator=generator), torch.randn(60, 8, generator=generator) + 8.0])
    first, info = project(x, "tsne", seed=3)
    again, _ = project(x, "tsne", seed=3)
    np.testing.assert_array_equal(first, again)
    gap = np.linalg.norm(first[:60].mean(axis=0) - first[60:].mean(axis=0))
    spread = max(first[:60].std(axis=0).max(), first[60:].std(axis=0).max())
    assert gap > 3 * spread and info["perplexity"] == 30.0


def test_colours_per_task_kind() -> None:
    multiclass = colours(torch.tensor([2, 0, 1]), Task("multiclass", 3, label_names=("a", "b", "c")))
    assert multiclass.categorical and multiclass.values.tolist() == [2, 0, 1] and multiclass.names == ("a", "b", "c")
    regression = colours(torch.tensor([-1.5, 0.0, 2.0]), Task("regression", 1))
    assert not regression.categorical and regression.values.tolist() == [-1.5, 0.0, 2.0]
    # label frequencies here: label 0 twice, label 1 three times, label 2 once
    target = torch.tensor([[1, 1, 0], [1, 1, 1], [0, 1, 0], [0, 0, 0], [0, 0, 1]], dtype=torch.float32)
    multilabel = colours(target, Task("multilabel", 3))
    assert multilabel.values.tolist() == [1, 1, 1, 3, 2]  # the most frequent present label; 3 = "none"
    assert multilabel.names[-1] == "none" and "most frequent" in multilabel.description
    tie = colours(torch.tensor([[1, 1], [1, 1]], dtype=torch.float32), Task("multilabel", 2))
    assert tie.values.tolist() == [0, 0]  # ties go to the lower label index


def test_method_resolution() -> None:
    default, skipped = resolve_methods(None)
    assert default[0] == "pca" and set(default) | set(skipped) == {"pca", "tsne", "umap"}
    assert resolve_methods(["pca", "pca"]) == (["pca"], {})
    with pytest.raises(ConfigError, match="among"):
        resolve_methods(["mds"])
    if not installed("umap"):
        with pytest.raises(ConfigError, match="umap-learn"):
            resolve_methods(["umap"])


def test_sample_indices_are_seeded_sorted_and_capped() -> None:
    assert sample_indices(5, 10, seed=0).tolist() == [0, 1, 2, 3, 4]
    picked = sample_indices(1000, 50, seed=4)
    assert len(picked) == 50 and picked.tolist() == sorted(set(picked.tolist()))
    assert torch.equal(picked, sample_indices(1000, 50, seed=4))
