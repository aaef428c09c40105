"""Process hygiene: SIGTERM stops like Ctrl-C, and worker processes never outlive the study that started them.

A study's pool workers each hold hundreds of megabytes and write into the study folder;
if the study process is killed (``kill -9``, out-of-memory killer, a closed terminal)
they must not live on. On Linux each worker asks the kernel for ``SIGKILL`` when its
parent dies (``prctl(PR_SET_PDEATHSIG)``); everywhere, a watchdog thread also checks
once a second that the parent is still there, and ends the worker if not.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from types import FrameType

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
WATCHDOG_SECONDS = 1.0


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While the block runs, SIGTERM raises ``KeyboardInterrupt``, so ``kill`` stops a run as cleanly as Ctrl-C.

    Only the main thread can set signal handlers; elsewhere (e.g. inside a test runner's
    thread) the block runs unchanged.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _set_parent_death_signal() -> bool:
    """Ask Linux to SIGKILL this process when its parent exits; False where that is not available."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return bool(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def _watch_parent(parent: int) -> None:
    while True:
        if os.getppid() != parent:  # re-parented: the parent is gone
            os._exit(1)
        time.sleep(WATCHDOG_SECONDS)


def die_with_parent(parent: int) -> None:
    """Make this (worker) process end when process ``parent`` ends; call it first thing in the worker.

    Also ignores SIGINT: Ctrl-C reaches the whole terminal process group, and the parent
    decides how its workers stop (it kills them and records their runs as interrupted).

    Args:
        parent: the pid of the process that started this one (``os.getpid()`` there).
    """
    _set_parent_death_signal()
    if os.getppid() != parent:  # the parent died before the death signal was armed
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent,), name="fusebench-parent-watchdog", daemon=True).start()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
