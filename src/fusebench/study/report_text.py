"""Number formatting, headline cells and table notes of a report, all from analysis.json.

The generated sentences are in :mod:`fusebench.study.report_verdict` (verdict),
:mod:`fusebench.study.report_time` (wall time) and :mod:`fusebench.study.report_decision`
(decision guide).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

DASH = "–"


def is_missing(value: Any) -> bool:
    """No value to print: ``None`` or a non-finite float (a statistic that could not be computed)."""
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def num(value: Any, digits: int = 4) -> str:
    """A metric value, e.g. ``0.9515``; a dash when it does not exist (e.g. std of one seed)."""
    return DASH if is_missing(value) else f"{float(value):.{digits}f}"


def signed(value: Any, digits: int = 4) -> str:
    return DASH if is_missing(value) else f"{float(value):+.{digits}f}"


def seconds(value: Any) -> str:
    """Seconds with two decimals, e.g. ``14.80 s``."""
    return DASH if is_missing(value) else f"{float(value):.2f} s"


def pvalue(value: Any) -> str:
    """p-values with three significant digits: ``0.0625``, ``0.700``, ``1.00``; below 0.001 ``4.10e-04``."""
    if is_missing(value):
        return DASH
    return f"{float(value):.2e}" if float(value) < 0.001 else f"{float(value):#.3g}"


def percent(value: Any, digits: int = 0) -> str:
    """A signed change in percent, ``+12%`` (``digits=1``: ``+12.3%``); a dash when it does not exist."""
    return DASH if is_missing(value) else f"{float(value):+.{digits}f}%"


def mean_std(summary: Mapping[str, Any] | None, digits: int = 4) -> str:
    """``0.4520 ± 0.0123``; the ± part is left out when there is one seed."""
    if not summary:
        return DASH
    if is_missing(summary.get("std")):
        return num(summary.get("mean"), digits)
    return f"{num(summary['mean'], digits)} ± {num(summary['std'], digits)}"


def interval(low: Any, high: Any, digits: int = 4) -> str:
    return DASH if is_missing(low) or is_missing(high) else f"[{num(low, digits)}, {num(high, digits)}]"


def ci(summary: Mapping[str, Any] | None, digits: int = 4) -> str:
    return interval((summary or {}).get("ci_low"), (summary or {}).get("ci_high"), digits)


def cell(summary: Mapping[str, Any] | None, digits: int = 4, test_set: Mapping[str, Any] | None = None) -> str:
    """One headline cell: mean ± std, 95% CI over seeds, n, and the test-set ± when known."""
    if not summary:
        return "no completed run"
    extra = f"; test set ±{num(test_set['half_width'], digits)}" if test_set else ""
    if summary["n"] < 2:
        return f"{num(summary['mean'], digits)} (n=1{extra})"
    return f"{mean_std(summary, digits)} {ci(summary, digits)} (n={summary['n']}{extra})"


def headline_rows(analysis: Mapping[str, Any]) -> list[list[str]]:
    """``[group, cell per pattern]`` rows of the primary metric on the test set."""
    metric = analysis["primary_metric"]
    return [
        [
            g["name"],
            *(
                cell(g["test"].get(p, {}).get(metric), test_set=(g.get("test_set") or {}).get(p))
                for p in analysis["patterns"]
            ),
        ]
        for g in analysis["groups"]
    ]


TEST_SET_METHODS = {
    "wilson": "Wilson binomial interval of the group's mean on the {samples} test samples (an upper "
    "bound for a mean over seeds that share the test set)",
    "bootstrap": "percentile bootstrap over the {samples} test samples ({resamples} resamples, the "
    "same samples for every seed)",
}


def test_set_note(analysis: Mapping[str, Any]) -> str:
    """What the headline's "test set ±" is: which interval, on how many samples."""
    records = [r for g in analysis["groups"] for r in (g.get("test_set") or {}).values() if r]
    if not records:
        return "No test-set interval: the runs saved no test predictions and the metric is not a proportion."
    methods = {r["method"]: r for r in records}
    described = "; ".join(TEST_SET_METHODS[m].format(**r) for m, r in methods.items())
    return (
        f'"test set ±" is the half-width of the {analysis["confidence"]:.0%} interval from test-sample error '
        f"alone, which the CI over seeds leaves out (every run is tested on the same samples): {described}."
    )


def interval_note(rows: Sequence[Mapping[str, Any]], confidence: float) -> str:
    """Which interval a comparison table shows (the methods its rows used)."""
    names = {"t": "paired t-interval (the interval of the paired t-test)", "bca": "BCa bootstrap interval"}
    used = sorted({names[r["ci_method"]] for r in rows if r.get("ci_method") in names})
    return f"{confidence:.0%} intervals: {' and '.join(used) or 'none'}."


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured Markdown table; ``|`` inside cells is escaped."""

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(header), line(["---"] * len(header)), *(line(r) for r in rows)])


def not_compared_lines(analysis: Mapping[str, Any]) -> list[str]:
    """One line per pair that could not be compared, naming the quantities it concerns."""
    by_pair: dict[tuple[str, str, str], list[str]] = {}
    for row in analysis.get("not_compared", []):
        by_pair.setdefault((row["group_a"], row["group_b"], row["reason"]), []).append(row["label"])
    return [f"{b} vs {a} ({', '.join(labels)}): {reason}." for (a, b, reason), labels in by_pair.items()]


def count(n: int, word: str) -> str:
    """``1 test``, ``3 tests``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def ratio(value: Any) -> str:
    return DASH if is_missing(value) else f"{float(value):.2f}×"


FILTERS = {
    "num": num,
    "signed": signed,
    "seconds": seconds,
    "pvalue": pvalue,
    "percent": percent,
    "mean_std": mean_std,
    "ci": ci,
    "interval": interval,
    "cell": cell,
    "ratio": ratio,
    "count": count,
}
