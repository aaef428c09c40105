"""``fusebench analyze --study``: the representation analysis of every seed of a study, summarised over seeds.

Within each *cell* (one seed at one combination of axis values) every completed fusion run
is analysed by :func:`fusebench.engine.representation_views.analyse_run`: each encoder as trained
and, where the condition loaded one, as its pre-trained file held it. Per modality the cell
gives linear CKA between every two of those views; over seeds the report shows, for each
condition other than the baseline,

- ``pre-trained file vs fine-tuned``: how much the multimodal fine-tuning moved a
  pre-trained encoder (1 = not at all);
- ``vs <baseline> (trained)``: the condition's trained encoder against the baseline's
  (normally scratch) trained encoder of the same seed;
- ``pre-trained file vs <baseline> (trained)``: how close what pre-training alone learned
  is to what the baseline run learned;

plus the mean CKA matrix of all views, the linear-probe metric of every view, and 2-D
projections of the first cell's first seed. Written to ``STUDY/representations/``; the
study report embeds it when present (:mod:`fusebench.study.report_representations`).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fusebench.errors import RunFolderError
from fusebench.io import atomic_write_json
from fusebench.study.analysis_groups import clean, summary
from fusebench.study.records import RunRecord, StudyRecord

if TYPE_CHECKING:  # the engine (torch, models) is imported when an analysis runs, not by the report
    from fusebench.engine.representation_views import AnalysedRun, DataCache, View

FOLDER = "representations"
STAGE_NAMES = {"trained": "trained", "pretrained": "pre-trained file"}
Seeded = dict[int, float | None]


def cell_label(axes: Mapping[str, Any]) -> str:
    """``lr=0.001, batch=64``, or ``all runs`` for a study without axes."""
    return ", ".join(f"{k}={v}" for k, v in axes.items()) or "all runs"


def study_cells(results: StudyRecord) -> dict[str, dict[int, list[RunRecord]]]:
    """axes (JSON) -> seed -> the completed fusion runs of that seed at those axis values (study order)."""
    cells: dict[str, dict[int, list[RunRecord]]] = {}
    for run in results.fusion_runs():
        if run.completed:
            key = json.dumps(dict(run.axes), sort_keys=True)
            cells.setdefault(key, {}).setdefault(run.seed, []).append(run)
    return cells


def key_comparisons(views: Sequence[tuple[str, View]], baseline: str) -> list[tuple[str, str, View, View]]:
    """(condition, comparison, view a, view b) for the relations the report tabulates (module docstring)."""
    by = {(c, v.modality, v.stage): v for c, v in views}
    rows = []
    for condition, view in views:
        if condition == baseline or view.stage != "trained":
            continue
        before = by.get((condition, view.modality, "pretrained"))
        reference = by.get((baseline, view.modality, "trained"))
        if before is not None:
            rows.append((condition, "pre-trained file vs fine-tuned", before, view))
        if reference is not None:
            rows.append((condition, f"vs {baseline} (trained)", reference, view))
            if before is not None:
                rows.append((condition, f"pre-trained file vs {baseline} (trained)", reference, before))
    return rows


@dataclass
class _Collected:
    """Per-seed numbers gathered over the cells, keyed by (axes, modality, condition, comparison or stage)."""

    cka: dict[tuple[str, str, str, str], Seeded] = field(default_factory=dict)
    probes: dict[tuple[str, str, str, str], Seeded] = field(default_factory=dict)
    matrices: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)


def _mean_matrix(stack: Sequence[Sequence[Sequence[float | None]]]) -> list[list[float | None]]:
    values = np.array([[[np.nan if v is None else v for v in row] for row in m] for m in stack], dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN cell (never comparable) stays NaN
        mean = np.nanmean(values, axis=0)
    return [[None if not np.isfinite(v) else float(v) for v in row] for row in mean]


def _seed(
    study_dir: Path,
    runs: Sequence[RunRecord],
    cache: DataCache,
    *,
    key: str,
    seed: int,
    baseline: str,
    metric: str,
    probes: bool,
    out: _Collected,
) -> tuple[list[tuple[str, View]], dict[str, AnalysedRun], dict[str, tuple[list[str], list[list[float | None]]]]]:
    """Analyse one seed's runs of one cell; record its CKA and probe values in ``out``."""
    from fusebench.engine.representation_views import analyse_run
    from fusebench.engine.representations import cka_pairs, probe_view

    loaded = [(str(r.condition), analyse_run(study_dir / str(r.run_dir), r.node, cache)) for r in runs]
    out.runs.extend({**a.describe(), "condition": c} for c, a in loaded)
    views = [(c, v) for c, a in loaded for v in a.views]
    owner = {v.key: a for _, a in loaded for v in a.views}
    pairs = {(p["a"], p["b"]): p["cka"] for p in cka_pairs([v for _, v in views])}
    pairs |= {(b, a): value for (a, b), value in pairs.items()}
    for condition, comparison, a, b in key_comparisons(views, baseline):
        out.cka.setdefault((key, a.modality, condition, comparison), {})[seed] = pairs.get((a.key, b.key))
    if probes:
        for condition, view in views:
            run = owner[view.key].loaded
            probed = probe_view(view, run.data, run.config, metric)
            out.probes.setdefault((key, view.modality, condition, STAGE_NAMES[view.stage]), {})[seed] = float(
                probed["test"][metric]
            )
    matrices = {}
    for m in sorted({v.modality for _, v in views}):
        group = [(c, v) for c, v in views if v.modality == m]
        matrices[m] = (
            [f"{c} ({STAGE_NAMES[v.stage]})" for c, v in group],
            [[1.0 if a.key == b.key else pairs.get((a.key, b.key)) for _, b in group] for _, a in group],
        )
    return views, owner, matrices


