"""A run folder's life: one writer at a time, and a status that never passes a broken run for a finished one.

``status.json`` holds the *training* state (``running``, ``completed``, ``failed``,
``interrupted``); ``evaluation.json`` holds the state of the last re-evaluation
(``fusebench evaluate``, ``--skip-train``), kept apart so that evaluating a run can
neither finish an unfinished training nor fail a finished one.

Whoever writes into a run folder holds an exclusive ``fcntl`` lock on its (empty) ``.lock``
file for as long as it writes. The kernel drops the lock when the process ends, however it
ends, so a free lock on a folder whose status says ``running`` means the process died:
:func:`live_state` reports that as ``interrupted``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fusebench.errors import RunFolderError
from fusebench.io import atomic_write_json, read_json

if TYPE_CHECKING:
    from fusebench.config import RunConfig

LOCK_FILE = ".lock"
STATUS_FILE = "status.json"
EVALUATION_FILE = "evaluation.json"

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no locking, the states are still written
    fcntl = None  # type: ignore[assignment]


class RunState(str, Enum):
    """Where a run stands, in its folder (``status.json``) and in a study's records.

    A ``str`` enum: ``RunState.COMPLETED == "completed"``, and it is written to JSON as its value.

    >>> RunState("failed") is RunState.FAILED, RunState.COMPLETED == "completed"
    (True, True)
    """

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    SKIPPED = "skipped"  # a study node whose pre-training dependency did not complete
    PENDING = "pending"  # a study node that has not run yet
    MISSING = "missing"  # no run folder
    STALE = "stale"  # completed with another config or other data than the study's now
    UNREADABLE = "unreadable"  # a status.json that is not a status
    FOLLOWER = "follower"  # a DDP process of rank > 0: the global rank 0 process records the run

    def __str__(self) -> str:
        return self.value


def check_folder_name(value: str, key: str) -> str:
    """``value`` if it names one folder (no path separator, not ``.`` or ``..``), else an error naming ``key``.

    A run id or experiment name with ``/`` or ``..`` would write outside the runs folder.

    Raises:
        RunFolderError: ``value`` is empty, holds ``/``, ``\\`` or NUL, or is ``.``/``..``.
    """
    if not value.strip() or value in (".", "..") or any(c in value for c in "/\\\0"):
        raise RunFolderError(
            f"Expected `{key}` to be one folder name (no `/`, `\\`, and not `.` or `..`), got `{value}`."
        )
    return value


def run_directory(config: RunConfig, run_id: str | None = None) -> Path:
    """``runs_dir/<experiment.name>/<run id>``; the default id is a timestamp, made unique."""
    experiment = Path(config.experiment.runs_dir) / check_folder_name(config.experiment.name, "experiment.name")
    if run_id is not None:
        return experiment / check_folder_name(run_id, "--run-id")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder, number = experiment / stamp, 1
    while folder.exists():
        number += 1
        folder = experiment / f"{stamp}-{number}"
    return folder


def ensure_directory(folder: Path, key: str) -> Path:
    """Create ``folder`` (and its parents), or say in one sentence why it cannot be written.

    Raises:
        RunFolderError: a path component is a file, or the folder is not writable.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise RunFolderError(
            f"`{key}` needs `{folder}` to be a folder, but it (or a folder above it) is a file."
        ) from None
    except OSError as error:
        raise RunFolderError(f"Cannot create `{folder}` for `{key}`: {error.strerror or error}.") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise RunFolderError(f"`{key}` is `{folder}`, which is not writable by this user.")
    return folder


