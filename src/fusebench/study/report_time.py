"""The report's Wall time section: seconds per seed of each compared pair, and the load they ran under.

Separate from the verdict (:mod:`fusebench.study.report_verdict`) because these sentences
describe seconds rather than test a difference, and how far the seconds can be trusted
depends on how many runs shared the machine (``execution.json``), not on the statistics.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fusebench.study.report_text import percent, seconds


def timing_caveat(analysis: Mapping[str, Any]) -> str:
    """Under which concurrency the seconds were measured, and how to get clean ones."""
    timing = analysis["setup"].get("timing_conditions") or {}
    workers, cpus, load = timing.get("max_workers"), timing.get("cpus"), timing.get("max_load_average")
    clean = "`fusebench study SPEC --workers 1` (or `fusebench demo --workers 1`) gives clean timings."
    if workers is None:
        return (
            "How many runs shared the machine while these times were measured was not recorded, so read the "
            f"percentages as indicative; {clean}"
        )
    parts = [
        f"Times were measured with up to {workers} run(s) in parallel on {cpus or '?'} CPU(s) "
        f"({timing.get('threads_per_run')} thread(s) per run)"
    ]
    if load is not None:
        parts.append(f"with a 1-minute load average of up to {load:.2f} when a session started")
    text = ", ".join(parts) + "."
    if workers > 1:
        text += (
            " Runs that share cores slow each other down, so each run's seconds and the time percentages "
            f"carry that contention. {clean}"
        )
    elif load is not None and cpus and load >= 1.0:
        text += (
            " Other work was running on the machine, which slows runs down unevenly; read the seconds and "
            "percentages as indicative and rerun on a quiet machine for clean timings."
        )
    if timing.get("unrecorded"):
        text += f" {timing['unrecorded']} completed run(s) were timed in a session that left no record."
    return text


def cost_sentences(analysis: Mapping[str, Any]) -> list[str]:
    """Plain sentences on wall time per seed for each compared pair."""
    sentences = []
    for row in analysis.get("costs", []):
        a, b = row["group_a"], row["group_b"]
        text = (
            f"{b} (n={row['n_b']}) vs {a} (n={row['n_a']}): main training {seconds(row['training_b'])} vs "
            f"{seconds(row['training_a'])} per seed ({percent(row['training_change_pct'])})"
        )
        if (row.get("pretraining_added_full") or 0) > 0:
            text += (
                f"; pre-training (data + fit) added {seconds(row['pretraining_added_full'])} per seed "
                f"({percent(row['pretraining_added_pct_of_a_total'])} over the {a} total of "
                f"{seconds(row['total_with_pretraining_a'])}); total cost per seed incl. pre-training "
                f"{seconds(row['total_with_pretraining_b'])} vs {seconds(row['total_with_pretraining_a'])} "
                f"({percent(row['total_change_pct_full'])}). Shared among the completed runs of this study's "
                f"arms that load the same encoder, pre-training adds {seconds(row['pretraining_added_amortised'])}"
                f" per seed ({percent(row['total_change_pct_amortised'])}); that sharing exists only within "
                "this study"
            )
        else:
            text += (
                f"; total per seed{' incl. pre-training' if row.get('pretraining_full_b') else ''} "
                f"{seconds(row['total_with_pretraining_b'])} vs "
                f"{seconds(row['total_with_pretraining_a'])} ({percent(row['total_change_pct_full'])})"
            )
        sentences.append(text + ".")
    return sentences
