"""Run a study: the local process pool (default) or Ray, resume, and results after every node.

Both executors hand each node to :func:`execute_node`, which runs the node's resolved
config with a fixed thread count and the config's seed, so the numbers do not depend on
the executor or on how many workers ran. A failing run is recorded and the study goes on;
runs that load its encoder are skipped with an error that names it.

The *seconds* do depend on how many runs shared the cores, so every invocation appends
its workers, CPUs and load average to ``execution.json``; the report turns that into a
caveat on its time figures (``--workers 1`` gives clean timings).
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rich.console import Console

from fusebench.config import ConfigError, validate_config
from fusebench.engine.run_folder import RunState, ensure_directory, locked, recorded_state, write_status
from fusebench.io import atomic_write_json, atomic_write_text, read_json
from fusebench.processes import die_with_parent
from fusebench.study.graph import PLAN_FILE, StudyGraph, blocked_by, build_graph, write_plan
from fusebench.study.results import EXECUTION_FILE, write_results
from fusebench.study.spec import dump_spec, load_spec

Backend = Literal["local", "ray"]
OnDone = Callable[["NodeOutcome"], None]


@dataclass(frozen=True)
class NodeOutcome:
    """How one node ended: ``completed``, ``failed`` or ``skipped``, with seconds and error."""

    node: str
    status: Literal[RunState.COMPLETED, RunState.FAILED, RunState.SKIPPED]
    seconds: float = 0.0
    error: str | None = None


def execute_node(node_id: str, config: dict[str, Any], run_dir: str, command: Sequence[str] = ()) -> NodeOutcome:
    """Run one node (in whichever process or Ray worker); never raises for a failed run.

    ``execute_run`` has already written the error into the run's ``status.json``; the study
    only needs to know that it failed, so one crash does not end the others.
    """
    from fusebench.engine.run import execute_run

    start = time.perf_counter()
    try:
        execute_run(validate_config(config, f"node `{node_id}`"), run_dir, command=list(command))
    except Exception as error:  # noqa: BLE001 - recorded, and the study goes on
        return NodeOutcome(node_id, RunState.FAILED, time.perf_counter() - start, f"{type(error).__name__}: {error}")
    except SystemExit as error:  # Lightning turns Ctrl-C during fit into `sys.exit(1)`: the user asked to stop
        raise KeyboardInterrupt from error
    return NodeOutcome(node_id, RunState.COMPLETED, time.perf_counter() - start)


def skipped(node_id: str, dependency: str) -> NodeOutcome:
    return NodeOutcome(
        node_id, RunState.SKIPPED, 0.0, f"Skipped: it loads the encoder of `{dependency}`, which did not complete."
    )


def crashed(graph: StudyGraph, node_id: str, error: str) -> NodeOutcome:
    """A node whose process died before ``execute_run`` could say so: record it in its folder.

    A run that had already written ``completed`` keeps it (its process died afterwards).
    """
    run_dir = graph.run_dir(node_id)
    if recorded_state(run_dir) == RunState.COMPLETED:
        return NodeOutcome(node_id, RunState.COMPLETED, 0.0)
    write_status(run_dir, RunState.FAILED, error=error)
    return NodeOutcome(node_id, RunState.FAILED, 0.0, error)


def interrupted(graph: StudyGraph, node_ids: Sequence[str]) -> None:
    """Mark the runs that were in flight when the study stopped (their workers are dead by now)."""
    for node_id in node_ids:
        run_dir = graph.run_dir(node_id)
        if run_dir.is_dir() and recorded_state(run_dir) == RunState.RUNNING:
            write_status(
                run_dir, RunState.INTERRUPTED, error="Interrupted: the study was stopped while this run trained."
            )


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


def _payload(graph: StudyGraph, node_id: str) -> tuple[str, dict[str, Any], str, list[str]]:
    return node_id, graph.nodes[node_id].config.model_dump(mode="json"), str(graph.run_dir(node_id)), list(sys.argv)


def run_in_process(graph: StudyGraph, todo: Sequence[str], done: dict[str, RunState], on_done: OnDone) -> None:
    """One node after another in this process (``--workers 1``): same numbers, simpler to debug."""
    for node_id in todo:
        dependency = blocked_by(graph, node_id, done)
        on_done(skipped(node_id, dependency) if dependency else execute_node(*_payload(graph, node_id)))


def run_pool(graph: StudyGraph, todo: Sequence[str], done: dict[str, RunState], on_done: OnDone, workers: int) -> None:
    """A spawn-started process pool fed as nodes become ready (not wave by wave).

    At most ``workers`` nodes are in flight, picked in graph order, so each seed's
    pre-training runs first and a free worker always takes the earliest ready node.
    """
    pending = list(todo)
    running: dict[Future[NodeOutcome], str] = {}
    pool = _pool(workers)
    try:
        while pending or running:
            for node_id in list(pending):
                dependency = blocked_by(graph, node_id, done)
                if dependency:
                    pending.remove(node_id)
                    on_done(skipped(node_id, dependency))
            ready = [n for n in pending if all(done.get(d) == RunState.COMPLETED for d in graph.nodes[n].depends_on)]
            for node_id in ready[: workers - len(running)]:
                pending.remove(node_id)
                running[pool.submit(execute_node, *_payload(graph, node_id))] = node_id
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            broken = False
            for future in finished:
                node_id = running.pop(future)
                try:
                    outcome = future.result()
                except BrokenProcessPool:
                    broken = True
                    outcome = crashed(
                        graph,
                        node_id,
                        "BrokenProcessPool: the worker process running this "
                        "node died (killed, out of memory, or a crash in native code).",
                    )
                on_done(outcome)
            if broken:  # every other run in flight died with the pool; record them and start a fresh pool
                for future, node_id in list(running.items()):
                    running.pop(future)
                    on_done(
                        crashed(
                            graph,
                            node_id,
                            "BrokenProcessPool: another worker process died while this "
                            "node ran; rerun with `--resume`.",
                        )
                    )
                pool.shutdown(wait=False, cancel_futures=True)
                pool = _pool(workers)
    except BaseException:  # Ctrl-C, SIGTERM: stop the runs in flight now; they rerun on --resume
        _kill_workers(pool)
        interrupted(graph, list(running.values()))
        raise
    finally:
        pool.shutdown(wait=not running, cancel_futures=True)


def _kill_workers(pool: ProcessPoolExecutor) -> None:
    """SIGKILL the pool's processes: Lightning turns SIGTERM and SIGINT into a graceful stop, which would
    finish the epoch (minutes) after the user asked to stop."""
    processes = list((getattr(pool, "_processes", None) or {}).values())  # no public API before Python 3.14
    for process in processes:
        process.kill()
    for process in processes:
        process.join(timeout=10)


def _pool(workers: int) -> ProcessPoolExecutor:
    # spawn: a fork of a process that already runs torch threads can deadlock.
    # die_with_parent: a worker must not outlive a killed study (kill -9 leaves no chance to clean up).
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=die_with_parent,
        initargs=(os.getpid(),),
    )
