"""Representation analysis of finished runs (``fusebench analyze``): what did pre-training change?

Each run's encoders are read as *views* (:mod:`fusebench.engine.representation_views`):
each modality's encoder as the run's best checkpoint left it and, where the run loaded it
from ``model.pretrained``, as that file held it before the multimodal fine-tuning. Every
view embeds the same test samples (all modalities present), and the analysis here reports

- linear CKA (:mod:`fusebench.engine.cka`, Kornblith et al. 2019) between every two views
  of a modality: before vs after fine-tuning within a run, and across runs (e.g. the
  scratch and the pre-trained run of one seed) — only between views of identical test
  samples, checked by a digest of the inputs and targets;
- a 2-D projection of each view's test embeddings coloured by label
  (:mod:`fusebench.engine.projections`);
- the linear-probe metrics of each view (:func:`fusebench.engine.linear_probe.probe_features`,
  the MMPT protocol), side by side.

:func:`fusebench.engine.analyze.analyze_runs` writes ``representations.json`` and
``figures/*.png`` into an output folder; :mod:`fusebench.study.analysis_representations`
does the same per seed of a study.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from fusebench.config import RunConfig
from fusebench.engine.cka import linear_cka
from fusebench.engine.datasets import SPLITS, DataSplits, run_task
from fusebench.engine.linear_probe import probe_features
from fusebench.engine.projections import Method, colours, project, sample_indices
from fusebench.engine.representation_views import CKA_SPLIT, View

REPRESENTATIONS_FILE = "representations.json"


def relation(a: View, b: View) -> str:
    """``before_vs_after`` (one run's pre-trained file vs its trained encoder) or ``across_runs``."""
    return "before_vs_after" if a.run == b.run and a.stage != b.stage else "across_runs"


def cka_pairs(views: Sequence[View]) -> list[dict[str, Any]]:
    """Linear CKA on the test embeddings of every two views of the same modality and samples."""
    pairs = []
    for i, a in enumerate(views):
        for b in views[i + 1 :]:
            if a.modality != b.modality:
                continue
            comparable = a.samples == b.samples
            value = linear_cka(a.embeddings[CKA_SPLIT], b.embeddings[CKA_SPLIT]) if comparable else None
            pairs.append(
                {
                    "modality": a.modality,
                    "a": a.key,
                    "b": b.key,
                    "relation": relation(a, b),
                    "cka": value,
                    "note": "" if comparable else "different test samples: not compared",
                }
            )
    return pairs


def cka_matrices(views: Sequence[View], pairs: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """modality -> ``{labels, matrix}`` with 1 on the diagonal and ``None`` where not comparable."""
    lookup = {(p["a"], p["b"]): p["cka"] for p in pairs} | {(p["b"], p["a"]): p["cka"] for p in pairs}
    out: dict[str, dict[str, Any]] = {}
    for m in sorted({v.modality for v in views}):
        keys = [v.key for v in views if v.modality == m]
        out[m] = {"labels": keys, "matrix": [[1.0 if a == b else lookup.get((a, b)) for b in keys] for a in keys]}
    return out


def probe_view(view: View, data: DataSplits, config: RunConfig, metric: str | None = None) -> dict[str, Any]:
    """The linear probe of one view (L2 chosen on validation; see :func:`fusebench.engine.linear_probe.probe_features`).

    ``metric`` selects the L2 strength and is reported (default: the run's primary metric).
    """
    names, primary = run_task(config, data.task)
    metric = metric or primary
    train, validation, test = (view.embeddings[s] for s in SPLITS)
    return probe_features(train, validation, test, data, list(dict.fromkeys([metric, *names])), select_on=metric)


def projections(
    views: Sequence[View], data: DataSplits, methods: Sequence[Method], max_points: int, seed: int
) -> tuple[dict[str, dict[str, npt.NDArray[np.float64]]], dict[str, dict[str, Any]], Any]:
    """method -> view key -> ``[n, 2]`` points of one seeded subset of test samples, the methods' notes, colours."""
    index = sample_indices(len(data.test), max_points, seed)
    colour = colours(data.test.target[index], data.task)
    points: dict[str, dict[str, npt.NDArray[np.float64]]] = {}
    info: dict[str, dict[str, Any]] = {}
    for method in methods:
        points[method], info[method] = {}, {}
        for view in views:
            points[method][view.key], info[method][view.key] = project(view.embeddings[CKA_SPLIT][index], method, seed)
    return points, info, colour


def draw_modality(
    views: Sequence[View],
    data: DataSplits,
    methods: Sequence[Method],
    max_points: int,
    seed: int,
    folder: Path,
    name: str,
    heading: str,
) -> tuple[Path, dict[str, Any]]:
    """The projection figure of ``views`` (one modality, the same samples) as ``folder/<name>.png``."""
    from fusebench.engine.representation_plots import projection_grid

    points, info, colour = projections(views, data, methods, max_points, seed)
    notes = {"pca": {k: f"{sum(v['explained_variance']):.0%} of variance" for k, v in info.get("pca", {}).items()}}
    path = projection_grid(points, {v.key: v.title for v in views}, colour, folder / f"{name}.png", heading, notes)
    return path, {
        "file": path.name,
        "methods": list(methods),
        "samples": int(len(colour.values)),
        "colour": colour.description,
        "details": info,
    }


def protocol(
    methods: Sequence[str], skipped: dict[str, str], max_points: int, seed: int, probes: bool
) -> dict[str, Any]:
    """What the analysis computed, in words (kept in the JSON beside the numbers)."""
    return {
        "cka": "linear CKA (Kornblith et al. 2019, ICML, Section 3) between column-centred test-split embeddings "
        "of the same samples, every modality present",
        "stages": "trained: the run's checkpoints/best.ckpt; pretrained: the model.pretrained file the run "
        "started from (before multimodal fine-tuning)",
        "projections": {"methods": list(methods), "skipped": skipped, "max_points": max_points, "seed": seed},
        "probes": (
            "linear probe per encoder view on the frozen embeddings (fusebench probe protocol: "
            "standardised features, L2 chosen on validation)"
        )
        if probes
        else "not computed (--no-probes)",
    }
