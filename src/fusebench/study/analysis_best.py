"""Selection rules of the MMPT paper (``../shared/papers/004_d6fb5191247edfc1.txt``): best-of arms, Best-Fusion.

- **best of** (``analysis.best_of``), e.g. the paper's modality dropout (section 4.1):
  "we train a separate model for each modality. The reported multimodal performance is the
  maximum of the two." Per pattern, the member condition with the better seed-mean test
  score is reported (at equal axis values), naming which member it was. The paper states
  the rule for the multimodal (full) pattern; applying it to each unimodal pattern too is
  our reading, and the table says which member each cell comes from.
- **Best-Fusion** (section 4.5): "individually selecting the best models for each task
  leads to the best-performing system overall" — the best multimodal model for the full
  pattern and the best model (fusion group or unimodal expert, ``study.experts``) for each
  pattern without one modality. Its MMPT curve when modality ``m`` goes missing with
  probability ``p_test`` mixes, per seed, the chosen full-pattern model's outputs with the
  chosen model's outputs for the pattern without ``m`` (stochastic logit fusion, section
  2.2; exact expectation for per-sample metrics), against the naive model's curve (the
  baseline condition). Only models trained on the whole training split compete (the paper's
  "100% train modality availability").

Both select on the test set, as the paper does; the report says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from fusebench.data.patterns import pattern_name
from fusebench.engine.mmpt import DEFAULT_P_GRID, mmpt_curve
from fusebench.study.analysis_groups import summary
from fusebench.study.analysis_mixture import OutputCache, experts_by_key, group_fractions
from fusebench.study.analysis_modality import mean_band
from fusebench.study.analysis_pairs import axes_key
from fusebench.study.records import RunRecord


def _better(a: float | None, b: float | None, higher: bool) -> bool:
    """Whether ``a`` beats ``b`` (a missing value never wins)."""
    if a is None:
        return False
    return b is None or (a > b if higher else a < b)


def _mean(group: Mapping[str, Any], pattern: str, metric: str) -> float | None:
    value = ((group.get("test") or {}).get(pattern) or {}).get(metric) or {}
    return value.get("mean") if isinstance(value, Mapping) else None


def best_of(
    groups: Sequence[Mapping[str, Any]],
    rules: Mapping[str, Sequence[str]],
    patterns: Sequence[str],
    metric: str,
    higher: bool,
) -> list[dict[str, Any]]:
    """One row per rule and axis-value combination: each pattern's better member (by seed mean)."""
    rows = []
    for name, members in rules.items():
        scopes: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
        for group in groups:
            if group.get("condition") in members:
                scopes.setdefault(axes_key(group["axes"]), []).append(group)
        for rest, candidates in scopes.items():
            cells = {}
            for pattern in patterns:
                chosen: Mapping[str, Any] | None = None
                for group in candidates:
                    if chosen is None or _better(_mean(group, pattern, metric), _mean(chosen, pattern, metric), higher):
                        chosen = group
                value = _mean(chosen, pattern, metric) if chosen is not None else None
                cells[pattern] = {
                    "member": chosen["condition"] if chosen and value is not None else None,
                    "group": chosen["name"] if chosen and value is not None else None,
                    "summary": chosen["test"][pattern][metric] if chosen and value is not None else None,
                }
            rows.append({"name": name, "axes": dict(rest), "members": [g["name"] for g in candidates], "cells": cells})
    return rows


def best_fusion(
    study_dir: Path,
    groups: Sequence[Mapping[str, Any]],
    by_group: Mapping[str, Sequence[RunRecord]],
    all_runs: Sequence[RunRecord],
    *,
    modalities: Sequence[str],
    metric: str,
    higher: bool,
    baseline: str | None,
    p_grid: Sequence[float] = DEFAULT_P_GRID,
) -> dict[str, Any] | None:
    """The Best-Fusion system: chosen model per pattern and its MMPT curves, beside the naive model's.

    ``None`` with one modality or no completed group.
    """
    names = sorted(modalities)
    if len(names) < 2:
        return None
    full = pattern_name(names)
    fractions = group_fractions(study_dir, groups, by_group)
    experts = experts_by_key(study_dir, all_runs)
    top = max([*fractions.values(), *(f for _, f in experts)], default=None)
    if top is None:
        return None
    candidates = [g for g in groups if fractions.get(g["name"]) == top and g["n"]]
    naive = next((g for g in candidates if g.get("condition") == baseline), candidates[0] if candidates else None)
    runs: dict[str, dict[int, RunRecord]] = {
        g["name"]: {r.seed: r for r in by_group[g["name"]] if r.completed} for g in candidates
    }
    means = {
        g["name"]: {
            p: _mean(g, p, metric) for p in [full, *[pattern_name([o for o in names if o != m]) for m in names]]
        }
        for g in candidates
    }
    for (modality, fraction), seeds in experts.items():
        if fraction == top:
            key = f"expert:{modality}"
            runs[key] = seeds
            values = [r.test.get(modality, {}).get(metric) for r in seeds.values()]
            means[key] = {modality: (summary(values) or {}).get("mean")}
    targets = [full, *[pattern_name([o for o in names if o != m]) for m in names]]
    choices: dict[str, dict[str, Any]] = {}
    for pattern in targets:
        best: str | None = None
        for key, by_pattern in means.items():
            if _better(by_pattern.get(pattern), (means[best].get(pattern) if best else None), higher):
                best = key
        if best is not None:
            values = [r.test.get(pattern, {}).get(metric) for r in runs[best].values()]
            choices[pattern] = {
                "source": best,
                "kind": "expert" if best.startswith("expert:") else "fusion",
                "summary": summary(values),
            }
    if full not in choices:
        return None
    outputs = OutputCache(study_dir)
    curves: dict[str, Any] = {}
    notes: list[str] = []
    for m in names:
        rest = pattern_name([o for o in names if o != m])
        if rest not in choices:
            continue
        source_full, source_rest = runs[choices[full]["source"]], runs[choices[rest]["source"]]
        per_seed = []
        for seed in sorted(set(source_full) & set(source_rest)):
            a, b = outputs(source_full[seed]), outputs(source_rest[seed])
            if a is None or b is None or full not in a.logits or rest not in b.logits:
                continue
            if not torch.equal(a.target, b.target):
                notes.append(f"seed {seed}: the models chosen for {full} and {rest} were tested on other samples")
                continue
            points = mmpt_curve(
                {full: a.logits[full], rest: b.logits[rest]},
                a.target,
                names,
                m,
                p_grid=p_grid,
                metric=metric,
                task=a.task,
            )
            per_seed.append([p.value for p in points])
        if per_seed:
            curves[m] = {"p_test": list(p_grid), **mean_band(per_seed)}
    naive_curves = {m: c for m, c in (naive.get("mmpt") or {}).items()} if naive else {}
    return {
        "choices": choices,
        "curves": curves,
        "naive": naive["name"] if naive else None,
        "naive_curves": naive_curves,
        "training_fraction": top,
        "notes": notes,
    }
