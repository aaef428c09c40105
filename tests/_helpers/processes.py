"""Process helpers for the process-hygiene and fault tests: find a test's processes, wait for them to end."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

#: The environment variable that marks every process a test starts (children inherit it).
MARKER = "FUSEBENCH_TEST_MARKER"


def as_from_a_terminal() -> None:
    """``preexec_fn`` for a command a test interrupts: SIGINT at its default, as in a terminal.

    A child inherits an ignored SIGINT, and Python then installs no KeyboardInterrupt handler;
    a pytest worker may ignore SIGINT after an earlier test (Lightning ignores it while it
    shuts down after Ctrl-C, pool workers ignore it), so without this Ctrl-C would do nothing.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def record_pid_and_sleep(path: str, seconds: float) -> None:
    """A pool task: write this worker's pid to ``path``, then stay busy (as a long training would)."""
    Path(path).write_text(str(os.getpid()))
    time.sleep(seconds)


def marked_processes(marker: str) -> list[int]:
    """Pids of live (non-zombie) processes whose environment holds ``MARKER=marker``."""
    found = []
    needle = f"{MARKER}={marker}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if state != "Z":
            found.append(int(entry.name))
    return found


def wait_until_gone(marker: str, patience: float = 30.0) -> list[int]:
    """Poll until no marked process is left (or ``patience`` seconds pass); the survivors."""
    deadline = time.monotonic() + patience
    while True:
        alive = marked_processes(marker)
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.2)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def kill_marked(marker: str) -> None:
    """SIGKILL what a failed test left behind (only processes carrying this test's own marker)."""
    import signal

    for pid in marked_processes(marker):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
