"""The long format of ``results.json``: one value per row, and ``results.csv`` made of those rows.

Separate from :mod:`fusebench.study.results`, which reads the run folders into
``results.json``: this module only reshapes that payload (test metrics, per-epoch
validation metrics, timing and the thesis' per-run quantities) for pandas and CSV readers,
so ``StudyRecord.to_frame`` gives the same rows from loaded records without a study folder.
"""

from __future__ import annotations

import csv
import io
from functools import partial
from typing import Any

from fusebench.study.spec_models import format_value
from fusebench.study.thesis import baseline_run, best_and_last, efficiency, percent_change
from fusebench.tasks import higher_is_better


def long_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Long format, one value per row: test metrics, per-epoch validation metrics, timing and the thesis'
    quantities; the columns are ``node, kind, condition, modality, seed, <axes...>, status, split,
    epoch, pattern, metric, value`` (None where a column does not apply)."""
    axes = list(results["axes"])
    rows: list[dict[str, Any]] = []
    for run in results["runs"]:
        head = {
            "node": run["node"],
            "kind": run["kind"],
            "condition": run["condition"],
            "modality": run["modality"],
            "seed": run["seed"],
            **{a: format_value(run["axes"][a]) if a in run["axes"] else None for a in axes},
            "status": run["status"],
        }
        add = partial(_add_row, rows, head)
        for pattern, metrics in run["test"].items():
            for metric, value in metrics.items():
                add("test", None, pattern, metric, value)
        for pattern, metrics in run["curves"]["validation"].items():
            for metric, values in metrics.items():
                for epoch, value in enumerate(values, start=1):
                    add("validation", epoch, pattern, metric, value)
        for key, value in run["timing"].items():
            if isinstance(value, dict):
                for modality, seconds in value.items():
                    add("timing", None, modality, key, seconds)
            elif value is not None:
                add("timing", None, None, key, value)
        for split, epoch, pattern, metric, value in _thesis_rows(run, results):
            add(split, epoch if epoch != "" else None, pattern or None, metric, value)
    return rows


def _add_row(
    rows: list[dict[str, Any]],
    head: dict[str, Any],
    split: str,
    epoch: int | None,
    pattern: str | None,
    metric: str,
    value: Any,
) -> None:
    rows.append({**head, "split": split, "epoch": epoch, "pattern": pattern, "metric": metric, "value": value})


def results_csv(results: dict[str, Any]) -> str:
    """:func:`long_rows` as CSV (an empty cell where a column does not apply)."""
    columns = [
        "node",
        "kind",
        "condition",
        "modality",
        "seed",
        *results["axes"],
        "status",
        "split",
        "epoch",
        "pattern",
        "metric",
        "value",
    ]
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(long_rows(results))
    return out.getvalue()


def _thesis_rows(run: dict[str, Any], results: dict[str, Any]) -> list[list[Any]]:
    """The thesis' per-run quantities (``fusebench.study.thesis``) as ``[split, epoch, pattern, metric, value]``.

    ``resources``: size on disk, peak memory, inference throughput; ``best_epoch`` and
    ``last_epoch``: the primary validation metric at those epochs (the epoch column says
    which); ``efficiency``: test metric per training second; ``vs_baseline``: % change of
    each test metric against the baseline condition's run with the same seed and axes.
    """
    rows: list[list[Any]] = []
    for key, value in (run.get("resources") or {}).items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            rows.append(["resources", "", "", key, value])
    metric = (results.get("analysis") or {}).get("primary_metric") or "accuracy"
    for pattern, curves in run["curves"]["validation"].items():
        summary = best_and_last(curves.get(metric, []), higher_is_better(metric))
        if summary is not None:
            rows.append(["best_epoch", summary["best_epoch"], pattern, metric, summary["best"]])
            rows.append(["last_epoch", summary["last_epoch"], pattern, metric, summary["last"]])
    training = (run.get("timing") or {}).get("training")
    for pattern, metrics in run["test"].items():
        value = efficiency(metrics.get(metric), training, higher_is_better(metric))
        if value is not None:
            rows.append(["efficiency", "", pattern, f"{metric}_per_training_second", value])
    reference = baseline_run(run, results["runs"], (results.get("analysis") or {}).get("baseline"))
    if reference is not None:
        for pattern, metrics in run["test"].items():
            for name, value in metrics.items():
                change = percent_change(value, reference["test"].get(pattern, {}).get(name))
                if name != "count" and change is not None:
                    rows.append(["vs_baseline", "", pattern, f"{name}_pct_change", change])
    return rows
