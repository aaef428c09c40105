"""One study node: run it and say how it ended (``completed``, ``failed``, ``skipped``).

Shared by both executors (:mod:`fusebench.study.local_pool` and
:mod:`fusebench.study.ray_backend`), which is why it is separate from either:
:func:`execute_node` runs the node's resolved config with a fixed thread count and the
config's seed, so the numbers do not depend on the executor, and the helpers here record
a skipped, crashed or interrupted node the same way whichever executor saw it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from fusebench.config import validate_config
from fusebench.engine.run_folder import RunState, recorded_state, write_status
from fusebench.study.graph import StudyGraph

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
    """The outcome of a node not run because a pre-training node it loads from did not complete."""
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
