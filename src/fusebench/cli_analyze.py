"""``fusebench analyze``: representation analysis of finished runs, or of every seed of a study."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from fusebench.cli_common import console, user_errors
from fusebench.errors import ConfigError

Projection = Annotated[
    list[str] | None,
    typer.Option("--projection", help="pca, tsne or umap (repeatable; default: PCA plus t-SNE/UMAP where installed)"),
]


@user_errors
def analyze(
    runs: Annotated[
        list[Path] | None, typer.Argument(help="finished run folders (e.g. scratch and pre-trained)")
    ] = None,
    study: Annotated[
        Path | None,
        typer.Option("--study", help="a study folder: pair each seed's baseline run with every other condition's"),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="analysis folder (default: analyses/<runs>, or STUDY/representations)")
    ] = None,
    projection: Projection = None,
    max_points: Annotated[int, typer.Option("--max-points", min=10, help="test samples per projection")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="seeds the projected subset and t-SNE/UMAP")] = 0,
    probes: Annotated[bool, typer.Option("--probes/--no-probes", help="fit a linear probe per encoder")] = True,
) -> None:
    """Linear CKA between encoders (pre-trained file vs fine-tuned; scratch vs pre-trained), 2-D projections of
    test embeddings coloured by label, and linear probes per encoder; writes representations.json + figures."""
    if (study is None) == (not runs):
        raise ConfigError(
            "`fusebench analyze` takes run folders (`fusebench analyze RUN [RUN...]`) or "
            "`--study STUDY_DIR`, not both and not neither."
        )
    if study is not None:
        from fusebench.study.analysis_representations import analyze_study

        result = analyze_study(study, out, methods=projection, max_points=max_points, seed=seed, probes=probes)
        folder = out or study / "representations"
        _print_study(result)
    else:
        from fusebench.engine.analyze import analyze_runs

        run_dirs = list(runs or [])
        folder = out or Path("analyses") / _default_name(run_dirs)
        result = analyze_runs(run_dirs, folder, methods=projection, max_points=max_points, seed=seed, probes=probes)
        _print_runs(result)
    for name, figure in result["figures"].items():
        console.print(f"figure {name}: {folder / 'figures' / figure['file']}", highlight=False)
    skipped = result["protocol"]["projections"]["skipped"]
    for method, why in skipped.items():
        console.print(f"projection {method} skipped: {why}", highlight=False)
    console.print(f"results: {folder / 'representations.json'}", highlight=False)


def _default_name(runs: list[Path]) -> str:
    names = [p.resolve().name for p in runs]
    joined = "+".join(names)
    return joined if len(joined) <= 80 else f"{names[0]}+{len(names) - 1}_more"


def _num(value: Any) -> str:
    return "–" if value is None else f"{value:.4f}"


def _print_runs(result: dict[str, Any]) -> None:
    table = Table(title="linear CKA between encoders (test embeddings)")
    for column in ("modality", "encoder A", "encoder B", "relation", "CKA"):  # keys fold, never cut: `…@pretrained`
        table.add_column(column, justify="right" if column == "CKA" else "left", overflow="fold")
    for pair in result["cka"]:
        table.add_row(
            pair["modality"],
            pair["a"],
            pair["b"],
            pair["relation"],
            _num(pair["cka"]) if pair["cka"] is not None else pair["note"],
        )
    console.print(table)
    if result["probes"]:
        metric = result["primary_metric"]
        probes = Table(title=f"linear probes: test {metric} per encoder (L2 chosen on validation)")
        for column in ("encoder", "dim", f"test {metric}"):
            probes.add_column(column, justify="left" if column == "encoder" else "right")
        for key, entry in result["probes"].items():
            probes.add_row(key, str(entry["dim"]), _num(entry["test"][metric]))
        console.print(probes)


def _print_study(result: dict[str, Any]) -> None:
    table = Table(title="linear CKA over seeds (test embeddings): mean ± std (n)")
    for column in ("modality", "condition", "comparison", "CKA"):
        table.add_column(column, justify="right" if column == "CKA" else "left")
    for row in result["cka_summary"]:
        table.add_row(row["modality"], row["condition"], row["comparison"], _summary(row["summary"]))
    console.print(table)
    if result["probe_summary"]:
        metric = result["primary_metric"]
        probes = Table(title=f"linear probes: test {metric} over seeds, mean ± std (n)")
        for column in ("modality", "condition", "encoder", f"test {metric}"):
            probes.add_column(column, justify="right" if column.startswith("test") else "left")
        for row in result["probe_summary"]:
            probes.add_row(row["modality"], row["condition"], row["stage"], _summary(row["summary"]))
        console.print(probes)


def _summary(summary: dict[str, Any] | None) -> str:
    if not summary:
        return "–"
    std = summary.get("std")
    return (
        f"{summary['mean']:.4f} ± {std:.4f} ({summary['n']})"
        if std is not None
        else f"{summary['mean']:.4f} ({summary['n']})"
    )
