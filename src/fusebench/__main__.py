"""``python -m fusebench`` and the ``fusebench`` command: the CLI, stoppable cleanly from the first instant.

The CLI module imports torch, which takes seconds; a Ctrl-C or SIGTERM in that time would
print a traceback (or end silently with SIGTERM's default action). Installing the
handlers here, before the import, gives every stop the same one line and exit code 130.
"""

from __future__ import annotations

import signal
import sys
from types import FrameType


def _stop(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main() -> None:
    signal.signal(signal.SIGTERM, _stop)
    try:
        from fusebench.cli import app

        app()
    except KeyboardInterrupt:  # only before a command runs: commands report their own interruption
        print("interrupted.", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
