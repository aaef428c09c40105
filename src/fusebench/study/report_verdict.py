"""The report's verdict: the generated sentences on each comparison and on each family of tests.

They are written by rules, not by hand, so they can only say what analysis.json says: a
difference is called significant only when its Holm-adjusted p-value (within its
family) is below alpha, the direction comes from the sign of the mean difference, every
sentence carries the effect, its interval and the n it rests on, and the verdict states
the budget that was tested, what the significance rests on, and how many seeds a
confirmatory study would need. The report's other generated sentences, on wall time and
on whether pre-training paid for itself, are in :mod:`fusebench.study.report_time` and
:mod:`fusebench.study.report_decision`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fusebench.study.intervals import INTERVAL_LABELS
from fusebench.study.report_text import count, interval, is_missing, num, pvalue, signed


def _digits(c: Mapping[str, Any]) -> int:
    return 2 if c["kind"] in ("time", "epochs_to_threshold") else 4


def describe(c: Mapping[str, Any], families: Mapping[str, int], confidence: float) -> str:
    """One comparison in words: difference, interval and its kind, n, the tests, Holm p within its family."""
    d = _digits(c)
    test_set = c.get("test_set")
    extra = (
        (
            f"; test-set {confidence:.0%} interval of the difference {interval(test_set['low'], test_set['high'], d)}"
            f" from the {test_set['samples']} test samples alone"
        )
        if test_set
        else ""
    )
    holm = (
        f"Holm-adjusted p = {pvalue(c['p_holm'])} (within the {c['family']} family of "
        f"{count(families[c['family']], 'test')}, on the "
        f"{'Wilcoxon' if c['p_holm_source'] == 'p_wilcoxon' else 't-test'} p)"
    )
    return (
        f"{c['group_b']} − {c['group_a']} on {c['label']}: mean difference {signed(c['mean_diff'], d)} "
        f"({confidence:.0%} {INTERVAL_LABELS.get(c['ci_method'], 'interval')} "
        f"{interval(c['ci_low'], c['ci_high'], d)}; n = {c['n']} paired seeds {c['seeds']}{extra}), paired "
        f"t-test p = {pvalue(c['p_ttest'])}, {holm}, Wilcoxon p = {pvalue(c['p_wilcoxon'])}, Hedges' g_z = "
        f"{num(c['hedges_g'], 2)}{' (undefined for n < 3)' if c['n'] < 3 else ''}."
    )


def conclusion(c: Mapping[str, Any], alpha: float) -> str:
    """Significant or not after Holm, in which direction, and what the significance rests on."""
    if is_missing(c.get("p_holm")):
        return f"No test was possible ({c.get('note') or 'undefined p-value'})."
    if c["p_holm"] >= alpha:
        text = f"This difference is not significant at α = {alpha} after Holm correction"
        if is_missing(c["ci_low"]) or c["ci_low"] <= 0 <= c["ci_high"]:
            text += "; its interval includes 0." if not is_missing(c["ci_low"]) else "."
        else:
            text += (
                ". Its interval excludes 0 but, unlike the Holm p-value, is not adjusted for the other "
                f"{c['family']} tests."
            )
        return text + _floor_note(c, alpha, significant=False)
    direction = "higher" if c["mean_diff"] > 0 else "lower"
    better = (c["mean_diff"] > 0) == bool(c["higher_is_better"])
    return (
        f"This difference is significant at α = {alpha} after Holm correction: {c['group_b']} is {direction} "
        f"than {c['group_a']} ({'better' if better else 'worse'} for this quantity)."
        + _floor_note(c, alpha, significant=True)
    )


def _floor_note(c: Mapping[str, Any], alpha: float, significant: bool) -> str:
    floor = c.get("wilcoxon_floor")
    if floor is None or is_missing(floor) or floor < alpha or c["p_holm_source"] != "p_ttest":
        return ""
    head = f" With {c['n']} seeds the Wilcoxon signed-rank p cannot go below {pvalue(floor)}, so "
    if significant:
        return head + "the significance rests on the paired t-test alone (which assumes roughly normal differences)."
    return head + "the rank test could not have confirmed any difference."


def power_sentence(c: Mapping[str, Any], alpha: float) -> str:
    """How many seeds a confirmatory study needs for 80% power, and whether this study had them."""
    need, adjusted = c.get("seeds_needed") or {}, c.get("seeds_needed_adjusted")
    if not need:
        return ""
    if need.get("seeds") is None:
        return f" No seed count gives 80% power here: {need.get('reason')}."
    text = (
        f" For 80% power (two-sided paired t-test at α = {alpha}) at the observed effect (|g_z| = "
        f"{num(need['effect_size'], 2)}) a confirmatory study needs {need['seeds']} seeds"
    )
    if adjusted and adjusted.get("seeds") is not None:
        text += f", {adjusted['seeds']} at α = {pvalue(adjusted['alpha'])} (Bonferroni over the primary tests)"
    wanted = adjusted["seeds"] if adjusted and adjusted.get("seeds") is not None else need["seeds"]
    enough = "enough" if c["n"] >= wanted else "not enough"
    return (
        text + f"; this study's {c['n']} were {enough}. Effects observed with few seeds are an optimistic "
        "guide: plan for more."
    )


def budget_sentence(analysis: Mapping[str, Any]) -> str | None:
    """ "At a fixed budget of N epochs" when every run stopped there while the baseline still improved."""
    budget = analysis.get("fixed_budget")
    if not budget or budget.get("still_improving") is False:
        return None
    epochs = budget["epochs"]
    kind = "fine-tuning" if analysis.get("has_pretraining") else "training"
    unit = "epoch" if epochs == 1 else "epochs"
    if budget.get("still_improving") is None:
        return (
            f"At a fixed budget of {epochs} {kind} {unit}: every run stopped there, so the differences below are "
            "differences at that budget, not between converged models."
        )
    return (
        f"At a fixed budget of {epochs} {kind} {unit}: every run stopped after {epochs} {unit} while the baseline "
        f"({budget['group']}) was still improving (validation {analysis['primary_metric']} "
        f"{signed(budget['last_change'])} in its last epoch), so the differences below are differences at that "
        "budget, not between converged models; more epochs could shrink or grow them."
    )


def _runner_up(analysis: Mapping[str, Any], alpha: float) -> str | None:
    pick = analysis.get("best_vs_runner_up")
    if not pick:
        return None
    best, runner = pick["best"], pick["runner_up"]
    if pick.get("comparison") is None:
        return f"The best group, {best}, could not be compared with the runner-up, {runner} (see Not compared)."
    c = analysis["comparisons"][pick["comparison"]]
    chosen = (
        (
            " It was chosen after seeing the data (post hoc), so its p-value is optimistic; it is tested in the "
            "secondary family."
        )
        if c.get("post_hoc")
        else ""
    )
    separated = (not is_missing(c["p_holm"])) and c["p_holm"] < alpha
    if c["family"] == "primary":
        return (
            f"Best vs runner-up on {c['label']}: {best} vs {runner}, which is the primary comparison above "
            f"(difference {signed(c['mean_diff'])}, Holm-adjusted p = {pvalue(c['p_holm'])}): "
            + (f"{best} is significantly better." if separated else f"the data do not separate {best} from {runner}.")
        )
    described = describe(c, analysis["families"], analysis["confidence"])
    return f"Best vs runner-up on {c['label']}: {best} vs {runner}. {described} {conclusion(c, alpha)}{chosen}" + (
        "" if separated else f" The data do not separate {best} from {runner}."
    )


def _family_count(analysis: Mapping[str, Any], family: str, alpha: float) -> str:
    rows = [c for c in analysis["comparisons"] if c["family"] == family]
    significant = [c for c in rows if not is_missing(c.get("p_holm")) and c["p_holm"] < alpha]
    listed = "; ".join(
        f"{c['group_b']} vs {c['group_a']} on {c['label']} ({signed(c['mean_diff'], _digits(c))})" for c in significant
    )
    size = analysis["families"][family]
    return (
        f"{family.capitalize()} family ({count(size, 'test')} with a defined p-value, Holm-adjusted together): "
        f"{len(significant)} significant at α = {alpha}" + (f": {listed}." if significant else ".")
    )


def verdict(analysis: Mapping[str, Any]) -> list[str]:
    """Paragraphs: budget, each primary comparison, best vs runner-up, then the count per family."""
    comparisons, alpha, confidence = analysis["comparisons"], analysis["alpha"], analysis["confidence"]
    if not comparisons:
        reasons = "; ".join(sorted({n["reason"] for n in analysis["not_compared"]}))
        return [
            "No paired comparison could be made" + (f": {reasons}." if reasons else " (the study has a single group).")
        ]
    paragraphs = [p for p in [budget_sentence(analysis)] if p]
    for c in (c for c in comparisons if c["family"] == "primary"):
        paragraphs.append(
            f"{describe(c, analysis['families'], confidence)} {conclusion(c, alpha)}{power_sentence(c, alpha)}"
        )
    if not any(c["family"] == "primary" for c in comparisons):
        paragraphs.append("No primary comparison could be made (see Not compared); every test below is secondary.")
    runner = _runner_up(analysis, alpha)
    if runner:
        paragraphs.append(runner)
    described = analysis["families"]["descriptive"]
    paragraphs.append(
        " ".join(
            [_family_count(analysis, "primary", alpha), _family_count(analysis, "secondary", alpha)]
            + (
                [
                    f"Total time ({count(described, 'comparison')}) is described, not tested: it is "
                    "positive by construction (see Wall time)."
                ]
                if described
                else []
            )
        )
    )
    return paragraphs


def rows_of(analysis: Mapping[str, Any], family: str) -> Sequence[Mapping[str, Any]]:
    return [c for c in analysis["comparisons"] if c["family"] == family]
