"""The bench's table: each measured row of issue 14 beside its goal, and ``results.md``.

Every number shown is read from the results the bench measured in this session; the
goals are issue 14's. Time goals are judged on CPU seconds (wall seconds beside them):
on a machine shared with other work, wall time is mostly the wait for a core.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Row = tuple[str, str, str, str]
SINGULAR = {"samples": "sample", "modalities": "modality"}


def _met(ok: bool | None) -> str:
    return "n/a" if ok is None else ("yes" if ok else "**no**")


def _ratio(row: dict[str, Any]) -> str:
    return (
        f"{row['ratio_median']:.3f} (rounds {row['ratio_min']:.3f}-{row['ratio_max']:.3f}; "
        f"wall {row['wall_ratio_median']:.3f})"
    )


def _train(row: dict[str, Any]) -> Row:
    value = (
        f"{_ratio(row)}; {row['extra_ms_per_step']:+.2f} ms/step over bare {row['bare_ms_per_step']:.1f} ms "
        f"({row['samples']} samples)"
    )
    return "", value, "<= 1.03 on every round", _met(row["ratio_max"] <= 1.03)


def _whole(row: dict[str, Any]) -> Row:
    parts = row["one_run_parts_seconds"]
    value = (
        f"{_ratio(row)}; one run: training {parts['training']:.2f} s, validation {parts['validation']:.2f} s, "
        f"test {parts['test']:.2f} s, total {parts['total']:.2f} s (wall)"
    )
    return "", value, "<= 1.25", _met(row["ratio_median"] <= 1.25)


def _test(row: dict[str, Any]) -> Row:
    return (
        "",
        f"{_ratio(row)} at batch {row['eval_batch_size']}",
        "keep (1.02 before; read as <= 1.05)",
        _met(row["ratio_median"] <= 1.05),
    )


def _eval(results: dict[str, Any]) -> Row:
    from fusebench.data.options import DataOptions

    default = DataOptions.model_fields["eval_batch_size"].default
    found = {k: results["rows"][k] for k in ("eval_batch_default", "eval_batch_demo") if k in results["rows"]}
    parts = []
    for name, row in found.items():
        per = ", ".join(f"{s}: {v:.0f}" for s, v in row["us_per_sample"].items())
        ratio = row["ratio_1024_over_128"]
        parts.append(
            f"{name.removeprefix('eval_batch_')} CNN {row['widths']}: fastest {row['fastest']} "
            f"(CPU us/sample {per}; 1024 over 128: {ratio:.2f}x)"
        )
    fastest = {row["fastest"] for row in found.values()}
    ok = None if not found else default in fastest
    return "", "; ".join(parts) + f"; default now {default}", "the faster by default", _met(ok)


def _memory(row: dict[str, Any]) -> Row:
    value = (
        f"{row['ratio_median']:.2f} ({row['fusebench_mib']:.0f} MiB / bare {row['bare_mib']:.0f} MiB; "
        f"after imports {row['fusebench_rss_after_imports_mib']:.0f} / "
        f"{row['bare_rss_after_imports_mib']:.0f} MiB)"
    )
    return "", value, "<= 1.15", _met(row["ratio_median"] <= 1.15)


def _startup(row: dict[str, Any]) -> Row:
    value = (
        f"first step after {row['first_step_cpu_seconds']:.2f} CPU s ({row['first_step_seconds']:.2f} s wall); "
        f"`--help` {row['help_seconds']:.2f} s; process {row['process_seconds']:.1f} s / its epoch "
        f"{row['train_epoch_seconds']:.1f} s (wall)"
    )
    return "", value, "startup to first step <= 2 s", _met(row["first_step_cpu_seconds"] <= 2.0)


def _cache(row: dict[str, Any]) -> Row:
    value = f"{_ratio(row)}; a cached epoch is {row['cached_epoch_over_uncached']:.3f}x an uncached one"
    return "", value, "<= 1.0", _met(row["ratio_median"] <= 1.0)


def _study(row: dict[str, Any]) -> Row:
    value = (
        f"{row['ratio_median']:.2f} (wall, {row['nodes']} nodes: {row['two_worker_seconds'][0]:.0f} s / "
        f"{row['one_worker_seconds'][0]:.0f} s); identical test metrics: {row['identical_test_metrics']}; "
        f"{row['nodes']} nodes ran in {row['worker_processes_for_nodes']} worker processes"
    )
    if "phases_one_worker" in row:  # rows measured before the phases were recorded have none
        one, two = row["phases_one_worker"], row["phases_two_workers"]
        value += (
            f"; set-up / nodes / report {one['setup']:.0f} / {one['nodes']:.0f} / {one['report']:.0f} s with 1 worker, "
            f"{two['setup']:.0f} / {two['nodes']:.0f} / {two['report']:.0f} s with 2 (nodes phase "
            f"{row['nodes_phase_ratio']:.2f})"
        )
    ok = row["ratio_median"] <= 0.55 and row["identical_test_metrics"]
    return "", value, "<= 0.55, same results, workers reused", _met(ok)


def _cold(row: dict[str, Any]) -> Row:
    if "skipped" in row:
        return "", row["skipped"], "<= 20 s, <= 1 GB", "n/a"
    value = f"{row['cpu_seconds']:.1f} CPU s ({row['seconds']:.1f} s wall), peak RSS {row['peak_rss_mib']:.0f} MiB"
    return "", value, "<= 20 s, <= 1 GB", _met(row["cpu_seconds"] <= 20 and row["peak_rss_mib"] <= 1024)


def _curve(row: dict[str, Any], unit: str) -> Row:
    points = ", ".join(f"{n} {unit}: {p['cpu_seconds']:.2f} s" for n, p in row["points"].items())
    fit = row["fit_cpu"]
    xs = [float(n) for n in row["points"]]
    ys = [p["cpu_seconds"] for p in row["points"].values()]
    pairs = zip(zip(xs, xs[1:], strict=False), zip(ys, ys[1:], strict=False), strict=True)
    slopes = ", ".join(f"{(y1 - y0) / (x1 - x0):.3g}" for (x0, x1), (y0, y1) in pairs)
    value = (
        f"{points} (CPU); line fit off by at most {100 * fit['max_relative_residual']:.1f}%; "
        f"CPU s per added {SINGULAR.get(unit, unit)} between points: {slopes}"
    )
    return "", value, "linear (read as: every point within 10% of the line)", _met(fit["max_relative_residual"] <= 0.10)


def _deterministic(row: dict[str, Any]) -> Row:
    return "", f"{_ratio(row)} (deterministic on / off)", "its cost measured", "n/a"


def _floor(row: dict[str, Any]) -> Row:
    parts = [f"{name}: {r['extra_ms_per_step']:+.2f} ms/step ({r['ratio_median']:.3f}x)" for name, r in row.items()]
    return "", "; ".join(parts) + " over the bare loop, CNN [4]", "profile (where the per-step time goes)", "n/a"


TABLE: list[tuple[str, str, Callable[..., Row]]] = [
    ("train_epoch_default", "train epoch / bare fwd+bwd+step, default CNN 32/64", _train),
    ("train_epoch_demo", "same, demo-sized CNN 8/16", _train),
    ("whole_run", "whole 1-epoch run (train + all-pattern validation + test + files) / bare epoch", _whole),
    ("test_pass", "test pass, one pattern / bare", _test),
    ("eval_batch", "evaluation batch size", _eval),
    ("memory_default", "peak RSS / bare process on the same data (default CNN)", _memory),
    ("memory_demo", "peak RSS / bare process on the same data (demo)", _memory),
    ("startup", "`fusebench train` start-up and process time", _startup),
    ("frozen_cache", "frozen cache: one-off encode / one uncached epoch", _cache),
    ("study", "study, 2 workers / 1 worker", _study),
    ("cold_build", "cold AV-digits build", _cold),
    ("curve_samples", "scaling: epoch vs training samples (demo CNN)", lambda r: _curve(r, "samples")),
    ("curve_modalities", "scaling: epoch vs modalities (identical CNNs)", lambda r: _curve(r, "modalities")),
    ("deterministic", "`experiment.deterministic` cost (training epoch)", _deterministic),
    ("lightning_floor", "per-step framework cost with a tiny model", _floor),
]


def table_rows(results: dict[str, Any]) -> list[Row]:
    out = []
    for key, label, render in TABLE:
        if key == "eval_batch":
            if any(k in results["rows"] for k in ("eval_batch_default", "eval_batch_demo")):
                out.append((label, *render(results)[1:]))
            continue
        if key in results["rows"]:
            out.append((label, *render(results["rows"][key])[1:]))
        elif key in results.get("errors", {}):
            out.append((label, "row failed (traceback in results.json)", "", "**no**"))
    return out


def render_markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        "# Benchmarks (`make bench`)",
        "",
        "Written by `benchmarks/run.py` from what it measured; every number is in `results.json`.",
        "",
        f"- machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB; {m['os']}",
        f"- python {m['python']}, torch {m['torch']}, lightning {m['lightning']}; one torch thread per process",
        f"- load average (1, 5, 15 min) at start {m['load_average_at_start']}, at end {m.get('load_average_at_end')}",
        f"- profile `{results['profile']}`, {results['settings']['rounds']} ABBA rounds per paired row; "
        f"the bench took {results['total_seconds']:.0f} s",
        *(
            [
                f"- the study row was re-measured alone (`--rows study`) at load average "
                f"{m['study_row_remeasured']['load_average_at_start']} (start), "
                f"{m['study_row_remeasured']['load_average_at_end']} (end)"
            ]
            if "study_row_remeasured" in m
            else []
        ),
        "",
        "**Load caveat.** This machine is shared: the load average above is the number of runnable",
        "processes on its cores. Ratios are measured interleaved in one process (A, B, B, A) on this",
        "process's CPU seconds, which a busy machine inflates far less than wall seconds; the study",
        "row is wall time by nature (it measures parallelism) and is only meaningful on a quiet machine.",
        "",
        "| measure | fusebench (measured) | goal | met |",
        "|---|---|---|---|",
    ]
    lines += [f"| {label} | {value} | {goal} | {met} |" for label, value, goal, met in table_rows(results)]
    if results.get("errors"):
        lines += ["", "Rows that failed: " + ", ".join(sorted(results["errors"])) + " (tracebacks in results.json)."]
    extra = results["rows"]
    if "import_memory" in extra:
        lines += [
            "",
            "Resident MiB after imports (fresh processes): "
            + ", ".join(f"{k} {v:.0f}" for k, v in extra["import_memory"].items())
            + ".",
        ]
    if "import_profile" in extra:
        lines += [
            "",
            "`python -X importtime` of `fusebench train`'s imports, self seconds per package: "
            + ", ".join(f"{k} {v:.2f}" for k, v in extra["import_profile"].items())
            + ".",
        ]
    steps = extra.get("cold_build", {}).get("steps")
    if steps:
        lines += ["", "The cold build's own steps (seconds since it started):", ""]
        lines += [f"    {line}" for line in steps]
    return "\n".join(lines) + "\n"
