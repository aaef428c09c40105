"""One run, start to finish: data, model, Lightning fit, all-pattern test, and the run directory.

The steps themselves live in :mod:`fusebench.engine.run_steps`; this module holds the run
folder's lock and state around them.

Every result file is written atomically as soon as it exists (epoch metrics after each
epoch), and ``status.json`` says whether the run is running, completed or failed — with
the error — so a crashed or killed run never passes for a finished one.
"""

from __future__ import annotations

import traceback
from collections.abc import Sequence
from pathlib import Path

from fusebench.config import RunConfig
from fusebench.engine import run_steps
from fusebench.engine.checkpoint import load_model_state
from fusebench.engine.datasets import DataSplits
from fusebench.engine.module import FusionModule
from fusebench.engine.run_folder import (
    RunState,
    locked,
    prepare_for_training,
    require_completed_training,
    write_evaluation,
    write_status,
)
from fusebench.engine.run_result import RunResult
from fusebench.engine.scale import is_follower

__all__ = ["RunResult", "execute_run", "load_lightning_weights"]


def execute_run(
    config: RunConfig,
    run_dir: str | Path,
    *,
    skip_train: bool = False,
    skip_test: bool = False,
    command: Sequence[str] | None = None,
    data: DataSplits | None = None,
    overwrite: bool = False,
) -> RunResult:
    """Train (or with ``skip_train`` re-evaluate) ``config`` in ``run_dir``, holding the folder's lock.

    Training refuses a folder that already holds a run unless ``overwrite`` (which clears it
    first), and records its state in ``status.json``: ``completed``, ``failed`` with the error,
    or ``interrupted`` (Ctrl-C, SIGTERM). Re-evaluation needs a completed training and records
    its own state in ``evaluation.json``; it never changes ``status.json``.

    Raises:
        RunFolderError: the folder is in use, holds a run (without ``overwrite``), or — for
            re-evaluation — its training did not complete.
        KeyboardInterrupt: the run was interrupted (also for SIGTERM and Lightning's exit on Ctrl-C).
    """
    run_dir = Path(run_dir)
    if is_follower() and not skip_train:  # a DDP process of rank > 0: global rank 0 owns the folder
        from fusebench.engine.follower import follow_run

        follow_run(config, run_dir, data)
        return RunResult(run_dir, RunState.FOLLOWER)
    if skip_train:  # before the lock, which would create the folder
        require_completed_training(run_dir)
    with locked(run_dir, "experiment.runs_dir"):
        if skip_train:
            require_completed_training(run_dir)
            record = write_evaluation
        else:
            prepare_for_training(run_dir, overwrite)
            record = write_status
        record(run_dir, RunState.RUNNING)
        try:
            result = _execute(config, run_dir, skip_train, skip_test, command, data)
        except (KeyboardInterrupt, SystemExit) as error:  # Lightning turns Ctrl-C into `sys.exit(1)`
            record(run_dir, RunState.INTERRUPTED, error="Interrupted (Ctrl-C or SIGTERM) before it finished.")
            raise KeyboardInterrupt from error
        except BaseException as error:
            record(run_dir, RunState.FAILED, error=f"{type(error).__name__}: {error}", traceback=traceback.format_exc())
            raise
        record(run_dir, RunState.COMPLETED)
    return result


def _execute(
    config: RunConfig,
    run_dir: Path,
    skip_train: bool,
    skip_test: bool,
    command: Sequence[str] | None,
    data: DataSplits | None,
) -> RunResult:
    """The run's five steps (``engine.run_steps``): data -> build -> fit -> export -> test (``final_test``)."""
    prepared = run_steps.prepare_data(config, run_dir, skip_train, skip_test, command, data)
    built = run_steps.build(prepared)
    fitted = run_steps.fit(prepared, built)
    run_steps.export(prepared, built, fitted)
    return run_steps.final_test(prepared, built, fitted)


def load_lightning_weights(module: FusionModule, path: Path) -> None:
    """Load model weights from our own Lightning checkpoint, without unpickling arbitrary objects."""
    load_model_state(module.model, path)
