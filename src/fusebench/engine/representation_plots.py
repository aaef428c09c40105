"""Figures of the representation analysis: 2-D projections per encoder, and CKA matrices.

Plain data in, one PNG out (written without timestamps, as the study figures are), so a
figure shows only what ``representations.json`` also holds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import numpy.typing as npt

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from fusebench.engine.projections import Colours  # noqa: E402
from fusebench.study.plots import save  # noqa: E402

_CATEGORICAL = "tab10"
_MAX_LEGEND = 20


def projection_grid(
    points: Mapping[str, Mapping[str, npt.NDArray[np.float64]]],
    titles: Mapping[str, str],
    colour: Colours,
    path: str | Path,
    heading: str,
    notes: Mapping[str, Mapping[str, str]] | None = None,
) -> Path:
    """One row per method, one column per encoder view; every point coloured by ``colour``.

    Args:
        points: method -> view key -> ``[n, 2]`` coordinates (all views of the same samples).
        titles: view key -> column title.
        colour: the samples' colours (:func:`fusebench.engine.projections.colours`).
        path: the PNG to write.
        heading: the figure's title.
        notes: method -> view key -> a short line under the panel title (e.g. PCA variance).
    """
    methods = list(points)
    views = list(titles)
    fig, axes = plt.subplots(len(methods), len(views), figsize=(3.2 * len(views), 3.0 * len(methods)), squeeze=False)
    cmap = plt.get_cmap((_CATEGORICAL if len(colour.names) <= 10 else "tab20") if colour.categorical else "viridis")
    rgba = cmap(colour.values.astype(int) % cmap.N) if colour.categorical else None
    scatter: Any = None
    for row, method in enumerate(methods):
        for column, view in enumerate(views):
            ax = axes[row][column]
            xy = points[method][view]
            if rgba is not None:
                ax.scatter(xy[:, 0], xy[:, 1], c=rgba, s=4, linewidths=0)
            else:
                scatter = ax.scatter(xy[:, 0], xy[:, 1], c=colour.values, cmap=cmap, s=4, linewidths=0)
            note = (notes or {}).get(method, {}).get(view)
            ax.set_title(f"{titles[view]}\n{method}" + (f" ({note})" if note else ""), fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    if colour.categorical:
        shown = sorted({int(v) for v in colour.values})[:_MAX_LEGEND]
        handles = [Line2D([], [], marker="o", linestyle="", markersize=5, color=cmap(i % cmap.N)) for i in shown]
        fig.legend(
            handles,
            [colour.names[i] for i in shown],
            title=colour.description,
            loc="center left",
            fontsize=7,
            title_fontsize=7,
            bbox_to_anchor=(0.99, 0.5),
        )
    elif scatter is not None:
        fig.colorbar(scatter, ax=axes, shrink=0.8, label=colour.description)
    fig.suptitle(heading, fontsize=10)
    return save(fig, path)


def cka_matrix(labels: Sequence[str], matrix: Sequence[Sequence[float | None]], path: str | Path, heading: str) -> Path:
    """A heatmap of linear CKA between every pair of encoder views of one modality (blank: not comparable)."""
    values = np.array([[np.nan if v is None else float(v) for v in row] for row in matrix], dtype=float)
    size = max(3.5, 0.9 * len(labels) + 2.0)
    fig, ax = plt.subplots(figsize=(size + 1.0, size))
    image = ax.imshow(values, vmin=0.0, vmax=1.0, cmap="viridis")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    for i in range(len(labels)):
        for j in range(len(labels)):
            if np.isfinite(values[i, j]):
                ax.text(
                    j,
                    i,
                    f"{values[i, j]:.2f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="black" if values[i, j] > 0.6 else "white",
                )
    fig.colorbar(image, ax=ax, shrink=0.8, label="linear CKA")
    ax.set_title(heading, fontsize=9)
    return save(fig, path)
