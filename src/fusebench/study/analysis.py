"""Statistics of a finished (or partly finished) study, from results.json: ``analysis.json``.

The report never computes a number itself: it formats what :func:`analyse` returns, so
the text, the tables and the plots cannot disagree. Every summary carries the seeds it
rests on, comparisons are paired by seed and Holm-adjusted within their family (primary,
secondary; time is described, not tested), and runs that failed or were skipped are
listed with their errors instead of silently shrinking ``n``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fusebench.data.patterns import pattern_name
from fusebench.io import atomic_write_json, read_json, read_json_object
from fusebench.study.analysis_best import best_fusion, best_of
from fusebench.study.analysis_compare import (
    compare_groups,
    comparison_pairs,
    cost_changes,
    family_sizes,
    primary_pairs,
    quantities,
    value_label,
)
from fusebench.study.analysis_decision import decision_rows, recommendation
from fusebench.study.analysis_groups import clean, completed, run_config, run_file, summarise_group, summary
from fusebench.study.analysis_mixture import mixture_grids
from fusebench.study.analysis_modality import (
    axis_changing,
    fusion_facts,
    ptrain_ptest,
    run_modality_analysis,
    train_rates,
)
from fusebench.study.analysis_thesis import change_vs_baseline, monitored_runs, thesis_facts
from fusebench.study.analysis_verdict import attach_power, attach_test_set, best_and_runner_up, fixed_budget
from fusebench.study.analysis_weakness import weakness_analysis
from fusebench.study.results import pretraining_seconds
from fusebench.study.results_schema import check_results
from fusebench.tasks import higher_is_better

CONFIDENCE = 0.95
ALPHA = 0.05
REQUIRED_KEYS = ("modalities", "runs")


def load_results(study_dir: str | Path) -> dict[str, Any]:
    """The study's results.json, rebuilt from its run directories when it is missing.

    Raises:
        FileNotFoundError: no results.json and nothing to rebuild it from.
        ValueError: results.json lacks a key the analysis needs.
    """
    study_dir = Path(study_dir)
    file = study_dir / "results.json"
    if not file.is_file() and (study_dir / "runs").is_dir():
        _rebuild(study_dir)
    if not file.is_file():
        raise FileNotFoundError(
            f"Expected `{file}` (written by `fusebench study`), but it does not exist and "
            f"`{study_dir / 'runs'}` holds no runs to rebuild it from; is `{study_dir}` a study directory?"
        )
    results = read_json(file)
    missing = [k for k in REQUIRED_KEYS if isinstance(results, dict) and k not in results]
    if missing:
        raise ValueError(f"Results file `{file}` lacks the keys {missing} (see docs/study_results.md).")
    check_results(results, file)
    return results


def _rebuild(study_dir: Path) -> None:
    try:
        from fusebench.study import results as results_module
    except ImportError:
        return
    collect = getattr(results_module, "collect_results", None)
    if collect is not None:
        collected = collect(study_dir)
        if isinstance(collected, Mapping) and not (study_dir / "results.json").is_file():
            atomic_write_json(study_dir / "results.json", collected)


def group_name(run: Mapping[str, Any]) -> str:
    if run.get("group"):
        return str(run["group"])
    axes = run.get("axes") or {}
    return "|".join([str(run.get("condition")), *(f"{k}={value_label(v)}" for k, v in axes.items())])


def _ordered_groups(results: Mapping[str, Any], fusion: Sequence[Mapping[str, Any]]) -> list[str]:
    """Groups in study order: by condition, then by the order of each axis' values."""
    conditions = list(results.get("conditions") or [])
    axes = results.get("axes") or {}

    def rank(run: Mapping[str, Any]) -> tuple[int, ...]:
        condition = run.get("condition")
        first = conditions.index(condition) if condition in conditions else len(conditions)
        labels = {k: [value_label(v) for v in values] for k, values in axes.items()}
        run_axes = run.get("axes") or {}
        rest = [labels[k].index(value_label(run_axes[k])) if k in run_axes and value_label(run_axes[k])
                in labels[k] else len(labels[k]) for k in axes]
        return (first, *rest)

    names: dict[str, tuple[int, ...]] = {}
    for run in fusion:
        names.setdefault(group_name(run), rank(run))
    return sorted(names, key=lambda name: names[name])