def is_locked(folder: Path) -> bool:
    """Whether a live process holds ``folder``'s lock (the lock file is only read, never changed)."""
    lock = folder / LOCK_FILE
    if fcntl is None or not lock.is_file():
        return False
    try:
        fd = os.open(lock, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also drops the shared lock taken just to look
    return False


def _holder_pid(folder: Path) -> str:
    """The pid the holder wrote into its status (the lock file stays empty, so taking it changes no byte)."""
    for name in (EVALUATION_FILE, STATUS_FILE):
        try:
            status = read_json(folder / name)
        except (OSError, ValueError):
            continue
        if isinstance(status, dict) and status.get("state") == RunState.RUNNING and status.get("pid"):
            return str(status["pid"])
    return "unknown"


@contextlib.contextmanager
def locked(folder: Path, key: str = "run folder") -> Iterator[None]:
    """Hold ``folder``'s exclusive lock while the block runs; another holder is an error naming its pid.

    Raises:
        RunFolderError: the folder cannot be created, or another process holds it.
    """
    ensure_directory(folder, key)
    if fcntl is None:  # pragma: no cover
        yield
        return
    fd = os.open(folder / LOCK_FILE, os.O_RDONLY | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunFolderError(
                f"`{folder}` is in use by another fusebench process (pid {_holder_pid(folder)}); wait for it to "
                "finish, or write somewhere else (another `--run-id`, study `--root`)."
            ) from None
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock (and so does the process dying)


def write_status(run_dir: Path, state: RunState | str, **extra: Any) -> None:
    """The training state of ``run_dir`` (``status.json``), written atomically, with the writer's pid."""
    record = {"state": RunState(state).value, "time": time.time(), "pid": os.getpid(), **extra}
    atomic_write_json(run_dir / STATUS_FILE, record)


def write_evaluation(run_dir: Path, state: RunState | str, **extra: Any) -> None:
    """The state of the last re-evaluation of ``run_dir`` (``evaluation.json``)."""
    record = {"state": RunState(state).value, "time": time.time(), "pid": os.getpid(), **extra}
    atomic_write_json(run_dir / EVALUATION_FILE, record)


def recorded_state(run_dir: Path) -> RunState:
    """``status.json``'s state as written, ``missing`` without one, ``unreadable`` if it is not a status."""
    file = run_dir / STATUS_FILE
    if not file.is_file():
        return RunState.MISSING
    try:
        status = read_json(file)
    except ValueError:
        return RunState.UNREADABLE
    state = status.get("state") if isinstance(status, dict) else None
    known = {s.value for s in RunState}
    return RunState(state) if isinstance(state, str) and state in known else RunState.UNREADABLE


def live_state(run_dir: Path) -> RunState:
    """Like :func:`recorded_state`, but a ``running`` run whose lock is free (its process died) is
    ``interrupted``."""
    state = recorded_state(run_dir)
    if state is RunState.RUNNING and not is_locked(run_dir):
        return RunState.INTERRUPTED
    return state


def prepare_for_training(run_dir: Path, overwrite: bool) -> None:
    """Make sure a new training never mixes its files with an older run's (hold the lock first).

    An empty folder is used as it is. A folder that holds anything else is refused — whatever
    its state, since mixing a new ``config.yaml`` with old checkpoints is how results lie —
    unless ``overwrite``, which deletes its contents first.

    Raises:
        RunFolderError: the folder holds an earlier run and ``overwrite`` is false.
    """
    contents = [p for p in run_dir.iterdir() if p.name != LOCK_FILE]
    if not contents:
        return
    if not overwrite:
        state = recorded_state(run_dir)
        state = RunState.INTERRUPTED if state is RunState.RUNNING else state  # we hold the lock: its writer is gone
        article = "an" if state[0] in "aeiou" else "a"
        unknown = state in (RunState.MISSING, RunState.UNREADABLE)
        what = "files of an earlier run" if unknown else f"{article} {state} run"
        hint = " (re-test it with `fusebench evaluate`)" if state == RunState.COMPLETED else ""
        raise RunFolderError(
            f"Run folder `{run_dir}` already holds {what}{hint}; pass `--overwrite` to delete it and train "
            "again, or choose another `--run-id`."
        )
    for path in contents:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def require_completed_training(run_dir: Path) -> None:
    """Evaluation needs a finished training; say which state the run is in otherwise.

    Raises:
        RunFolderError: the run's training did not complete.
    """
    state = live_state(run_dir)
    if state == RunState.COMPLETED:
        return
    if state == RunState.MISSING:
        detail = (
            f"`{run_dir / STATUS_FILE}` does not exist (is it a run folder written by `fusebench train` or `pretrain`?)"
        )
    else:
        detail = f"its training is `{state}` (see `{run_dir / STATUS_FILE}`); train it again with `--overwrite`"
    raise RunFolderError(
        f"Cannot evaluate `{run_dir}`: only a run whose training completed can be evaluated, and {detail}."
    )