def analyze_study(
    study_dir: str | Path,
    out_dir: str | Path | None = None,
    *,
    methods: Sequence[str] | None = None,
    max_points: int = 1000,
    seed: int = 0,
    probes: bool = True,
) -> dict[str, Any]:
    """Analyse every completed fusion run of a study; write ``representations.json`` and figures.

    Args:
        study_dir: a folder written by ``fusebench study``.
        out_dir: where to write (default ``study_dir/representations``).
        methods, max_points, seed, probes: as for :func:`fusebench.engine.analyze.analyze_runs`.

    Raises:
        RunFolderError: the study has no completed run of its baseline condition.
    """
    from fusebench.engine.probe import probe_threads
    from fusebench.engine.projections import resolve_methods
    from fusebench.engine.representation_plots import cka_matrix
    from fusebench.engine.representation_views import DataCache
    from fusebench.engine.representations import REPRESENTATIONS_FILE, draw_modality, protocol
    from fusebench.study.records import load_results

    study_dir = Path(study_dir)
    folder = Path(out_dir) if out_dir is not None else study_dir / FOLDER
    chosen, skipped = resolve_methods(methods)
    results = load_results(study_dir)
    baseline = str(results.analysis.baseline or (results.conditions or ("",))[0])
    metric = results.primary_metric
    cells = study_cells(results)
    if not any(baseline == r.condition for cell in cells.values() for runs in cell.values() for r in runs):
        raise RunFolderError(
            f"Study `{study_dir}` has no completed run of its baseline condition `{baseline}`; the "
            "representation analysis compares every condition with it."
        )
    figures = folder / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    for old in figures.glob("*.png"):
        old.unlink()
    cache, out = DataCache(), _Collected()
    threads = int((results.execution or ({},))[-1].get("threads_per_run") or 1)  # as the runs had
    with probe_threads(threads):
        for number, (key, by_seed) in enumerate(cells.items()):
            label = cell_label(json.loads(key))
            stacks: dict[str, tuple[list[str], list[list[list[float | None]]]]] = {}
            for index, (run_seed, runs) in enumerate(sorted(by_seed.items())):
                views, owner, matrices = _seed(
                    study_dir,
                    runs,
                    cache,
                    key=key,
                    seed=run_seed,
                    baseline=baseline,
                    metric=metric,
                    probes=probes,
                    out=out,
                )
                for m, (names, matrix) in matrices.items():
                    if stacks.setdefault(m, (names, []))[0] == names:  # seeds with other conditions stay out
                        stacks[m][1].append(matrix)
                if number == 0 and index == 0:
                    for m in sorted({v.modality for _, v in views}):
                        group = [v for _, v in views if v.modality == m]
                        same = [v for v in group if v.samples == group[0].samples]
                        _, out.figures[f"projection_{m}"] = draw_modality(
                            same,
                            owner[same[0].key].loaded.data,
                            chosen,
                            max_points,
                            seed,
                            figures,
                            f"projection_{m}",
                            f"test embeddings of the {m} encoders, seed {run_seed}"
                            + (f" ({label})" if json.loads(key) else ""),
                        )
            out.matrices[label] = {}
            for m, (names, stack) in stacks.items():
                mean = _mean_matrix(stack)
                out.matrices[label][m] = {"labels": names, "matrix": mean, "seeds": len(stack)}
                if number == 0:
                    out.figures[f"cka_{m}"] = {
                        "file": cka_matrix(
                            names,
                            mean,
                            figures / f"cka_{m}.png",
                            f"linear CKA, {m} encoders: mean over {len(stack)} seed(s)"
                            + (f" ({label})" if json.loads(key) else ""),
                        ).name
                    }
    payload = clean(
        {
            "protocol": {
                **protocol(chosen, skipped, max_points, seed, probes),
                "pairing": f"per seed and axis values, every condition's encoders against the baseline `{baseline}`'s",
            },
            "primary_metric": metric,
            "baseline": baseline,
            "cells": [
                {"axes": json.loads(k), "label": cell_label(json.loads(k)), "seeds": sorted(v)}
                for k, v in cells.items()
            ],
            "cka_summary": [_row(k, "comparison", values) for k, values in out.cka.items()],
            "cka_matrices": out.matrices,
            "probe_summary": [_row(k, "stage", values) for k, values in out.probes.items()],
            "figures": out.figures,
            "runs": out.runs,
        }
    )
    atomic_write_json(folder / REPRESENTATIONS_FILE, payload)
    return dict(payload)


def _row(key: tuple[str, str, str, str], what: str, values: Seeded) -> dict[str, Any]:
    axes, modality, condition, name = key
    return {
        "axes": json.loads(axes),
        "modality": modality,
        "condition": condition,
        what: name,
        "per_seed": {str(s): v for s, v in sorted(values.items())},
        "summary": summary([v for v in values.values() if v is not None]),
    }
