"""Study figures from analysis.json: learning curves, first epoch, epochs to threshold, time, heatmap.

Each function takes plain data from analysis.json (lists of group dicts) and writes one
PNG, so a figure can only show numbers the report's tables also show. Bands and error
bars are labelled with what they are (min-max or +-1 std over seeds) and every group
label carries its ``n``: a band over two seeds must not look like one over ten.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from fusebench.tasks import higher_is_better as _higher_is_better  # noqa: E402

DPI = 110
Group = Mapping[str, Any]


def color(index: int) -> Any:
    """The colour of the ``index``-th group, the same in every figure of a report."""
    return plt.get_cmap("tab10")(index % 10)


def tick(name: str) -> str:
    """Group names break at ``|`` so axis labels stay readable."""
    return name.replace("|", "\n")


def label(group: Group) -> str:
    return f"{group['name']} (n={group['n']})"


def save(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` as a PNG without a timestamp or version stamp, so output is reproducible."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return path


def direction(metric: str) -> str:
    """``"mae (lower is better)"``: axis labels say which way is good, as a lower MAE is better."""
    return f"{metric} ({'higher' if _higher_is_better(metric) else 'lower'} is better)"


def colormap(metric: str) -> str:
    """viridis with yellow = better for either direction, so a heatmap reads alike for accuracy and MAE."""
    return "viridis" if _higher_is_better(metric) else "viridis_r"


def text_colour(value: float, low: float, high: float, metric: str) -> str:
    """White on the dark half of :func:`colormap`, black on the bright half."""
    dark = value < (low + high) / 2 if _higher_is_better(metric) else value > (low + high) / 2
    return "white" if dark else "black"


def as_array(items: Sequence[Any]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in items], dtype=float)


def stat(summary: Mapping[str, Any] | None, key: str) -> float:
    value = None if summary is None else summary.get(key)
    return float("nan") if value is None else float(value)


def learning_curves(groups: Sequence[Group], pattern: str, metric: str, path: str | Path) -> Path:
    """Validation ``metric`` and loss per epoch: mean over seeds, band from min to max."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for i, group in enumerate(groups):
        for ax, name in zip(axes, (metric, "loss"), strict=True):
            band = group["curves"].get(pattern, {}).get(name) or {}
            if not band.get("epoch"):
                continue
            epochs = np.array(band["epoch"])
            ax.plot(epochs, as_array(band["mean"]), marker="o", ms=3, color=color(i), label=label(group))
            ax.fill_between(
                epochs, as_array(band["min"]), as_array(band["max"]), color=color(i), alpha=0.15, linewidth=0
            )
    for ax, name in zip(axes, (metric, "loss"), strict=True):
        ax.set(xlabel="epoch", ylabel=f"validation {direction(name)}", title=f"validation {name} ({pattern})")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, title="mean; band = min-max over seeds", title_fontsize=8)
    return save(fig, path)


def _bars(
    ax: Any, groups: Sequence[Group], means: Sequence[float], stds: Sequence[float], dots: Sequence[Sequence[float]]
) -> None:
    x = np.arange(len(groups))
    ax.bar(x, means, yerr=np.nan_to_num(stds), capsize=4, color=[color(i) for i in range(len(groups))], alpha=0.7)
    for i, values in enumerate(dots):
        ax.scatter(np.full(len(values), x[i]), values, color="black", s=12, zorder=3)
    ax.set_xticks(x, [f"{tick(g['name'])}\nn={g['n']}" for g in groups], fontsize=8)
    ax.grid(axis="y", alpha=0.3)


def first_epoch_bars(groups: Sequence[Group], metric: str, path: str | Path) -> Path:
    """First-epoch validation metric and loss: mean bars, +-1 std error bars, one dot per seed."""
    fig, axes = plt.subplots(1, 2, figsize=(max(10, 2.6 * len(groups)), 4))
    for ax, key, name in ((axes[0], "metric", metric), (axes[1], "loss", "loss")):
        seed_key = "first_epoch" if key == "metric" else "first_epoch_loss"
        summaries = [g["first_epoch"][key] for g in groups]
        dots = [[s[seed_key] for s in g["per_seed"] if s[seed_key] is not None] for g in groups]
        _bars(ax, groups, [stat(s, "mean") for s in summaries], [stat(s, "std") for s in summaries], dots)
        ax.set(ylabel=f"validation {direction(name)} after epoch 1", title=f"first-epoch validation {name}")
    fig.suptitle("bar = mean, error bar = ±1 std, dot = one seed", fontsize=9, y=0.02, va="bottom")
    fig.subplots_adjust(bottom=0.22)
    return save(fig, path)


