"""Number formatting and the generated sentences of a report, all from analysis.json.

The verdict is written by rules, not by hand, so it can only say what the numbers say:
a difference is called significant only when its Holm-adjusted p-value is below alpha,
the direction comes from the sign of the mean difference, and every sentence carries
the effect size, its confidence interval and the n it rests on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

DASH = "–"
SMALL_N = 10  # below this many seed pairs a percentile/BCa bootstrap CI is known to undercover


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def num(value: Any, digits: int = 4) -> str:
    """A metric value, e.g. ``0.9515``; a dash when it does not exist (e.g. std of one seed)."""
    return DASH if _missing(value) else f"{float(value):.{digits}f}"


def signed(value: Any, digits: int = 4) -> str:
    return DASH if _missing(value) else f"{float(value):+.{digits}f}"


def seconds(value: Any) -> str:
    if _missing(value):
        return DASH
    value = float(value)
    return f"{value:.2f} s" if abs(value) < 10 else f"{value:.1f} s"


def pvalue(value: Any) -> str:
    """p-values with three significant digits; tiny ones in scientific notation."""
    if _missing(value):
        return DASH
    return f"{float(value):.2e}" if float(value) < 0.001 else f"{float(value):.3f}"


def percent(value: Any) -> str:
    return DASH if _missing(value) else f"{float(value):+.0f}%"


def mean_std(summary: Mapping[str, Any] | None, digits: int = 4) -> str:
    """``0.4520 ± 0.0123``; the ± part is left out when there is one seed."""
    if not summary:
        return DASH
    if _missing(summary.get("std")):
        return num(summary.get("mean"), digits)
    return f"{num(summary['mean'], digits)} ± {num(summary['std'], digits)}"


def interval(low: Any, high: Any, digits: int = 4) -> str:
    return DASH if _missing(low) or _missing(high) else f"[{num(low, digits)}, {num(high, digits)}]"


def ci(summary: Mapping[str, Any] | None, digits: int = 4) -> str:
    return interval((summary or {}).get("ci_low"), (summary or {}).get("ci_high"), digits)


def cell(summary: Mapping[str, Any] | None, digits: int = 4) -> str:
    """One headline cell: mean ± std, 95% CI and n."""
    if not summary:
        return "no completed run"
    if summary["n"] < 2:
        return f"{num(summary['mean'], digits)} (n=1)"
    return f"{mean_std(summary, digits)} {ci(summary, digits)} (n={summary['n']})"


def headline_rows(analysis: Mapping[str, Any]) -> list[list[str]]:
    """``[group, cell per pattern]`` rows of the primary metric on the test set."""
    metric = analysis["primary_metric"]
    return [[g["name"], *(cell(g["test"].get(p, {}).get(metric)) for p in analysis["patterns"])]
            for g in analysis["groups"]]


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured Markdown table; ``|`` inside cells is escaped."""
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(header), line(["---"] * len(header)), *(line(r) for r in rows)])


def describe(c: Mapping[str, Any], family: int, confidence: float) -> str:
    """One comparison in words: difference, CI, n, both p-values, Holm p and effect size."""
    unit = 4 if c["kind"] != "time" else 2
    return (f"{c['group_b']} − {c['group_a']} on {c['label']}: mean difference {signed(c['mean_diff'], unit)} "
            f"({confidence:.0%} bootstrap CI {interval(c['ci_low'], c['ci_high'], unit)}; n = {c['n']} paired "
            f"seeds {c['seeds']}), paired t-test p = {pvalue(c['p_ttest'])}, Holm-adjusted p = "
            f"{pvalue(c['p_holm'])} (family of {family} tests), Wilcoxon p = {pvalue(c['p_wilcoxon'])}, "
            f"Hedges' g_z = {num(c['hedges_g'], 2)}{' (undefined for n < 3)' if c['n'] < 3 else ''}.")


