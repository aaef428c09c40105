"""Report rows for the thesis' reporting (``analysis_thesis``) and the per-run monitoring figures.

Cells are formatted strings built from analysis.json only, like the rest of the report.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fusebench.engine.monitoring import read_monitoring
from fusebench.study.plots_monitoring import monitoring_figure
from fusebench.study.report_text import mean_std, percent
from fusebench.study.thesis import EFFICIENCY_SCALE

MB = 1e6


def _scaled(summary: Mapping[str, Any] | None, factor: float) -> dict[str, Any] | None:
    """A summary with mean and std multiplied by ``factor`` (bytes -> MB, efficiency x 1000)."""
    if not summary:
        return None
    return {**summary, **{k: summary[k] * factor for k in ("mean", "std") if summary.get(k) is not None}}


def change_rows(analysis: Mapping[str, Any]) -> list[dict[str, Any]]:
    """% change of each non-baseline group's mean test metric against its baseline group, per pattern."""
    rows = []
    for group in analysis["groups"]:
        change = group.get("change_vs_baseline") or {}
        if change.get("reference") is None:
            continue
        rows.append(
            {
                "name": group["name"],
                "n": group["n"],
                "reference": change["reference"],
                "cells": [percent(change["patterns"].get(p), digits=1) for p in analysis["patterns"]],
            }
        )
    return rows


def efficiency_rows(analysis: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per group: efficiency, best- vs last-epoch validation metric (full pattern), resources."""
    full = analysis["full_pattern"]
    rows = []
    for group in analysis["groups"]:
        best_last = (group.get("best_vs_last") or {}).get(full) or {}
        resources = group.get("resources") or {}
        rows.append(
            {
                "name": group["name"],
                "n": group["n"],
                "efficiency": mean_std(_scaled((group.get("efficiency") or {}).get(full), EFFICIENCY_SCALE), 3),
                "best": mean_std(best_last.get("best")),
                "best_epoch": mean_std(best_last.get("best_epoch"), 1),
                "last": mean_std(best_last.get("last")),
                "gap": mean_std(best_last.get("gap")),
                "weights_mb": mean_std(_scaled(resources.get("weights_bytes"), 1 / MB), 2),
                "checkpoint_mb": mean_std(_scaled(resources.get("checkpoint_bytes"), 1 / MB), 2),
                "peak_rss_mb": mean_std(_scaled(resources.get("peak_rss_bytes"), 1 / MB), 0),
                "peak_cuda_mb": mean_std(_scaled(resources.get("peak_cuda_bytes"), 1 / MB), 0),
                "inference": mean_std(resources.get("inference_samples_per_second"), 0),
            }
        )
    return rows


def monitoring_figures(analysis: Mapping[str, Any], study_dir: Path, folder: Path) -> list[dict[str, Any]]:
    """One figure per monitored run (``figures/monitoring_<node>.png``): ``[{label, node, path}]``."""
    figures = []
    for run in analysis.get("monitoring_runs") or []:
        records = read_monitoring(study_dir / run["run_dir"])
        if records:
            path = monitoring_figure(records, run["label"], folder / f"monitoring_{run['node']}.png")
            figures.append({"label": run["label"], "node": run["node"], "path": path})
    return figures
