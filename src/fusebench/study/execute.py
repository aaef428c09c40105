"""Run a study: plan it, pick the executor, resume, and rewrite the results after every node.

The executors are :mod:`fusebench.study.local_pool` (this process, or a process pool;
the default) and :mod:`fusebench.study.ray_backend`. Both hand each node to
:func:`fusebench.study.node_run.execute_node`, so the numbers do not depend on the
executor or on how many workers ran. A failing run is recorded and the study goes on;
runs that load its encoder are skipped with an error that names it.

The *seconds* do depend on how many runs shared the cores, so every invocation appends
its workers, CPUs and load average to ``execution.json``; the report turns that into a
caveat on its time figures (``--workers 1`` gives clean timings).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from rich.console import Console

from fusebench.config import ConfigError
from fusebench.engine.run_folder import RunState, ensure_directory, locked, recorded_state
from fusebench.io import atomic_write_json, atomic_write_text, read_json
from fusebench.study.graph import PLAN_FILE, StudyGraph, build_graph, write_plan
from fusebench.study.local_pool import run_in_process, run_pool
from fusebench.study.node_run import NodeOutcome
from fusebench.study.results import EXECUTION_FILE, write_results
from fusebench.study.spec import dump_spec, load_spec

Backend = Literal["local", "ray"]


def clear_for_rerun(graph: StudyGraph, node_id: str, console: Console) -> None:
    """Empty a node's folder before it runs again; a finished training with another config is moved aside,
    never deleted (``superseded/<node>-<n>``)."""
    run_dir = graph.run_dir(node_id)
    if not run_dir.exists():
        return
    if recorded_state(run_dir) == RunState.COMPLETED:
        aside = graph.study_dir / "superseded"
        aside.mkdir(exist_ok=True)
        number = 1 + sum(1 for p in aside.iterdir() if p.name.startswith(f"{node_id}-"))
        target = aside / f"{node_id}-{number}"
        shutil.move(str(run_dir), str(target))
        console.print(
            f"[yellow]superseded:[/] {node_id} finished with another config or data; moved to {target}",
            highlight=False,
            soft_wrap=True,
        )
    else:
        shutil.rmtree(run_dir)


def run_study(
    spec_path: str | Path,
    *,
    workers: int = 1,
    resume: bool | None = False,
    backend: Backend = "local",
    address: str | None = None,
    study_root: str | Path = "studies",
    console: Console | None = None,
    base: str | Path | None = None,
    name: str | None = None,
    spec_overrides: Sequence[str] = (),
) -> Path:
    """Run every node of the study in ``spec_path`` not already complete; return the study folder.

    Args:
        spec_path: the study spec YAML.
        workers: parallel runs (local processes, or the CPUs asked of a local Ray instance).
        resume: continue an existing study folder, skipping nodes that completed with the same config;
            ``None`` continues it if it exists and starts it otherwise (``fusebench demo``).
        backend: ``"local"`` (process pool) or ``"ray"``.
        address: Ray cluster address (``"auto"``, ``"host:port"``) or ``None`` for a local instance.
        study_root: the study folder is ``<study_root>/<study name>``.
        base: run the spec on this base run config instead of its own (any dataset's config).
        name: the study's name (its folder) instead of the spec's.
        spec_overrides: dotted changes of the spec's keys, e.g. ``analysis.threshold=0.5``.
        console: where progress lines go (default: a new rich console).

    Raises:
        ConfigError: invalid spec, an existing study folder without ``resume``, or ``resume``
            where there is no study.
        RunFolderError: the root is not a writable folder, or another process runs this study.
    """
    if workers < 1:
        raise ConfigError(f"Expected `--workers` >= 1, got {workers}.")
    if backend not in ("local", "ray"):
        raise ConfigError(f"Expected `--backend` `local` or `ray`, got `{backend}`.")
    console = console or Console()
    study = load_spec(spec_path, base=base, name=name, overrides=spec_overrides)
    study_dir = ensure_directory(Path(study_root), "--root").resolve() / study.spec.name
    exists = (study_dir / PLAN_FILE).is_file()
    if resume is None:
        resume = exists
    if resume and not exists:
        raise ConfigError(
            f"Nothing to resume: `{study_dir}` holds no study (no `{PLAN_FILE}`); run it without "
            "`--resume` to start it, or pass the `--root` it was written to."
        )
    runs = study_dir / "runs"
    if not resume and runs.is_dir() and any(runs.iterdir()):
        raise ConfigError(
            f"Study folder `{study_dir}` already holds runs; pass `--resume` to continue it "
            "(finished runs are kept), or remove the folder to start over."
        )
    with locked(study_dir, "--root"):
        graph = build_graph(study, study_dir)
        atomic_write_text(study_dir / "spec.yaml", dump_spec(study))
        write_plan(graph)
        todo = [n for n, node in graph.nodes.items() if node.same_as is None and not graph.is_complete(n)]
        done = {n: RunState.COMPLETED for n in graph.nodes if graph.nodes[n].same_as is None and n not in todo}
        for node_id in todo:  # a half-written folder from an interrupted or changed run would mislead
            clear_for_rerun(graph, node_id, console)
        record_session(study_dir, workers=workers, backend=backend, threads=study.spec.threads_per_run, nodes=todo)
        console.print(
            f"study [bold]{study.spec.name}[/]: {len(graph.nodes)} nodes, {len(done)} already complete, "
            f"{len(todo)} to run on {workers} {backend} worker(s) -> {study_dir}",
            highlight=False,
            soft_wrap=True,
        )
        progress = _Progress(graph, console, done, len(todo))
        try:
            if backend == "ray":
                from fusebench.study.ray_backend import run_ray

                run_ray(graph, todo, done, progress, workers=workers, address=address)
            elif workers == 1:
                run_in_process(graph, todo, done, progress)
            else:
                run_pool(graph, todo, done, progress, workers)
        finally:
            write_results(study_dir)
    return study_dir


def _cpus() -> int | None:
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity is not None else os.cpu_count()


def record_session(study_dir: Path, *, workers: int, backend: str, threads: int, nodes: Sequence[str]) -> None:
    """Append this invocation's concurrency to ``execution.json``: what the run times were measured under.

    ``workers`` is how many runs could be in flight at once; ``load_average`` (1, 5 and 15
    minutes, where the OS reports it) shows other work on the machine when the session began.
    """
    file = study_dir / EXECUTION_FILE
    sessions = list(read_json(file).get("sessions", [])) if file.is_file() else []
    load = [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None
    sessions.append(
        {
            "workers": workers,
            "backend": backend,
            "cpus": _cpus(),
            "threads_per_run": threads,
            "load_average": load,
            "nodes": list(nodes),
        }
    )
    atomic_write_json(file, {"sessions": sessions})


class _Progress:
    """Records each outcome, rewrites the results files and prints one line per node."""

    def __init__(self, graph: StudyGraph, console: Console, done: dict[str, RunState], total: int) -> None:
        self.graph, self.console, self.done, self.total, self.count = graph, console, done, total, 0

    def __call__(self, outcome: NodeOutcome) -> None:
        self.done[outcome.node] = outcome.status
        self.count += 1
        write_results(self.graph.study_dir)
        style = {"completed": "green", "failed": "bold red", "skipped": "yellow"}[outcome.status]
        width = len(str(self.total))
        line = (
            f"[{self.count:>{width}}/{self.total}] [{style}]{outcome.status:<9}[/] {outcome.node:<40} "
            f"{outcome.seconds:7.1f} s"
        )
        self.console.print(line, highlight=False)
        if outcome.error and outcome.status == RunState.FAILED:
            self.console.print(f"    {outcome.error}", highlight=False, markup=False)
