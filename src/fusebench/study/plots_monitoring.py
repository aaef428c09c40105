"""One figure per run from its ``monitoring.jsonl`` (``fusebench.engine.monitoring``).

Four panels over epochs: gradient norm per module (mean over the epoch's steps), weight
norm per module, the epoch's update-to-weight ratio per module (log scales), and the
mean ± std of each modality's encoder output. A module without a value in an epoch (a
frozen encoder has no gradient) simply has no point there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt  # the Agg backend is chosen by fusebench.study.plots, imported below

from fusebench.study.plots import as_array, color, save

_PANELS = (
    ("grad_norm", "gradient L2 norm (epoch mean)"),
    ("weight_norm", "weight L2 norm"),
    ("update_ratio", "update / weight ratio per epoch"),
)


def monitoring_figure(records: Sequence[Mapping[str, Any]], title: str, path: str | Path) -> Path:
    """Write the four-panel figure of one run's monitoring records to ``path``."""
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.4))
    epochs = [int(r["epoch"]) for r in records]
    modules = sorted({name for r in records for name in r["modules"]})
    for ax, (key, ylabel) in zip(axes[:3], _PANELS, strict=True):
        drawn = False
        for index, name in enumerate(modules):
            values = as_array([(r["modules"].get(name) or {}).get(key) for r in records])
            positive = values > 0
            if positive.any():
                ax.plot(
                    [e for e, ok in zip(epochs, positive, strict=True) if ok],
                    values[positive],
                    marker="o",
                    color=color(index),
                    label=name,
                )
                drawn = True
        if drawn:
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_title(ylabel, fontsize=9)
    modalities = sorted({m for r in records for m in r.get("activations", {})})
    for index, modality in enumerate(modalities):
        mean = as_array([(r.get("activations", {}).get(modality) or {}).get("mean") for r in records])
        std = as_array([(r.get("activations", {}).get(modality) or {}).get("std") for r in records])
        axes[3].errorbar(epochs, mean, yerr=std, marker="o", capsize=3, color=color(index), label=modality)
    axes[3].set_xlabel("epoch")
    axes[3].set_title("encoder output mean ± std", fontsize=9)
    if modalities:
        axes[3].legend(fontsize=7)
    else:
        axes[3].text(
            0.5,
            0.5,
            "no encoder pass\n(cached features)",
            ha="center",
            va="center",
            transform=axes[3].transAxes,
            fontsize=8,
        )
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7)
    for ax in axes:
        ax.set_xticks(epochs)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save(fig, path)
