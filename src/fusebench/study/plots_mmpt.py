"""MMPT figures from analysis.json: Best-Fusion vs naive curves (004 Fig. 3), the mixture grid (004 Fig. 4).

Each function draws only numbers that analysis.json holds (``best_fusion``, ``mixture``),
so the figures cannot disagree with the report's tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from fusebench.study.plots import as_array, colormap, direction, save, text_colour  # noqa: E402


def best_fusion_curves(best: Mapping[str, Any], metric: str, path: str | Path) -> Path:
    """One panel per dropped modality: the Best-Fusion system's MMPT curve and the naive model's.

    Line = mean over seeds, band = ±1 std over seeds (the mixing itself is exact for
    per-sample metrics).
    """
    names = sorted(best["curves"])
    fig, axes = plt.subplots(1, max(len(names), 1), figsize=(5.5 * max(len(names), 1), 4), squeeze=False)
    for ax, modality in zip(axes[0], names, strict=False):
        series = [(f"Best-Fusion (n={best['curves'][modality]['n']})", best["curves"][modality], "tab:red")]
        naive = (best.get("naive_curves") or {}).get(modality)
        if naive:
            series.append((f"naive: {best['naive']} (n={naive['n']})", naive, "tab:blue"))
        for name, curve, colour in series:
            p, mean, std = np.array(curve["p_test"]), as_array(curve["mean"]), np.nan_to_num(as_array(curve["std"]))
            ax.plot(p, mean, marker="o", ms=3, color=colour, label=name)
            ax.fill_between(p, mean - std, mean + std, color=colour, alpha=0.15, linewidth=0)
        ax.set(
            xlabel=f"p_test: probability that {modality} is missing",
            ylabel=f"test {direction(metric)}",
            title=f"Best-Fusion vs naive: dropping {modality}",
        )
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, title="mean; band = ±1 std over seeds", title_fontsize=8)
    return save(fig, path)


def mixture_heatmaps(grid: Mapping[str, Any], metric: str, path: str | Path) -> Path:
    """The four Appendix B panels: rows = modality missing in training, columns = missing at test time."""
    names = grid["modalities"]
    panels = {(p["train_missing"], p["test_missing"]): p for p in grid["panels"]}
    values = [v for p in grid["panels"] for row in p["values"] for v in row]
    finite = [v for v in as_array(values) if np.isfinite(v)]
    low, high = (min(finite), max(finite)) if finite else (0.0, 1.0)
    p_test = grid["p_test"]
    size = (max(6, 0.7 * len(p_test) + 2), 0.55 * max(len(p["values"]) for p in grid["panels"]) + 2)
    fig, axes = plt.subplots(
        len(names),
        len(names),
        figsize=(size[0] * len(names), size[1] * len(names)),
        squeeze=False,
        layout="constrained",
    )
    image = None
    for (i, r), (j, t) in ((a, b) for a in enumerate(names) for b in enumerate(names)):
        ax, panel = axes[i][j], panels[(r, t)]
        matrix = as_array([as_array(row) for row in panel["values"]]) if panel["values"] else np.zeros((0, 0))
        image = ax.imshow(np.ma.masked_invalid(matrix), cmap=colormap(metric), aspect="auto", vmin=low, vmax=high)
        for (row, col), value in np.ndenumerate(matrix):
            ax.text(
                col,
                row,
                "n/a" if np.isnan(value) else f"{value:.2f}",
                ha="center",
                va="center",
                fontsize=6,
                color=text_colour(value, low, high, metric),
            )
        ax.set_xticks(range(len(p_test)), [f"{p:g}" for p in p_test])
        ax.set_yticks(
            range(len(panel["p_train"])), [f"{p:g} (n={n})" for p, n in zip(panel["p_train"], panel["n"], strict=True)]
        )
        ax.set(
            xlabel=f"p_test ({t} missing at test time)",
            ylabel=f"p_train ({r} missing in training)",
            title=f"train: {r} missing, test: {t} missing\nexpert: {panel['remaining']}",
        )
    if image is not None:
        fig.colorbar(image, ax=axes, label=f"expected test {direction(metric)}", shrink=0.6)
    fig.suptitle(f"{grid['scope']}: mixture of models (MMPT Appendix B)")
    return save(fig, path)
