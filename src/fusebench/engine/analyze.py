"""``fusebench analyze RUN [RUN...]``: the representation analysis of chosen runs, written to a folder.

See :mod:`fusebench.engine.representations` for what is computed; this module runs it over
the given runs side by side and writes ``representations.json`` plus ``figures/*.png``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fusebench.engine.datasets import run_task
from fusebench.engine.representation_views import DataCache, analyse_run
from fusebench.engine.representations import (
    REPRESENTATIONS_FILE,
    cka_matrices,
    cka_pairs,
    draw_modality,
    probe_view,
    protocol,
)


def run_labels(run_dirs: Sequence[Path]) -> list[str]:
    """Folder names, with the parent folder added where two runs share a name."""
    names = [p.resolve().name for p in run_dirs]
    return [f"{p.resolve().parent.name}/{n}" if names.count(n) > 1 else n for p, n in zip(run_dirs, names, strict=True)]


def analyze_runs(
    run_dirs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    methods: Sequence[str] | None = None,
    max_points: int = 1000,
    seed: int = 0,
    probes: bool = True,
) -> dict[str, Any]:
    """Analyse finished runs side by side; write ``out_dir/representations.json`` and ``out_dir/figures``.

    Args:
        run_dirs: finished ``fusebench train`` / ``pretrain`` runs on the same test data
            (CKA across runs needs identical test samples; other pairs are listed as not compared).
        out_dir: the analysis folder (created; its old figures are replaced).
        methods: projections to draw (default: PCA plus t-SNE/UMAP where installed).
        max_points: test samples per projection (a seeded subset, the same for every view).
        seed: seeds the subset and the projection methods.
        probes: fit the linear probes (the slowest part).

    Returns:
        The JSON payload (also written).
    """
    from fusebench.engine.probe import probe_threads
    from fusebench.engine.projections import resolve_methods
    from fusebench.engine.representation_plots import cka_matrix
    from fusebench.io import atomic_write_json
    from fusebench.study.analysis_groups import clean

    chosen, skipped = resolve_methods(methods)
    folder = Path(out_dir)
    figures = folder / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    for old in figures.glob("*.png"):
        old.unlink()
    paths = [Path(p) for p in run_dirs]
    cache = DataCache()
    runs = [analyse_run(p, label, cache) for p, label in zip(paths, run_labels(paths), strict=True)]
    views = [v for r in runs for v in r.views]
    owner = {v.key: r for r in runs for v in r.views}
    with probe_threads(runs[0].loaded.config.experiment.threads):
        pairs = cka_pairs(views)
        matrices = cka_matrices(views, pairs)
        probed = (
            {v.key: probe_view(v, owner[v.key].loaded.data, owner[v.key].loaded.config) for v in views}
            if probes
            else {}
        )
        drawn: dict[str, Any] = {}
        for m in matrices:
            group = [v for v in views if v.modality == m]
            sets = list(dict.fromkeys(v.samples for v in group))  # normally one: every run on the same test set
            for number, samples in enumerate(sets, start=1):
                same = [v for v in group if v.samples == samples]
                name = f"projection_{m}" if len(sets) == 1 else f"projection_{m}_{number}"
                _, drawn[name] = draw_modality(
                    same,
                    owner[same[0].key].loaded.data,
                    chosen,
                    max_points,
                    seed,
                    figures,
                    name,
                    f"test embeddings of the {m} encoders",
                )
            drawn[f"cka_{m}"] = {
                "file": cka_matrix(
                    matrices[m]["labels"], matrices[m]["matrix"], figures / f"cka_{m}.png", f"linear CKA, {m} encoders"
                ).name
            }
    primary = run_task(runs[0].loaded.config, runs[0].loaded.data.task)[1]
    payload = {
        "protocol": protocol(chosen, skipped, max_points, seed, probes),
        "primary_metric": primary,
        "runs": [r.describe() for r in runs],
        "views": [v.describe() for v in views],
        "cka": pairs,
        "cka_matrices": matrices,
        "probes": probed,
        "figures": drawn,
    }
    atomic_write_json(folder / REPRESENTATIONS_FILE, clean(payload))
    return payload