def analyse(results: Mapping[str, Any], study_dir: str | Path) -> dict[str, Any]:
    """Every number the report shows, computed from ``results`` and the run directories.

    Args:
        results: the parsed results.json (docs/study_results.md).
        study_dir: the study directory; run directories are resolved against it.

    Returns:
        A JSON-ready dict (NaN written as ``None``) with ``setup``, ``groups``,
        ``comparisons``, ``not_compared``, ``ptrain_ptest``, ``failed_runs`` and the
        analysis settings it used.
    """
    study_dir = Path(study_dir)
    settings = results.get("analysis") or {}
    modalities = sorted(results["modalities"])
    full = pattern_name(modalities)
    metric = settings.get("primary_metric") or "accuracy"
    patterns = list(settings.get("patterns") or results.get("patterns") or [full])
    higher = higher_is_better(metric)
    conditions = list(results.get("conditions") or [])
    baseline = settings.get("baseline") or (conditions[0] if conditions else None)
    axes = dict(results.get("axes") or {})
    fusion = [r for r in results["runs"] if r.get("kind", "fusion") == "fusion"]
    by_group: dict[str, list[Mapping[str, Any]]] = {}
    for run in fusion:
        by_group.setdefault(group_name(run), []).append(run)
    groups = []
    for name in _ordered_groups(results, fusion):
        group = summarise_group(name, by_group[name], study_dir=study_dir, modalities=modalities,
                                patterns=patterns, metric=metric, threshold=settings.get("threshold"),
                                higher_is_better=higher)
        group.update(clean(run_modality_analysis(study_dir, by_group[name], modalities, metric,
                                                 settings.get("chance"))))
        group.update(clean(thesis_facts(study_dir, by_group[name], patterns, metric, higher)))
        if len(modalities) > 1:  # MMPT Definition 3 weakness (probes) beside fusebench's headroom
            group["mmpt_weakness"] = clean(weakness_analysis(study_dir, by_group[name], modalities, metric,
                                                             settings.get("chance")))
        groups.append(group)
    changes = change_vs_baseline(groups, baseline, patterns, metric)  # the thesis' % change against the baseline
    for group in groups:
        group["change_vs_baseline"] = clean(changes[group["name"]])
    requested = settings.get("comparisons")
    condition_pairs = settings.get("primary") or requested or [(baseline, c) for c in conditions if c != baseline]
    primary = primary_pairs(groups, conditions, axes, condition_pairs)
    pairs = list(dict.fromkeys([*primary, *comparison_pairs(groups, conditions, axes, baseline or "", requested)]))
    loaded = {d for r in fusion for d in r.get("depends_on") or []}  # unimodal experts alone are not pre-training
    pretraining = any((r.get("kind") == "pretrain" and r.get("node") in loaded) or (r.get("timing") or {}).get(
        "pretraining") for r in results["runs"])
    rows = quantities(patterns, metric, full, pretraining, higher_is_better=higher, threshold=settings.get("threshold"))
    ranked = best_and_runner_up(groups, primary, patterns[0], metric, higher)
    post_hoc = [ranked] if ranked and ranked not in pairs and ranked[::-1] not in pairs else []
    comparisons, not_compared = compare_groups(
        pairs, by_group, rows, modalities, CONFIDENCE, primary=primary, primary_pattern=patterns[0],
        post_hoc=post_hoc, interval=settings.get("interval") or "t", metric_higher=higher)
    families = family_sizes(comparisons)
    attach_power(comparisons, ALPHA, families["primary"])
    attach_test_set(study_dir, groups, by_group, comparisons, patterns, metric, CONFIDENCE)
    rates = {g["name"]: train_rates(study_dir, by_group[g["name"]], modalities) for g in groups}
    rates = {k: v for k, v in rates.items() if v}
    fusion_axes = axis_changing(groups, list(axes), fusion_facts(study_dir, groups, by_group))
    primary_index = next((i for i, c in enumerate(comparisons) if c["family"] == "primary"), None)
    setup = _setup(results, study_dir, fusion, groups)
    decision = decision_rows(groups, comparisons, full, metric, higher, ALPHA) if pretraining else []
    return clean({
        "study": results.get("study"), "question": results.get("question") or "",
        "modalities": modalities, "full_pattern": full, "patterns": patterns, "primary_pattern": patterns[0],
        "primary_metric": metric, "higher_is_better": higher, "threshold": settings.get("threshold"),
        "baseline": baseline, "confidence": CONFIDENCE, "alpha": ALPHA, "interval": settings.get("interval") or "t",
        "conditions": conditions, "axes": axes, "seeds": list(results.get("seeds") or []),
        "has_pretraining": pretraining, "setup": setup, "groups": groups,
        "comparisons": comparisons, "not_compared": not_compared, "primary_comparison": primary_index,
        "primary_pairs": [list(p) for p in primary], "families": families,
        "best_vs_runner_up": _best_vs_runner_up(ranked, comparisons, patterns[0]),
        "fixed_budget": fixed_budget(groups, baseline, setup["epochs"], full, metric, higher),
        "costs": cost_changes(pairs, groups),
        "decision": {"rows": decision, "recommendation": recommendation(decision, higher)},
        "ptrain_ptest": ptrain_ptest(groups, list(axes), rates, modalities),
        "fusion_axes": fusion_axes,
        "best_of": best_of(groups, settings.get("best_of") or {}, patterns, metric, higher),  # MMPT 004 Sec. 4.1
        "best_fusion": best_fusion(study_dir, groups, by_group, results["runs"], modalities, metric, higher,
                                   baseline),  # MMPT 004 Sec. 4.5
        "mixture": mixture_grids(study_dir, groups, by_group, results["runs"], modalities, metric),  # App. B
        "failed_runs": [_failure(r) for r in results["runs"] if not completed(r)],
        "monitoring_runs": monitored_runs(study_dir, results["runs"]),
    })


