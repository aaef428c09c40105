"""Modality-level analysis: Shapley contributions, MMPT curves and p_train x p_test matrices.

All three work on what each run already saved: the per-pattern test metrics in
results.json and the per-pattern test logits in ``test_logits.safetensors``, so no model
is re-run. Shapley values need ``v(empty set)``: the study's configured chance level when
it has one, otherwise the score of the best constant predictor for the run's task
(majority class, per-label majority, training median), fitted on the run's training
targets and saved beside its test logits; the report states which.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import Tensor

from fusebench.data.patterns import pattern_names
from fusebench.engine.contributions import shapley_from_pattern_metrics
from fusebench.engine.mmpt import DEFAULT_P_GRID, mmpt_curve
from fusebench.errors import DamagedFileError
from fusebench.io import read_json
from fusebench.study.analysis_groups import run_config, run_file, summary
from fusebench.study.analysis_pairs import axes_key
from fusebench.study.records import RunRecord
from fusebench.tasks import Task

CHANCE_FROM_TARGETS = (
    "score of the best constant predictor (majority class / per-label majority / training "
    "median), fitted on each run's training targets"
)
#: What the best constant predictor is for each task kind (:meth:`fusebench.tasks.Task.constant_output`).
CONSTANT_PREDICTOR = {
    "multiclass": "the majority class",
    "multilabel": "each label's majority value",
    "regression": "the training median",
}


def chance_source(kinds: Sequence[str]) -> str:
    """How the empty set's value was obtained, naming the constant predictor of the runs' task."""
    if len(set(kinds)) != 1 or kinds[0] not in CONSTANT_PREDICTOR:
        return CHANCE_FROM_TARGETS
    return (
        f"score of the best constant predictor for this {kinds[0]} task ({CONSTANT_PREDICTOR[kinds[0]]}), "
        "fitted on each run's training targets"
    )


@dataclass(frozen=True)
class SavedOutputs:
    """A run's saved test outputs: ``{pattern: [N, C]}``, the target, the constant predictor, the task."""

    logits: dict[str, Tensor]
    target: Tensor
    constant: Tensor
    task: Task


def load_logits(study_dir: Path, run: RunRecord) -> SavedOutputs | None:
    """A run's ``test_logits.safetensors`` with its task (from ``data.json``), or ``None`` if it saved none.

    Runs from before tasks were recorded are multiclass, and their constant predictor is
    the majority class of the test targets.
    """
    file = run_file(study_dir, run, "test_logits.safetensors")
    if file is None:
        return None
    try:
        tensors = load_file(str(file))
    except (SafetensorError, OSError) as error:
        raise DamagedFileError(
            f"`{file}` is not a readable safetensors file ({error}); write it again with "
            f"`fusebench evaluate {file.parent}`."
        ) from None
    if "target" not in tensors:
        raise DamagedFileError(f"Expected a `target` tensor in `{file}`, got keys {sorted(tensors)}.")
    logits = {k.removeprefix("logits/"): v for k, v in tensors.items() if k.startswith("logits/")}
    described = file.with_name("data.json")
    recorded = read_json(described).get("task") if described.is_file() else None
    task = Task.from_description(recorded) if recorded else Task("multiclass", next(iter(logits.values())).shape[1])
    constant = tensors.get("constant")
    return SavedOutputs(
        logits, tensors["target"], constant if constant is not None else task.constant_output(tensors["target"]), task
    )


def mean_band(curves: Sequence[Sequence[float]]) -> dict[str, Any]:
    """Per-seed curves ``[seeds, p]`` summarised per ``p``: mean, sample std, min and max over the seeds."""
    values = np.array(curves, dtype=float)  # [seeds, p]
    n = values.shape[0]
    return {
        "mean": values.mean(axis=0).tolist(),
        "std": values.std(axis=0, ddof=1).tolist() if n > 1 else [None] * values.shape[1],
        "min": values.min(axis=0).tolist(),
        "max": values.max(axis=0).tolist(),
        "n": n,
    }


