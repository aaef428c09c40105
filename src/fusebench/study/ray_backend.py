"""The Ray executor: one remote task per node, dependencies passed as ObjectRefs.

Ray starts a node's task only when the tasks whose ObjectRefs it receives have finished,
so the run graph maps onto Ray directly: a fusion task receives its pre-training tasks'
outcomes and skips itself if one did not complete. Each task asks for
``threads_per_run`` CPUs, the same threads a local run uses, so the numbers match the
local executor's exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fusebench.config import ConfigError
from fusebench.study.execute import NodeOutcome, OnDone, crashed, execute_node, skipped
from fusebench.study.graph import StudyGraph, blocked_by


def import_ray() -> Any:
    """``ray``, or an error that says how to install it."""
    try:
        import ray
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            'The Ray backend needs the `ray` package: `pip install "fusebench[ray]"`, or use `--backend local`.'
        ) from None
    return ray


def ray_node(node_id: str, config: dict[str, Any], run_dir: str, command: Sequence[str],
             *upstream: NodeOutcome) -> NodeOutcome:
    """Body of the remote task: skip if an upstream node did not complete, else run."""
    for outcome in upstream:
        if outcome.status != "completed":
            return skipped(node_id, outcome.node)
    return execute_node(node_id, config, run_dir, command)


def run_ray(graph: StudyGraph, todo: Sequence[str], done: dict[str, str], on_done: OnDone, *, workers: int,
            address: str | None) -> None:
    """Submit every node in ``todo`` to Ray at once and report each as it finishes.

    Connects to ``address`` (``"auto"`` or ``"host:port"``), or starts a local instance with
    ``workers * threads_per_run`` CPUs when ``address`` is ``None``. An instance that is
    already initialised in this process (as in tests) is used as it is and left running.
    """
    import sys

    ray = import_ray()
    threads = graph.study.spec.threads_per_run
    started = not ray.is_initialized()
    if started:
        extra = {"num_cpus": workers * threads} if address is None else {}
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, **extra)
        except ConnectionError as error:
            raise ConfigError(f"Could not connect to the Ray cluster at `--address {address}` ({error}); start one "
                              "with `ray start --head`, or leave out `--address` for a local instance.") from None
    task = ray.remote(num_cpus=threads, max_retries=0)(ray_node)
    refs: dict[str, Any] = {}
    try:
        for node_id in todo:
            node = graph.nodes[node_id]
            upstream = [refs[d] for d in node.depends_on if d in refs]
            config = node.config.model_dump(mode="json")
            refs[node_id] = task.remote(node_id, config, str(graph.run_dir(node_id)), list(sys.argv), *upstream)
        remaining = {ref: node_id for node_id, ref in refs.items()}
        while remaining:
            finished, _ = ray.wait(list(remaining), num_returns=1)
            for ref in finished:
                node_id = remaining.pop(ref)
                try:
                    outcome = ray.get(ref)
                except ray.exceptions.RayError as error:  # the worker died, or an upstream task did
                    dependency = blocked_by(graph, node_id, done)
                    outcome = skipped(node_id, dependency) if dependency else crashed(
                        graph, node_id, f"{type(error).__name__}: the Ray task running this node died ({error}).")
                on_done(outcome)
    except KeyboardInterrupt:
        for ref in refs.values():
            ray.cancel(ref, force=True)
        raise
    finally:
        if started:
            ray.shutdown()