def _best_vs_runner_up(ranked: tuple[str, str] | None, comparisons: Sequence[Mapping[str, Any]],
                       pattern: str) -> dict[str, Any] | None:
    """Which comparison pits the best group against the runner-up on the primary quantity."""
    if ranked is None:
        return None
    runner_up, best = ranked
    index = next((i for i, c in enumerate(comparisons) if c["kind"] == "test" and c["pattern"] == pattern
                  and {c["group_a"], c["group_b"]} == {runner_up, best}), None)
    return {"best": best, "runner_up": runner_up, "comparison": index}


def _failure(run: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("node", "kind", "condition", "modality", "seed", "status", "error", "run_dir")
    record = {k: run.get(k) for k in keys}
    record["group"] = group_name(run) if run.get("kind", "fusion") == "fusion" else None
    record["depends_on"] = list(run.get("depends_on") or [])
    return record


def _setup(results: Mapping[str, Any], study_dir: Path, fusion: Sequence[Mapping[str, Any]],
           groups: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """What ran: data size, epochs, optimiser, pre-training settings and the machine."""
    done = [r for r in fusion if completed(r)]
    config = run_config(study_dir, done[0]) if done else {}
    data, training = config.get("data") or {}, config.get("training") or {}
    full = pattern_name(sorted(results["modalities"]))
    test_counts = sorted({int(r["test"][full]["count"]) for r in done if "count" in r.get("test", {}).get(full, {})})
    pretrain: dict[str, Any] = {}
    for run in (r for r in results["runs"] if r.get("kind") == "pretrain"):
        entry = pretrain.setdefault(str(run.get("modality")), {"nodes": 0, "completed": 0, "seconds": [],
                                                               "epochs": None, "data_fraction": None})
        entry["nodes"] += 1
        if completed(run):
            entry["completed"] += 1
            entry["seconds"].append(pretraining_seconds(run.get("timing") or {}))
            pre_config = run_config(study_dir, run)
            entry["epochs"] = (pre_config.get("training") or {}).get("epochs")
            entry["data_fraction"] = (pre_config.get("pretrain") or {}).get("data_fraction")
    for entry in pretrain.values():
        entry["seconds"] = summary(entry["seconds"])
    return {
        "runs_total": len(results["runs"]), "runs_completed": sum(1 for r in results["runs"] if completed(r)),
        "runs_pending": int((results.get("progress") or {}).get("pending") or 0),
        "fusion_runs": len(fusion), "groups": len(groups),
        "epochs": training.get("epochs"), "optimizer": training.get("optimizer"),
        "early_stopping": (training.get("early_stopping") or {}).get("enabled"),
        "batch_size": data.get("batch_size"), "data_limit": data.get("limit") or {},
        "train_fraction": data.get("train_fraction"), "dataset": data.get("dataset"),
        "test_samples": test_counts, "pretraining": pretrain,
        "environment": _environment(study_dir, done),
        "timing_conditions": _timing_conditions(results, done),
    }


def _timing_conditions(results: Mapping[str, Any], done: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Under what concurrency the completed runs were timed (``execution`` in results.json).

    A node is attributed to the last session that ran it. ``unrecorded`` counts completed
    runs no session lists (a study from before this record, or results assembled by hand).
    """
    ran_in: dict[str, Mapping[str, Any]] = {}
    for session in results.get("execution") or []:
        for node in session.get("nodes") or []:
            ran_in[node] = session
    timed = [r for r in results["runs"] if completed(r)]
    sessions = [ran_in[r["node"]] for r in timed if r.get("node") in ran_in]
    loads = [s["load_average"][0] for s in sessions if s.get("load_average")]
    return {
        "max_workers": max((int(s.get("workers") or 1) for s in sessions), default=None),
        "cpus": max((int(s["cpus"]) for s in sessions if s.get("cpus")), default=None),
        "threads_per_run": max((int(s.get("threads_per_run") or 1) for s in sessions), default=None),
        "max_load_average": max(loads, default=None), "unrecorded": len(timed) - len(sessions),
        "fusion_runs": len(done),
    }


def _environment(study_dir: Path, runs: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
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


def write_analysis(study_dir: str | Path, results: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Analyse a study directory and write ``analysis.json`` atomically; returns the analysis."""
    study_dir = Path(study_dir)
    analysis = analyse(results if results is not None else load_results(study_dir), study_dir)
    atomic_write_json(study_dir / "analysis.json", analysis)
    return analysis
