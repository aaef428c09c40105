"""The hyperparameter-sensitivity figure: the metric surface of each condition over the grid.

One heatmap per condition, side by side, on one colour scale (so equal colours are equal
values across conditions); each cell shows the mean over seeds, ± its std, and n. Rows are
the first sensitivity axis, columns every combination of the others.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from fusebench.study.plots import colormap, direction, save, text_colour  # noqa: E402
from fusebench.study.spec_models import format_value  # noqa: E402


def _cell(surface: Mapping[str, Any], wanted: Mapping[str, Any]) -> Mapping[str, Any] | None:
    labels = {k: format_value(v) for k, v in wanted.items()}
    for cell in surface["cells"]:
        if all(format_value(cell["axes"].get(k)) == v for k, v in labels.items()):
            found: Mapping[str, Any] | None = cell["summary"]
            return found
    return None


def surface_heatmaps(slice_: Mapping[str, Any], path: str | Path) -> Path:
    """Write the heatmaps of one sensitivity slice (see the module docstring)."""
    names = list(slice_["axes"])
    rows_axis, column_axes = names[0], names[1:]
    row_values = slice_["values"][rows_axis]
    column_values = list(itertools.product(*(slice_["values"][a] for a in column_axes)))
    metric = slice_["metric"]
    surfaces = slice_["surfaces"]
    grids = []
    for surface in surfaces:
        grid = np.full((len(row_values), len(column_values)), np.nan)
        notes = np.full(grid.shape, "", dtype=object)
        for i, r in enumerate(row_values):
            for j, c in enumerate(column_values):
                found = _cell(surface, {rows_axis: r, **dict(zip(column_axes, c, strict=True))})
                if found:
                    grid[i, j] = found["mean"]
                    std = f"\n± {found['std']:.3f}" if found.get("std") is not None else ""
                    notes[i, j] = f"{found['mean']:.3f}{std}\nn={found['n']}"
        grids.append((grid, notes))
    finite = np.concatenate([g[np.isfinite(g)] for g, _ in grids]) if grids else np.array([])
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    width = 1.2 * max(len(column_values), 1) + 1.5
    fig, axes = plt.subplots(
        1,
        len(surfaces),
        figsize=(width * len(surfaces) + 1.5, 0.9 * len(row_values) + 2.0),
        squeeze=False,
        layout="constrained",
    )
    image = None
    for ax, surface, (grid, notes) in zip(axes[0], surfaces, grids, strict=True):
        image = ax.imshow(grid, cmap=colormap(metric), vmin=low, vmax=high, aspect="auto")
        for i, j in itertools.product(range(grid.shape[0]), range(grid.shape[1])):
            if np.isfinite(grid[i, j]):
                ax.text(
                    j,
                    i,
                    notes[i, j],
                    ha="center",
                    va="center",
                    fontsize=7,
                    color=text_colour(grid[i, j], low, high, metric),
                )
        ax.set_yticks(range(len(row_values)), [format_value(v) for v in row_values])
        ax.set_ylabel(rows_axis)
        ax.set_xticks(range(len(column_values)), [", ".join(format_value(v) for v in c) or "–" for c in column_values])
        ax.set_xlabel(", ".join(column_axes) or "")
        spread = surface["spread_of_means"]["std"]
        ax.set_title(
            f"{surface['condition']}\nstd over cells {spread:.3f}" if spread is not None else surface["condition"],
            fontsize=9,
        )
    if image is not None:
        fig.colorbar(image, ax=axes[0].tolist(), shrink=0.85, label=f"test {direction(metric)}")
    fixed = ", ".join(f"{k}={format_value(v)}" for k, v in slice_["fixed"].items())
    fig.suptitle(
        f"test {metric} ({slice_['pattern']}) over the grid, mean over seeds" + (f" ({fixed})" if fixed else ""),
        fontsize=10,
    )
    return save(fig, path)