def conclusion(c: Mapping[str, Any], alpha: float) -> str:
    """Significant or not after Holm, and in which direction; no adjectives beyond that."""
    if _missing(c.get("p_holm")):
        return f"No test was possible ({c.get('note') or 'undefined p-value'})."
    if c["p_holm"] >= alpha:
        text = f"This difference is not significant at α = {alpha} after Holm correction"
        if _missing(c["ci_low"]) or c["ci_low"] <= 0 <= c["ci_high"]:
            return text + ("; its CI includes 0." if not _missing(c["ci_low"]) else ".")
        if c["n"] < SMALL_N:
            resamples = math.comb(2 * c["n"] - 1, c["n"])
            return (text + f". Its bootstrap CI excludes 0, but with n = {c['n']} the bootstrap has only "
                    f"{resamples} distinct resamples, so that interval is too narrow to rely on; the t-test "
                    "accounts for the small n.")
        return text + ". Its bootstrap CI excludes 0 but, unlike the Holm p-value, is not adjusted for the other tests."
    direction = "higher" if c["mean_diff"] > 0 else "lower"
    better = (c["mean_diff"] > 0) == bool(c["higher_is_better"])
    return (f"This difference is significant at α = {alpha} after Holm correction: {c['group_b']} is {direction} "
            f"than {c['group_a']} ({'better' if better else 'worse'} for this quantity).")


def verdict(analysis: Mapping[str, Any]) -> list[str]:
    """Paragraphs: the primary-metric comparison of each pair, then a count of significant results."""
    comparisons = analysis["comparisons"]
    family, alpha, confidence = analysis["holm_family_size"], analysis["alpha"], analysis["confidence"]
    if not comparisons:
        reasons = "; ".join(sorted({n["reason"] for n in analysis["not_compared"]}))
        return ["No paired comparison could be made" + (f": {reasons}." if reasons else
                                                         " (the study has a single group).")]
    head = analysis["patterns"][0]
    primary = [c for c in comparisons if c["kind"] == "test" and c["pattern"] == head]
    paragraphs = [f"{describe(c, family, confidence)} {conclusion(c, alpha)}" for c in primary]
    significant = [c for c in comparisons if not _missing(c.get("p_holm")) and c["p_holm"] < alpha]
    listed = "; ".join(f"{c['group_b']} vs {c['group_a']} on {c['label']} ({signed(c['mean_diff'], 4)})"
                       for c in significant)
    paragraphs.append(f"Of the {len(comparisons)} paired comparisons in this report ({family} with a defined "
                      f"t-test p-value, Holm-adjusted together), {len(significant)} "
                      f"{'is' if len(significant) == 1 else 'are'} significant at α = {alpha}"
                      + (f": {listed}." if significant else "."))
    return paragraphs


def cost_sentences(analysis: Mapping[str, Any]) -> list[str]:
    """Plain sentences on wall time per seed for each compared pair."""
    sentences = []
    for row in analysis.get("costs", []):
        a, b = row["group_a"], row["group_b"]
        text = (f"{b} (n={row['n_b']}) vs {a} (n={row['n_a']}): main training {seconds(row['training_b'])} vs "
                f"{seconds(row['training_a'])} per seed ({percent(row['training_change_pct'])})")
        if (row.get("pretraining_added_full") or 0) > 0:
            text += (f"; pre-training added {seconds(row['pretraining_added_full'])} per seed in full "
                     f"({percent(row['pretraining_added_pct_of_a_total'])} over the {a} total of "
                     f"{seconds(row['total_with_pretraining_a'])}), {seconds(row['pretraining_added_amortised'])} "
                     f"amortised over the runs sharing each encoder; total cost per seed incl. pre-training "
                     f"{seconds(row['total_with_pretraining_b'])} vs {seconds(row['total_with_pretraining_a'])} "
                     f"({percent(row['total_change_pct_full'])}; amortised "
                     f"{percent(row['total_change_pct_amortised'])})")
        else:
            text += (f"; total per seed{' incl. pre-training' if row.get('pretraining_full_b') else ''} "
                     f"{seconds(row['total_with_pretraining_b'])} vs "
                     f"{seconds(row['total_with_pretraining_a'])} ({percent(row['total_change_pct_full'])})")
        sentences.append(text + ".")
    return sentences


def not_compared_lines(analysis: Mapping[str, Any]) -> list[str]:
    """One line per pair that could not be compared, naming the quantities it concerns."""
    by_pair: dict[tuple[str, str, str], list[str]] = {}
    for row in analysis.get("not_compared", []):
        by_pair.setdefault((row["group_a"], row["group_b"], row["reason"]), []).append(row["label"])
    return [f"{b} vs {a} ({', '.join(labels)}): {reason}." for (a, b, reason), labels in by_pair.items()]


FILTERS = {"num": num, "signed": signed, "seconds": seconds, "pvalue": pvalue, "percent": percent,
           "mean_std": mean_std, "ci": ci, "interval": interval, "cell": cell}
