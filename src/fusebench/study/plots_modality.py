"""Modality and fusion figures from analysis.json: MMPT curves, p_train x p_test, Shapley, trade-off.

Split from :mod:`fusebench.study.plots` to keep one concept per module: these figures
answer "what does each modality (or fusion method) contribute", the others "how did
training go". Colours follow the same group order as every other figure of a report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt  # the Agg backend is chosen by fusebench.study.plots, imported below
import numpy as np

from fusebench.study.plots import (
    Group,
    as_array,
    color,
    colormap,
    direction,
    label,
    save,
    stat,
    text_colour,
    tick,
)
from fusebench.tasks import higher_is_better


def mmpt_curves(groups: Sequence[Group], modalities: Sequence[str], metric: str, path: str | Path) -> Path:
    """Test ``metric`` as one modality goes missing at test time with probability p_test.

    One panel per modality; line = mean over seeds, band = ±1 std over seeds. p_test = 0
    is the full pattern and p_test = 1 the pattern without that modality.
    """
    names = [m for m in sorted(modalities) if any(m in g.get("mmpt", {}) for g in groups)]
    fig, axes = plt.subplots(1, max(len(names), 1), figsize=(5.5 * max(len(names), 1), 4), squeeze=False)
    for ax, modality in zip(axes[0], names, strict=False):
        for i, group in enumerate(groups):
            curve = group.get("mmpt", {}).get(modality)
            if not curve:
                continue
            p, mean, std = np.array(curve["p_test"]), as_array(curve["mean"]), as_array(curve["std"])
            ax.plot(p, mean, marker="o", ms=3, color=color(i), label=label(group))
            ax.fill_between(p, mean - std, mean + std, color=color(i), alpha=0.15, linewidth=0)
        ax.set(
            xlabel=f"p_test: probability that {modality} is missing",
            ylabel=f"test {direction(metric)}",
            title=f"MMPT: dropping {modality} at test time",
        )
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8, title="mean; band = ±1 std over seeds", title_fontsize=8)
    return save(fig, path)


def ptrain_ptest_heatmap(matrix: Mapping[str, Any], metric: str, path: str | Path) -> Path:
    """Seed-averaged test ``metric`` for each train missing rate (rows) and test missing rate (columns)."""
    values = as_array([as_array(row) for row in matrix["values"]])
    p_test = matrix["p_test"]
    fig, ax = plt.subplots(figsize=(max(6, 0.75 * len(p_test) + 2), 0.6 * len(values) + 2))
    image = ax.imshow(np.ma.masked_invalid(values), cmap=colormap(metric), aspect="auto")
    low, high = np.nanmin(values), np.nanmax(values)
    for (r, c), value in np.ndenumerate(values):
        ax.text(
            c,
            r,
            "n/a" if np.isnan(value) else f"{value:.2f}",
            ha="center",
            va="center",
            fontsize=7,
            color=text_colour(value, low, high, metric),
        )
    modality = matrix["modality"]
    ax.set_xticks(range(len(p_test)), [f"{p:g}" for p in p_test])
    ax.set_yticks(range(len(values)), [f"{p:g} (n={n})" for p, n in zip(matrix["p_train"], matrix["n"], strict=True)])
    ax.set(
        xlabel=f"p_test ({modality} missing at test time)",
        ylabel=f"p_train ({modality} missing in training)",
        title=f"{matrix['scope']}: test {metric}, {modality} missing",
    )
    fig.colorbar(image, ax=ax, label=direction(metric))
    return save(fig, path)


def shapley_bars(groups: Sequence[Group], modalities: Sequence[str], metric: str, path: str | Path) -> Path:
    """Mean Shapley contribution of each modality per group, ±1 std error bars over seeds."""
    names = sorted(modalities)
    shown = [g for g in groups if g.get("shapley", {}).get("mean")]
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(names) * max(len(shown), 1) + 2), 4))
    width = 0.8 / max(len(shown), 1)
    x = np.arange(len(names))
    for i, group in enumerate(shown):
        means = [stat(group["shapley"]["mean"].get(m), "mean") for m in names]
        stds = np.nan_to_num([stat(group["shapley"]["mean"].get(m), "std") for m in names])
        index = list(groups).index(group)
        ax.bar(
            x + (i - (len(shown) - 1) / 2) * width,
            means,
            width,
            yerr=stds,
            capsize=3,
            color=color(index),
            label=label(group),
        )
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_xticks(x, names)
    helps = "positive" if higher_is_better(metric) else f"negative (it lowers {metric})"
    ax.set(
        ylabel=f"Shapley contribution to test {direction(metric)}",
        title=f"modality contributions (empty set = chance level; bar = mean, error = ±1 std)\n"
        f"a modality that helps has a {helps} contribution",
    )
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, path)


def tradeoff_scatter(groups: Sequence[Group], pattern: str, metric: str, path: str | Path) -> Path:
    """Test ``metric`` against cost per group, with ±1 std over seeds.

    The cost axis is multiply-accumulates per sample when every group's model reports them
    (deterministic, so the ranking does not depend on how busy the machine was), else the
    measured training throughput. Past a handful of groups the points are numbered and the
    legend moves beside the axes, where it cannot hide them.
    """
    use_macs = all((g.get("model") or {}).get("macs") for g in groups)
    many = len(groups) > 6
    fig, ax = plt.subplots(figsize=(11, 5.5) if many else (7, 4.5))
    for i, group in enumerate(groups):
        y = stat(group["test"].get(pattern, {}).get(metric), "mean")
        x = float(group["model"]["macs"]) / 1e6 if use_macs else stat(group.get("throughput"), "mean")
        if np.isnan(x) or np.isnan(y):
            continue
        xerr = 0.0 if use_macs else np.nan_to_num(stat(group.get("throughput"), "std"))
        yerr = np.nan_to_num(stat(group["test"].get(pattern, {}).get(metric), "std"))
        name = f"{i + 1}: {label(group)}" if many else label(group)
        ax.errorbar(x, y, xerr=xerr, yerr=yerr, fmt="o", color=color(i), capsize=3, label=name)
        text = str(i + 1) if many else tick(group["name"]).split("\n", 1)[-1]
        ax.annotate(text, (x, y), textcoords="offset points", xytext=(5, 5), fontsize=7)
    xlabel = (
        "compute (million multiply-accumulates per sample, lower = cheaper)"
        if use_macs
        else "training throughput (samples/s, higher = faster)"
    )
    ax.set(
        xlabel=xlabel,
        ylabel=f"test {direction(metric)} ({pattern})",
        title=f"test {metric} vs {'compute' if use_macs else 'training speed'} (mean ± 1 std over seeds)",
    )
    ax.margins(x=0.2, y=0.1)
    ax.grid(alpha=0.3)
    if many:
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    else:
        ax.legend(fontsize=7)
    return save(fig, path)
