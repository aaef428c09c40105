"""The report's decision guide: did pre-training pay for itself, counting its cost?

Separate from the verdict (:mod:`fusebench.study.report_verdict`) because it weighs the
primary effect against pre-training's seconds (``analysis["decision"]``, built by
:mod:`fusebench.study.analysis_decision`) and ends in a recommendation, where the verdict
only says what the tests found.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fusebench.study.report_text import is_missing, num, pvalue, seconds, signed


def decision_guide(analysis: Mapping[str, Any]) -> list[str]:
    """The recommendation that ends the report: did pre-training pay for itself, counting its cost?"""
    decision = analysis.get("decision") or {}
    best = decision.get("recommendation")
    if not best:
        return []
    metric = analysis["primary_metric"]
    budget = (analysis.get("fixed_budget") or {}).get("epochs") or best["baseline_epochs"]
    a, b = best["group_a"], best["group_b"]
    effect = f"{signed(best['mean_diff'])} test {metric} at {budget} epochs (Holm p = {pvalue(best['p_holm'])})"
    if best["epochs_to_match"] is None:
        speed = (
            f"{b} never reached {a}'s final validation {metric} ({num(best['baseline_final'])}) within its "
            "epochs, so pre-training saved no training time."
        )
    else:
        speed = (
            f"To reach {a}'s final validation {metric} ({num(best['baseline_final'])}), {a} needed "
            f"{best['baseline_epochs']} epochs ({seconds(best['time_to_match_a'])}) and {b} "
            f"{best['epochs_to_match']} epoch(s) after {seconds(best['pretraining_seconds'])} of pre-training "
            f"({seconds(best['time_to_match_b'])} in all): "
        )
        net = best["net_seconds"]
        speed += (
            f"pre-training paid for itself in time, saving {seconds(net)} per seed."
            if net is not None and net >= 0
            else f"pre-training cost {seconds(-net if net is not None else None)} more per seed than it saved."
        )
        if best.get("break_even_runs"):
            speed += (
                f" It would break even if one pre-trained encoder served at least {best['break_even_runs']} "
                "fusion runs (e.g. a sweep over fusion methods or missing rates)."
            )
    cost = seconds(best["pretraining_seconds"])
    if best["significant"] and best["better"]:
        if best["net_seconds"] is not None and best["net_seconds"] >= 0:
            advice = (
                f"Recommendation: pre-train ({b}): it is better and, counting its cost, faster to a given {metric}."
            )
        else:
            advice = (
                f"Recommendation: pre-train ({b}) if {signed(best['mean_diff'])} {metric} is worth {cost} of "
                f"pre-training per seed; train {a} if time matters more."
            )
    elif best["significant"]:
        advice = f"Recommendation: do not pre-train; {b} is significantly worse than {a}."
    else:
        seeds = f" (a confirmatory study needs about {best['seeds_needed']} seeds)" if best.get("seeds_needed") else ""
        advice = (
            f"Recommendation: no evidence at this budget that pre-training helps{seeds}; it costs {cost} per "
            "seed, so skip it unless a larger study shows a gain."
        )
    advice += _cheaper_rival(analysis, best)
    if (analysis.get("fixed_budget") or {}).get("still_improving"):
        advice += f" {a} was still improving at {budget} epochs: train it longer before concluding it cannot catch up."
    return [f"Best pre-trained condition: {b} vs {a}: {effect}.", speed, advice]


def _cheaper_rival(analysis: Mapping[str, Any], best: Mapping[str, Any]) -> str:
    """When the runner-up is another pre-trained condition the data do not separate, name the cheaper one."""
    pick = analysis.get("best_vs_runner_up") or {}
    if pick.get("best") != best["group_b"] or pick.get("comparison") is None:
        return ""
    rival = next(
        (
            r
            for r in analysis["decision"]["rows"]
            if r["group_b"] == pick["runner_up"] and r["group_a"] == best["group_a"]
        ),
        None,
    )
    c = analysis["comparisons"][pick["comparison"]]
    if rival is None or (not is_missing(c["p_holm"]) and c["p_holm"] < analysis["alpha"]):
        return ""
    cheaper = min((best, rival), key=lambda r: r["pretraining_seconds"])
    return (
        f" The data do not separate it from {rival['group_b']} (best vs runner-up p = {pvalue(c['p_ttest'])}); "
        f"of the two, {cheaper['group_b']} needs less pre-training ({seconds(cheaper['pretraining_seconds'])} "
        f"vs {seconds(max(best['pretraining_seconds'], rival['pretraining_seconds']))} per seed)."
    )


def decision_table(analysis: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the decision guide's table (one row per pre-trained condition)."""
    metric = analysis["primary_metric"]
    header = [
        "compared",
        f"Δ test {metric} (Holm p)",
        "pre-training s/seed",
        "epochs to reach baseline's final",
        "time to reach it: without / with pre-training",
        "net s/seed",
        "break-even encoder reuse",
    ]
    rows: list[list[str]] = []
    for r in (analysis.get("decision") or {}).get("rows", []):
        reach = "never" if r["epochs_to_match"] is None else f"{r['epochs_to_match']} of {r['baseline_epochs']}"
        rows.append(
            [
                f"{r['group_b']} vs {r['group_a']}",
                f"{signed(r['mean_diff'])} ({pvalue(r['p_holm'])})",
                seconds(r["pretraining_seconds"]),
                reach,
                f"{seconds(r['time_to_match_a'])} / {seconds(r['time_to_match_b'])}",
                seconds(r["net_seconds"]),
                f"{r['break_even_runs']} runs" if r.get("break_even_runs") else "–",
            ]
        )
    return header, rows
