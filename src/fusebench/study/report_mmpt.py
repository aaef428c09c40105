"""The report's MMPT-paper sections (``../shared/papers/004_d6fb5191247edfc1.txt``), from analysis.json.

Weakness score and both profiles (Definitions 2-3), the better-of rule of the paper's
modality dropout (section 4.1), Best-Fusion (section 4.5) and the mixture-of-models grid
(Appendix B). Figures are written next to the report's others; the templates
``mmpt.md.j2`` / ``mmpt.html.j2`` render :func:`mmpt_context`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from fusebench.study.analysis_weakness import PROBE_HINT, any_probed, weakness_rows
from fusebench.study.plots_mmpt import best_fusion_curves, mixture_heatmaps
from fusebench.study.report_text import cell
from fusebench.tasks.metrics import get_metric

CURVE_NOTE = (
    "a point is the expected test {metric} when each test sample loses the modality independently with "
    "probability p_test (stochastic logit fusion, MMPT section 2.2): {how}"
)
EXACT = (
    "exactly (1 − p_test) × the full-pattern score + p_test × the score without the modality, since {metric} is "
    "a mean of per-sample scores"
)
DRAWN = (
    "the average over 20 seeded draws of which samples lose it, since {metric} is not a mean of per-sample "
    "scores (no exact mixture)"
)


def curve_note(metric: str) -> str:
    """The report's sentence saying what an MMPT curve point is for the study's ``metric``.

    >>> curve_note("accuracy").endswith("since accuracy is a mean of per-sample scores")
    True
    """
    try:
        exact = get_metric(metric).per_sample_mean
    except ValueError:
        exact = False
    return CURVE_NOTE.format(metric=metric, how=(EXACT if exact else DRAWN).format(metric=metric))


def make_mmpt_figures(analysis: Mapping[str, Any], folder: Path) -> dict[str, Any]:
    """``{"best_fusion": path, "mixture": [path per grid]}`` for what the analysis holds."""
    metric = analysis["primary_metric"]
    figures: dict[str, Any] = {
        "mixture": [
            mixture_heatmaps(grid, metric, folder / f"mixture_{i}.png")
            for i, grid in enumerate(analysis.get("mixture") or [])
        ]
    }
    best = analysis.get("best_fusion")
    if best and best.get("curves"):
        figures["best_fusion"] = best_fusion_curves(best, metric, folder / "best_fusion.png")
    return figures


def _value(summary: Mapping[str, Any] | None) -> str:
    return cell(summary) if summary else "–"


def _weakness_table(analysis: Mapping[str, Any], pairs: list[str]) -> tuple[list[str], list[list[str]]]:
    """Header and rows: group, n, probed seeds, W per pair, headroom per modality, both profiles."""
    names, full = analysis["modalities"], analysis["full_pattern"]
    header = [
        "group",
        "n",
        "probed",
        *(f"W({k})" for k in pairs),
        *(f"headroom {m}" for m in names),
        *(f"head: {p}" for p in [full, *names]),
        *(f"probes: {p}" for p in [full, *names]),
    ]
    rows = []
    for r in weakness_rows(analysis):
        profiles = []
        for profile in (r["profile_head"] or {}, r["profile_probes"] or {}):
            unimodal = profile.get("unimodal") or {}
            profiles += [_value(profile.get("full")), *(_value(unimodal.get(m)) for m in names)]
        rows.append(
            [
                r["name"],
                str(r["n"]),
                str(r["probed"]),
                *(_value(r["weakness"].get(k)) for k in pairs),
                *(_value(r["headroom"].get(m)) for m in names),
                *profiles,
            ]
        )
    return header, rows


def _best_of_rows(analysis: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for rule in analysis.get("best_of") or []:
        cells = []
        for pattern in analysis["patterns"]:
            chosen = rule["cells"].get(pattern) or {}
            cells.append(f"{_value(chosen.get('summary'))} — {chosen['member']}" if chosen.get("member") else "–")
        axes = ", ".join(f"{k}={v}" for k, v in rule["axes"].items())
        rows.append({"name": rule["name"], "axes": axes or "–", "members": ", ".join(rule["members"]), "cells": cells})
    return rows


def mmpt_context(
    analysis: Mapping[str, Any], figures: Mapping[str, Any], image: Callable[[Path], dict[str, str]]
) -> dict[str, Any]:
    """What the MMPT sections show; ``image`` turns a figure path into the template's image record."""
    pairs = sorted({k for g in analysis["groups"] for k in ((g.get("mmpt_weakness") or {}).get("weakness") or {})})
    best = analysis.get("best_fusion")
    best_context = None
    if best:
        choices = [
            {"pattern": p, "source": c["source"], "kind": c["kind"], "value": _value(c.get("summary"))}
            for p, c in best["choices"].items()
        ]
        best_context = {
            "choices": choices,
            "naive": best.get("naive"),
            "notes": best.get("notes") or [],
            "image": image(figures["best_fusion"]) if "best_fusion" in figures else None,
            "training_fraction": best.get("training_fraction"),
        }
    mixture = [
        {**grid, "image": image(path)}
        for grid, path in zip(analysis.get("mixture") or [], figures.get("mixture") or [], strict=True)
    ]
    header, rows = _weakness_table(analysis, pairs)
    return {
        "weakness_header": header,
        "weakness_rows": rows,
        "probed": any_probed(analysis),
        "probe_hint": PROBE_HINT,
        "best_of": _best_of_rows(analysis),
        "best_fusion": best_context,
        "mixture": mixture,
        "curve_note": curve_note(analysis["primary_metric"]),
    }