def run_modality_analysis(
    study_dir: Path,
    runs: Sequence[RunRecord],
    modalities: Sequence[str],
    metric: str,
    configured_chance: float | None,
    p_grid: Sequence[float] = DEFAULT_P_GRID,
) -> dict[str, Any]:
    """Shapley values and MMPT curves of one group's completed runs, averaged over seeds."""
    names = sorted(modalities)
    patterns = pattern_names(names)
    per_seed: dict[str, dict[str, float]] = {}
    chance: dict[str, float] = {}
    curves: dict[str, list[list[float]]] = {m: [] for m in names}
    notes: list[str] = []
    kinds: list[str] = []
    for run in sorted((r for r in runs if r.completed), key=lambda r: r.seed):
        seed = str(run.seed)
        saved = load_logits(study_dir, run)
        kinds += [saved.task.kind] if saved is not None else []
        if configured_chance is not None:
            floor = float(configured_chance)
        elif saved is not None:
            floor = saved.task.constant_score(saved.constant, saved.target, metric)
        else:
            notes.append(f"seed {seed}: no test_logits.safetensors, so no chance level, Shapley or MMPT curve")
            continue
        try:  # a metric written as null (NaN) stays NaN
            tests = {p: {k: math.nan if v is None else v for k, v in run.test[p].items()} for p in patterns}
            per_seed[seed] = shapley_from_pattern_metrics(tests, names, metric, floor)
            chance[seed] = float(floor)
        except (KeyError, ValueError) as error:
            notes.append(f"seed {seed}: no Shapley values ({error})")
        if saved is not None and len(names) > 1:
            for m in names:
                points = mmpt_curve(saved.logits, saved.target, names, m, p_grid=p_grid, metric=metric, task=saved.task)
                curves[m].append([p.value for p in points])
    shapley = {
        "per_seed": per_seed,
        "chance": chance,
        "chance_source": "study setting `analysis.chance`" if configured_chance is not None else chance_source(kinds),
        "mean": {m: summary([v[m] for v in per_seed.values()]) for m in names} if per_seed else {},
    }
    mmpt = {m: {"p_test": list(p_grid), **mean_band(c)} for m, c in curves.items() if c}
    return {"shapley": shapley, "mmpt": mmpt, "notes": notes}


def train_rates(study_dir: Path, runs: Sequence[RunRecord], modalities: Sequence[str]) -> dict[str, float]:
    """Configured train-time missing rate per modality, read from a run's resolved config."""
    for run in runs:
        config = run_config(study_dir, run)
        if config:
            rates = (config.get("data") or {}).get("missing_rate") or {}
            return {m: float(rates.get(m, 0.0)) for m in modalities}
    return {}


def _changes(groups: Sequence[Mapping[str, Any]], axis: str, facts: Mapping[str, Any]) -> bool:
    """Whether moving along ``axis`` alone changes ``facts[group]``."""
    seen: dict[tuple[Any, ...], Any] = {}
    for group in groups:
        rest = {k: v for k, v in group["axes"].items() if k != axis}
        key = (group["condition"], axes_key(rest))
        fact = facts.get(group["name"])
        if key in seen and fact and seen[key] and fact != seen[key]:
            return True
        seen.setdefault(key, fact)
    return False


def axis_changing(groups: Sequence[Mapping[str, Any]], axes: Sequence[str], facts: Mapping[str, Any]) -> list[str]:
    """The axes along which ``facts`` (e.g. each group's fusion method) vary."""
    return [a for a in axes if _changes(groups, a, facts)]