def epochs_to_threshold_bars(
    groups: Sequence[Group], metric: str, path: str | Path, higher_is_better: bool = True
) -> Path:
    """Kaplan-Meier median epochs to the threshold; hatched bars where the median was not reached.

    A hatched bar stands at the longest follow-up and means "more than this". Each seed is
    a dot (reached at that epoch) or a hollow triangle just above its last epoch (never
    reached: censored). The tick label repeats the table's text, e.g. ">3 (censored 2/3)".
    """
    fig, ax = plt.subplots(figsize=(max(7, 2.4 * len(groups)), 4.5))
    x = np.arange(len(groups))
    threshold = None
    ticks = []
    for i, group in enumerate(groups):
        record = group.get("epochs_to_threshold") or {}
        threshold = record.get("threshold", threshold)
        summary = record.get("summary")
        ticks.append(
            f"{tick(group['name'])}\n"
            + (summary["display"].replace(" (", "\n(").replace(", c", ",\nc") if summary else "n/a")
        )
        if summary is None:
            continue
        censored = summary["km_median"] is None
        height = summary["max_follow_up"] if censored else summary["km_median"]
        ax.bar(
            x[i],
            height,
            color=color(i),
            alpha=0.35 if censored else 0.7,
            hatch="//" if censored else None,
            edgecolor="black" if censored else color(i),
        )
        seeds = record["per_seed"]
        offsets = np.linspace(-0.25, 0.25, len(seeds)) if len(seeds) > 1 else [0.0]
        for offset, seed in zip(offsets, seeds, strict=True):
            if seed["censored"]:
                ax.scatter(
                    x[i] + offset,
                    seed["max_epochs"] + 0.15,
                    marker="^",
                    facecolors="none",
                    edgecolors="black",
                    s=30,
                    zorder=3,
                )
            else:
                ax.scatter(x[i] + offset, seed["epochs"], color="black", s=16, zorder=3)
    ax.set_xticks(x, ticks, fontsize=8)
    goal = f"validation {metric} {'≥' if higher_is_better else '≤'} {threshold}"
    ax.set(
        ylabel="epochs",
        title=f"epochs to {goal}\n(bar = Kaplan-Meier median; hatched = median not reached; "
        "● seed reached, △ seed censored)",
    )
    locator = ax.yaxis.get_major_locator()
    if isinstance(locator, MaxNLocator):  # the default AutoLocator is one: whole epochs only
        locator.set_params(integer=True)
    ax.margins(y=0.15)
    ax.grid(axis="y", alpha=0.3)
    return save(fig, path)


TIME_STACK = (("training", "main training"), ("evaluation", "validation + test"), ("other", "data, setup, I/O"))


def time_bars(groups: Sequence[Group], modalities: Sequence[str], path: str | Path) -> Path:
    """Mean wall time per seed, stacked: pre-training per modality, training, evaluation, other.

    Left: each run charged the full cost (data + fit) of its pre-trained encoders; right:
    that cost shared among the completed runs of this study that load the same encoder
    (a sharing that exists only within this study's arms).
    """
    pretrained = any(_time(g, "pretraining_full") > 0 for g in groups)
    kinds = ("full", "amortised") if pretrained else ("none",)
    fig, axes = plt.subplots(1, len(kinds), figsize=(6 * len(kinds), 0.7 * len(groups) + 2), sharex=True, squeeze=False)
    axes = axes[0]
    y = np.arange(len(groups))
    colours = plt.get_cmap("Set2")
    for ax, kind in zip(axes, kinds, strict=True):
        left = np.zeros(len(groups))
        parts = [(f"pretraining_{kind}/{m}", f"pre-training {m}") for m in modalities if pretrained]
        parts += list(TIME_STACK)
        for j, (key, name) in enumerate(parts):
            widths = np.array([_time(g, key) for g in groups])
            ax.barh(y, widths, left=left, color=colours(j), label=name)
            left += widths
        for i, total in enumerate(left):
            ax.text(total, y[i], f" {total:.2f} s", va="center", fontsize=8)
        ax.set_yticks(y, [f"{tick(g['name'])} (n={g['n']})" for g in groups], fontsize=8)
        ax.invert_yaxis()
        titles = {
            "none": "wall time (no pre-training)",
            "full": "wall time, full pre-training cost",
            "amortised": "wall time, pre-training shared among this study's arms",
        }
        ax.set(xlabel="mean seconds per seed", title=titles[kind])
        ax.margins(x=0.15)
        ax.grid(axis="x", alpha=0.3)
    handles, names = axes[-1].get_legend_handles_labels()
    fig.legend(handles, names, fontsize=8, loc="upper center", ncol=len(names), bbox_to_anchor=(0.5, 0.0))
    return save(fig, path)


def _time(group: Group, key: str) -> float:
    time = group.get("time") or {}
    if key == "evaluation":
        return float(np.nansum([stat(time.get("validation"), "mean"), stat(time.get("test"), "mean")]))
    value = stat(time.get(key), "mean")
    return 0.0 if np.isnan(value) else value


def pattern_heatmap(groups: Sequence[Group], patterns: Sequence[str], metric: str, path: str | Path) -> Path:
    """Final test ``metric`` per pattern (rows) and group (columns), annotated mean ± std."""
    means = np.array([[stat(g["test"].get(p, {}).get(metric), "mean") for g in groups] for p in patterns])
    stds = np.array([[stat(g["test"].get(p, {}).get(metric), "std") for g in groups] for p in patterns])
    fig, ax = plt.subplots(figsize=(max(5, 1.6 * len(groups) + 2), 0.6 * len(patterns) + 2))
    image = ax.imshow(np.ma.masked_invalid(means), cmap=colormap(metric), aspect="auto")
    finite = means[np.isfinite(means)]
    low, high = (finite.min(), finite.max()) if finite.size else (0.0, 0.0)
    for (r, c), value in np.ndenumerate(means):
        text = "n/a" if np.isnan(value) else f"{value:.3f}" + ("" if np.isnan(stds[r, c]) else f"\n±{stds[r, c]:.3f}")
        ax.text(c, r, text, ha="center", va="center", fontsize=8, color=text_colour(value, low, high, metric))
    ax.set_xticks(range(len(groups)), [f"{tick(g['name'])}\nn={g['n']}" for g in groups], fontsize=8)
    ax.set_yticks(range(len(patterns)), patterns)
    ax.set_title(f"test {metric} per pattern (mean ± std over seeds)")
    fig.colorbar(image, ax=ax, label=direction(metric))
    return save(fig, path)
