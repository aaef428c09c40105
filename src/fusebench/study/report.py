"""The study report: analysis.json, figures/*.png, report.html (self-contained) and report.md.

Both documents are rendered by jinja2 templates from one context built from analysis.json
alone, so the HTML, the Markdown, the terminal table and the figures show the same
numbers. Rendering is deterministic: the same results.json gives byte-identical files
(seeded bootstrap and MMPT draws, PNGs without timestamps, no "generated at" line).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from fusebench.io import atomic_write_text, read_json
from fusebench.study import plots, plots_modality, plots_sensitivity
from fusebench.study.analysis import analyse, write_analysis
from fusebench.study.records import load_results
from fusebench.study.report_decision import decision_guide, decision_table
from fusebench.study.report_mmpt import make_mmpt_figures, mmpt_context
from fusebench.study.report_representations import representation_context
from fusebench.study.report_sensitivity import sensitivity_context
from fusebench.study.report_text import (
    FILTERS,
    headline_rows,
    interval_note,
    markdown_table,
    mean_std,
    not_compared_lines,
    test_set_note,
)
from fusebench.study.report_thesis import change_rows, efficiency_rows, monitoring_figures
from fusebench.study.report_time import cost_sentences, timing_caveat
from fusebench.study.report_verdict import rows_of, verdict

TEMPLATES = Path(__file__).parent / "templates"


def make_figures(analysis: Mapping[str, Any], folder: Path) -> dict[str, Any]:
    """Write every figure the analysis supports into ``folder``; ``{key: path}`` plus a list for p_train x p_test.

    Old PNGs in ``folder`` are removed first, so a figure that no longer applies (e.g. after
    a study lost its axis) cannot linger next to the new report.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    groups, metric, full = analysis["groups"], analysis["primary_metric"], analysis["full_pattern"]
    modalities = analysis["modalities"]
    figures: dict[str, Any] = {
        "learning_curves": plots.learning_curves(groups, full, metric, folder / "learning_curves.png"),
        "first_epoch": plots.first_epoch_bars(groups, metric, folder / "first_epoch.png"),
        "time": plots.time_bars(groups, modalities, folder / "time.png"),
        "pattern_heatmap": plots.pattern_heatmap(groups, analysis["patterns"], metric, folder / "pattern_heatmap.png"),
        "ptrain_ptest": [
            plots_modality.ptrain_ptest_heatmap(m, metric, folder / f"ptrain_ptest_{i}.png")
            for i, m in enumerate(analysis["ptrain_ptest"])
        ],
    }
    if analysis["threshold"] is not None:
        figures["epochs_to_threshold"] = plots.epochs_to_threshold_bars(
            groups, metric, folder / "epochs_to_threshold.png", analysis["higher_is_better"]
        )
    if any(g.get("mmpt") for g in groups):
        figures["mmpt"] = plots_modality.mmpt_curves(groups, modalities, metric, folder / "mmpt.png")
    if any(g.get("shapley", {}).get("mean") for g in groups):
        figures["shapley"] = plots_modality.shapley_bars(groups, modalities, metric, folder / "shapley.png")
    if analysis["fusion_axes"]:
        figures["tradeoff"] = plots_modality.tradeoff_scatter(groups, full, metric, folder / "tradeoff.png")
    figures["mmpt_paper"] = make_mmpt_figures(analysis, folder)  # Best-Fusion, mixture of models (004)
    for index, slice_ in enumerate(analysis.get("sensitivity") or []):
        name = f"sensitivity_{index}"
        figures[name] = plots_sensitivity.surface_heatmaps(slice_, folder / f"{name}.png")
    return figures


def make_monitoring_figures(analysis: Mapping[str, Any], study_dir: Path) -> list[dict[str, Any]]:
    """One training-dynamics figure per monitored run, after ``make_figures`` cleared the folder."""
    return monitoring_figures(analysis, study_dir, study_dir / "figures")


def _image(path: Path, study_dir: Path, embed: bool) -> dict[str, str]:
    data = base64.b64encode(path.read_bytes()).decode("ascii") if embed else ""
    return {"file": path.relative_to(study_dir).as_posix(), "data": data}