def ptrain_ptest(
    groups: Sequence[Mapping[str, Any]],
    axes: Sequence[str],
    rates: Mapping[str, Mapping[str, float]],
    modalities: Sequence[str],
) -> list[dict[str, Any]]:
    """p_train x p_test matrices for every axis that changes the configured train missing rate.

    Rows are the groups along that axis (same condition and other axes), sorted by the
    train missing rate of modality ``m``; columns are the MMPT grid; each cell is the
    seed-averaged MMPT value when ``m`` is missing at test time with that probability.
    """
    matrices = []
    for axis in axis_changing(groups, axes, rates):
        scopes: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
        for group in groups:
            rest = {k: v for k, v in group["axes"].items() if k != axis}
            scopes.setdefault((group["condition"], axes_key(rest)), []).append(group)
        for (condition, rest), members in scopes.items():
            scope = "|".join([condition, *(f"{k}={v}" for k, v in rest)])
            for m in sorted(modalities):
                rows = sorted(
                    (g for g in members if m in g.get("mmpt", {}) and g["name"] in rates),
                    key=lambda g: rates[g["name"]][m],
                )
                if len(rows) < 2:
                    continue
                matrices.append(
                    {
                        "axis": axis,
                        "scope": scope,
                        "modality": m,
                        "groups": [g["name"] for g in rows],
                        "p_train": [rates[g["name"]][m] for g in rows],
                        "p_test": rows[0]["mmpt"][m]["p_test"],
                        "values": [g["mmpt"][m]["mean"] for g in rows],
                        "n": [g["mmpt"][m]["n"] for g in rows],
                    }
                )
    if not matrices:
        matrices = _ptrain_ptest_across_conditions(groups, rates, modalities)
    return matrices


def _ptrain_ptest_across_conditions(
    groups: Sequence[Mapping[str, Any]], rates: Mapping[str, Mapping[str, float]], modalities: Sequence[str]
) -> list[dict[str, Any]]:
    """The same matrices when *conditions* set the rates (one modality dropped at a time).

    Two crossed rate axes would ask for pairs such as audio 0.9 + image 0.2, which cannot
    hold together, so a missing-rate study varies one modality per condition. For modality
    ``m`` the rows are the groups (within equal axis values) in which no other modality is
    dropped at train time, one row per distinct train rate of ``m``.
    """
    scopes: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for group in groups:
        scopes.setdefault(axes_key(group["axes"]), []).append(group)
    matrices = []
    for rest, members in scopes.items():
        for m in sorted(modalities):
            by_rate: dict[float, Mapping[str, Any]] = {}
            for g in members:
                rate = rates.get(g["name"])
                if rate and m in g.get("mmpt", {}) and all(rate[o] == 0 for o in modalities if o != m):
                    by_rate.setdefault(rate[m], g)
            if len(by_rate) < 2:
                continue
            rows = [by_rate[r] for r in sorted(by_rate)]
            matrices.append(
                {
                    "axis": "condition",
                    "scope": "|".join(f"{k}={v}" for k, v in rest) or "all conditions",
                    "modality": m,
                    "groups": [g["name"] for g in rows],
                    "p_train": sorted(by_rate),
                    "p_test": rows[0]["mmpt"][m]["p_test"],
                    "values": [g["mmpt"][m]["mean"] for g in rows],
                    "n": [g["mmpt"][m]["n"] for g in rows],
                }
            )
    return matrices


def fusion_facts(
    study_dir: Path, groups: Sequence[Mapping[str, Any]], runs_by_group: Mapping[str, Sequence[RunRecord]]
) -> dict[str, str]:
    """``{group: "late/gated"}`` from each group's resolved config, to find a fusion axis."""
    facts = {}
    for group in groups:
        for run in runs_by_group[group["name"]]:
            fusion = (run_config(study_dir, run).get("model") or {}).get("fusion") or {}
            if fusion:
                params = ", ".join(f"{k}={v}" for k, v in sorted((fusion.get("params") or {}).items()))
                facts[group["name"]] = f"{fusion.get('type', '?')}/{fusion.get('method', '?')}({params})"
                break
    return facts
