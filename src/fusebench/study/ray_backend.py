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
from fusebench.engine.run_folder import RunState
from fusebench.study.graph import StudyGraph, blocked_by
from fusebench.study.node_run import NodeOutcome, OnDone, crashed, execute_node, interrupted, skipped


def import_ray() -> Any:
    """``ray``, or an error that says how to install it."""
    try:
        import ray
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            'The Ray backend needs the `ray` package: `pip install "fusebench[ray]"`, or use `--backend local`.'
        ) from None
    return ray


CONNECT_SECONDS = 5.0


def check_reachable(address: str, timeout: float = CONNECT_SECONDS) -> None:
    """Fail within ``timeout`` seconds if nothing listens at a Ray ``address``.

    ``ray.init`` retries an unreachable address for minutes; a plain TCP connection to the
    cluster's head answers in milliseconds (refused) or within ``timeout`` (no route).
    ``"auto"`` is resolved the way Ray resolves it (``RAY_ADDRESS``, then the last
    ``ray start`` on this machine).

    Raises:
        ConfigError: the address is malformed, cannot be resolved, or does not answer.
    """
    import socket

    target = address.removeprefix("ray://")
    if address == "auto":
        try:
            from ray._private.services import canonicalize_bootstrap_address
        except ImportError:  # a Ray without this helper: let ray.init resolve it
            return
        try:
            target = canonicalize_bootstrap_address("auto") or ""
        except (ConnectionError, ValueError) as error:
            raise ConfigError(
                f"`--address auto` found no running Ray cluster ({error}); start one with "
                "`ray start --head`, or leave out `--address` for a local instance."
            ) from None
        if not target:
            raise ConfigError(
                "`--address auto` found no running Ray cluster; start one with `ray start --head`, "
                "or leave out `--address` for a local instance."
            )
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"Expected `--address` as `auto`, `host:port` or `ray://host:port`, got `{address}`.")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as error:
        reason = f"no answer within {timeout:g} s" if isinstance(error, TimeoutError) else (error.strerror or error)
        raise ConfigError(
            f"Could not reach the Ray cluster at `--address {address}` ({host}:{port}: {reason}); "
            "start one with `ray start --head`, check the address, or leave out `--address` for a "
            "local instance."
        ) from None


def ray_node(
    node_id: str, config: dict[str, Any], run_dir: str, command: Sequence[str], *upstream: NodeOutcome
) -> NodeOutcome:
    """Body of the remote task: skip if an upstream node did not complete, else run."""
    for outcome in upstream:
        if outcome.status is not RunState.COMPLETED:
            return skipped(node_id, outcome.node)
    return execute_node(node_id, config, run_dir, command)


def run_ray(
    graph: StudyGraph,
    todo: Sequence[str],
    done: dict[str, RunState],
    on_done: OnDone,
    *,
    workers: int,
    address: str | None,
) -> None:
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
        if address is not None:
            check_reachable(address)
        extra = {"num_cpus": workers * threads} if address is None else {}
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, **extra)
        except ConnectionError as error:
            raise ConfigError(
                f"Could not connect to the Ray cluster at `--address {address}` ({error}); start one "
                "with `ray start --head`, or leave out `--address` for a local instance."
            ) from None
    task = ray.remote(num_cpus=threads, max_retries=0)(ray_node)
    refs: dict[str, Any] = {}
    remaining: dict[Any, str] = {}
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
                    outcome = (
                        skipped(node_id, dependency)
                        if dependency
                        else crashed(
                            graph, node_id, f"{type(error).__name__}: the Ray task running this node died ({error})."
                        )
                    )
                on_done(outcome)
    except KeyboardInterrupt:
        for ref in refs.values():
            ray.cancel(ref, force=True)
        interrupted(graph, list(remaining.values()))
        raise
    finally:
        if started:
            ray.shutdown()
