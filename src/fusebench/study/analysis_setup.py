"""What a study ran on: data size, epochs, optimiser, pre-training, machine and concurrency.

The ``setup`` section of ``analysis.json``, read from the run directories' configs and
env.json files and the sessions recorded in results.json. It describes the conditions
the numbers were measured under (the report states them beside the times, which depend
on concurrency) and compares nothing, so it is kept apart from the statistics that
:mod:`fusebench.study.analysis` assembles.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fusebench.data.patterns import pattern_name
from fusebench.io import read_json_object
from fusebench.study.analysis_groups import run_config, run_file, summary
from fusebench.study.records import RunRecord, StudyRecord
from fusebench.study.results import pretraining_seconds


def describe_setup(
    results: StudyRecord, study_dir: Path, fusion: Sequence[RunRecord], groups: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """What ran: data size, epochs, optimiser, pre-training settings and the machine."""
    done = [r for r in fusion if r.completed]
    config = run_config(study_dir, done[0]) if done else {}
    data, training = config.get("data") or {}, config.get("training") or {}
    full = pattern_name(sorted(results.modalities))
    test_counts = sorted({int(count) for r in done if (count := r.test.get(full, {}).get("count")) is not None})
    pretrain: dict[str, Any] = {}
    for run in (r for r in results.runs if r.kind == "pretrain"):
        pre_config = run_config(study_dir, run)
        dataset = (pre_config.get("data") or {}).get("dataset")  # a related-task pre-training is listed apart
        name = str(run.modality) + (f" ({dataset})" if dataset and dataset != data.get("dataset") else "")
        entry = pretrain.setdefault(
            name, {"nodes": 0, "completed": 0, "seconds": [], "epochs": None, "data_fraction": None}
        )
        entry["nodes"] += 1
        if run.completed:
            entry["completed"] += 1
            entry["seconds"].append(pretraining_seconds(dict(run.timing)))
            entry["epochs"] = (pre_config.get("training") or {}).get("epochs")
            entry["data_fraction"] = (pre_config.get("pretrain") or {}).get("data_fraction")
    for entry in pretrain.values():
        entry["seconds"] = summary(entry["seconds"])
    return {
        "runs_total": len(results.runs),
        "runs_completed": sum(1 for r in results.runs if r.completed),
        "runs_pending": int(results.progress.get("pending") or 0),
        "fusion_runs": len(fusion),
        "groups": len(groups),
        "epochs": training.get("epochs"),
        "optimizer": training.get("optimizer"),
        "early_stopping": (training.get("early_stopping") or {}).get("enabled"),
        "batch_size": data.get("batch_size"),
        "data_limit": data.get("limit") or {},
        "train_fraction": data.get("train_fraction"),
        "dataset": data.get("dataset"),
        "test_samples": test_counts,
        "pretraining": pretrain,
        "environment": _environment(study_dir, done),
        "timing_conditions": _timing_conditions(results, done),
    }


def _timing_conditions(results: StudyRecord, done: Sequence[RunRecord]) -> dict[str, Any]:
    """Under what concurrency the completed runs were timed (``execution`` in results.json).

    A node is attributed to the last session that ran it. ``unrecorded`` counts completed
    runs no session lists (a study from before this record, or results assembled by hand).
    """
    ran_in: dict[str, Mapping[str, Any]] = {}
    for session in results.execution:
        for node in session.get("nodes") or []:
            ran_in[node] = session
    timed = [r for r in results.runs if r.completed]
    sessions = [ran_in[r.node] for r in timed if r.node in ran_in]
    loads = [s["load_average"][0] for s in sessions if s.get("load_average")]
    return {
        "max_workers": max((int(s.get("workers") or 1) for s in sessions), default=None),
        "cpus": max((int(s["cpus"]) for s in sessions if s.get("cpus")), default=None),
        "threads_per_run": max((int(s.get("threads_per_run") or 1) for s in sessions), default=None),
        "max_load_average": max(loads, default=None),
        "unrecorded": len(timed) - len(sessions),
        "fusion_runs": len(done),
    }


def _environment(study_dir: Path, runs: Sequence[RunRecord]) -> dict[str, list[Any]]:
    """Distinct values over runs of the machine facts in env.json (one value when all agree)."""
    seen: dict[str, list[Any]] = {}
    for run in runs:
        file = run_file(study_dir, run, "env.json")
        if file is None:
            continue
        env = read_json_object(file)
        for key in ("device", "threads", "torch", "python", "platform", "fusebench"):
            if key in env and env[key] not in seen.setdefault(key, []):
                seen[key].append(env[key])
    return seen
