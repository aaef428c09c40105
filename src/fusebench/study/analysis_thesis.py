"""Per-group summaries of the thesis' reporting: % change against the baseline, efficiency,
best- vs last-epoch metric, and resources (size on disk, peak memory, inference throughput).

The per-run quantities are defined in ``fusebench.study.thesis`` (with the thesis sections
they come from); here they are summarised over each group's completed seeds, like every
other group summary (``n`` plus mean, std and interval). The % change against the baseline
is the thesis' figure (000_*.txt, Figs. 7.6-7.9): the change of the group's mean against
the mean of the baseline condition's group at the same axis values; the per-seed paired
changes are in results.csv (``vs_baseline``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fusebench.engine.footprint import RESOURCES_FILE
from fusebench.engine.monitoring import MONITORING_FILE
from fusebench.io import read_json
from fusebench.study.analysis_groups import run_file, summary, test_value, validation_curve
from fusebench.study.records import RunRecord
from fusebench.study.thesis import best_and_last, efficiency, percent_change

RESOURCE_KEYS = (
    "weights_bytes",
    "checkpoint_bytes",
    "peak_rss_bytes",
    "peak_cuda_bytes",
    "inference_samples_per_second",
)


def _resources(study_dir: Path, run: RunRecord) -> dict[str, Any]:
    recorded = run.resources
    if recorded:
        return dict(recorded)
    file = run_file(study_dir, run, RESOURCES_FILE)
    return read_json(file) if file is not None else {}


def thesis_facts(
    study_dir: Path, runs: Sequence[RunRecord], patterns: Sequence[str], metric: str, higher_is_better: bool
) -> dict[str, Any]:
    """``efficiency``, ``best_vs_last`` and ``resources`` of one group, from its completed runs."""
    done = [r for r in runs if r.completed]
    resources = [_resources(study_dir, r) for r in done]
    best_last: dict[str, Any] = {}
    for pattern in patterns:
        per_run = [best_and_last(validation_curve(r, pattern, metric), higher_is_better) for r in done]
        present = [s for s in per_run if s is not None]
        if present:
            best_last[pattern] = {
                key: summary([s[key] for s in present]) for key in ("best", "last", "best_epoch", "last_epoch", "gap")
            }
    return {
        "efficiency": {
            p: summary([efficiency(test_value(r, p, metric), r.seconds("training"), higher_is_better) for r in done])
            for p in patterns
        },
        "best_vs_last": best_last,
        "resources": {key: summary([res.get(key) for res in resources]) for key in RESOURCE_KEYS},
        "peak_rss_scope": sorted({str(res["peak_rss_scope"]) for res in resources if res.get("peak_rss_scope")}),
    }


def change_vs_baseline(
    groups: Sequence[Mapping[str, Any]], baseline: str | None, patterns: Sequence[str], metric: str
) -> dict[str, dict[str, Any]]:
    """Group name -> ``{"reference": baseline group, "patterns": {pattern: % change of the mean}}``.

    The baseline's own groups and groups without a baseline group at the same axis values
    get ``reference: None`` and no changes.
    """
    by_key = {(g.get("condition"), _axes_key(g)): g for g in groups}
    changes: dict[str, dict[str, Any]] = {}
    for group in groups:
        reference = by_key.get((baseline, _axes_key(group)))
        if reference is None or group.get("condition") == baseline:
            changes[group["name"]] = {"reference": None, "patterns": {}}
            continue
        changes[group["name"]] = {
            "reference": reference["name"],
            "patterns": {p: percent_change(_mean(group, p, metric), _mean(reference, p, metric)) for p in patterns},
        }
    return changes


def monitored_runs(study_dir: Path, runs: Sequence[RunRecord]) -> list[dict[str, Any]]:
    """The completed runs (fusion and pre-training) that wrote ``monitoring.jsonl``, in results order."""
    found = []
    for run in runs:
        if run.completed and run_file(study_dir, run, MONITORING_FILE) is not None:
            label = run.group or f"pretrain {run.modality}"
            found.append({"node": run.node, "run_dir": run.run_dir, "label": f"{label}, seed {run.seed}"})
    return found


def _axes_key(group: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((str(k), repr(v)) for k, v in (group.get("axes") or {}).items()))


def _mean(group: Mapping[str, Any], pattern: str, metric: str) -> float | None:
    value = ((group.get("test") or {}).get(pattern) or {}).get(metric)
    return None if value is None else value.get("mean")
