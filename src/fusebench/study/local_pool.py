"""The local executors: one node after another in this process, or a spawn-started process pool.

Separate from :mod:`fusebench.study.execute` (which plans the study, records the session
and rewrites the results) because this is only the scheduling of ready nodes onto local
workers and what happens when a worker dies or the user stops the study; the Ray
executor (:mod:`fusebench.study.ray_backend`) does the same job on a cluster.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from fusebench.engine.run_folder import RunState
from fusebench.processes import die_with_parent
from fusebench.study.graph import StudyGraph, blocked_by
from fusebench.study.node_run import NodeOutcome, OnDone, crashed, execute_node, interrupted, skipped


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