def _fusion_rows(analysis: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Parameters, training time, throughput and the primary metric per pattern of each group."""
    metric = analysis["primary_metric"]
    rows = []
    for group in analysis["groups"]:
        time = group.get("time") or {}
        rows.append(
            {
                "name": group["name"],
                "n": group["n"],
                "fusion": ", ".join(f"{a}={group['axes'].get(a)}" for a in analysis["fusion_axes"]),
                "parameters": group["model"].get("parameters"),
                "trainable": group["model"].get("trainable_parameters"),
                "macs": group["model"].get("macs"),
                "training": mean_std(time.get("training"), 2),
                "throughput": mean_std(group.get("throughput"), 0),
                "steps": mean_std(group.get("steps_per_second"), 1),
                "cpu_steps": mean_std(group.get("steps_per_cpu_second"), 1),
                "metrics": [mean_std(group["test"].get(p, {}).get(metric)) for p in analysis["patterns"]],
            }
        )
    return rows


def build_context(
    analysis: Mapping[str, Any],
    figures: Mapping[str, Any],
    study_dir: Path,
    embed: bool,
    monitoring: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Everything the templates show; numbers are formatted by the template filters."""
    images = {k: _image(v, study_dir, embed) for k, v in figures.items() if isinstance(v, Path)}
    matrices = [
        {"image": _image(p, study_dir, embed), **m}
        for p, m in zip(figures["ptrain_ptest"], analysis["ptrain_ptest"], strict=True)
    ]
    tables = [
        {"family": f, "rows": rows_of(analysis, f), "note": interval_note(rows_of(analysis, f), analysis["confidence"])}
        for f in ("primary", "secondary", "descriptive")
    ]
    decision_header, decision_rows = decision_table(analysis)
    return {
        "a": analysis,
        "figures": images,
        "matrices": matrices,
        "headline_header": ["group", *analysis["patterns"]],
        "headline_rows": headline_rows(analysis),
        "test_set_note": test_set_note(analysis),
        "verdict": verdict(analysis),
        "costs": cost_sentences(analysis),
        "not_compared": not_compared_lines(analysis),
        "timing_caveat": timing_caveat(analysis),
        "tables": {t["family"]: t for t in tables},
        "decision": decision_guide(analysis),
        "decision_header": decision_header,
        "decision_rows": decision_rows,
        "fusion_rows": _fusion_rows(analysis) if analysis["fusion_axes"] else [],
        "change_rows": change_rows(analysis),
        "efficiency_rows": efficiency_rows(analysis),
        "monitoring": [{"label": m["label"], "image": _image(m["path"], study_dir, embed)} for m in monitoring or []],
        "mmpt_paper": mmpt_context(analysis, figures.get("mmpt_paper") or {}, lambda p: _image(p, study_dir, embed)),
        "representations": representation_context(study_dir, embed),
        "sensitivity": sensitivity_context(analysis, images),
    }


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        undefined=StrictUndefined,
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(FILTERS)
    env.filters["md"] = lambda value: str(value).replace("|", "\\|")
    env.filters["wbr"] = lambda value: Markup("|<wbr>").join(escape(part) for part in str(value).split("|"))
    return env


def render_report(study_dir: str | Path) -> tuple[Path, Path]:
    """Analyse a study directory and write analysis.json, figures/*.png, report.html and report.md.

    Args:
        study_dir: a study directory with results.json (or run directories from which
            ``fusebench.study.results.collect_results`` can rebuild it).

    Returns:
        ``(report.html, report.md)``.

    Raises:
        FileNotFoundError: no results.json and no runs to rebuild it from.
    """
    study_dir = Path(study_dir)
    analysis = write_analysis(study_dir, load_results(study_dir))
    figures = make_figures(analysis, study_dir / "figures")
    monitoring = make_monitoring_figures(analysis, study_dir)
    env = _environment()
    html = env.get_template("report.html.j2").render(**build_context(analysis, figures, study_dir, True, monitoring))
    markdown = env.get_template("report.md.j2").render(**build_context(analysis, figures, study_dir, False, monitoring))
    return atomic_write_text(study_dir / "report.html", html), atomic_write_text(study_dir / "report.md", markdown)


def headline_table(study_dir: str | Path) -> str:
    """The headline table as Markdown, for the terminal after ``fusebench study`` or ``demo``.

    Uses analysis.json when it is at least as new as results.json, else analyses afresh
    (without writing anything).
    """
    study_dir = Path(study_dir)
    cached, results = study_dir / "analysis.json", study_dir / "results.json"
    if cached.is_file() and (not results.is_file() or cached.stat().st_mtime >= results.stat().st_mtime):
        analysis = read_json(cached)
    else:
        analysis = analyse(load_results(study_dir), study_dir)
    better = "higher" if analysis.get("higher_is_better", True) else "lower"
    title = (
        f"{analysis['study']}: test {analysis['primary_metric']} ({better} is better), mean ± std "
        "[95% CI over seeds] (n = completed seeds; test set ± = test-sample error alone)"
    )
    table = markdown_table(["group", *analysis["patterns"]], headline_rows(analysis))
    failed = len(analysis["failed_runs"])
    note = f"\n{failed} run(s) failed or were skipped; see the report." if failed else ""
    return f"{title}\n\n{table}{note}"
