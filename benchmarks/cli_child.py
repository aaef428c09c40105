"""A ``fusebench`` command in a fresh process, timed from the interpreter's first line to the first training step.

    python benchmarks/cli_child.py train configs/avdigits/demo.yaml training.epochs=1 ...

Prints one JSON line: seconds to the first training step (``FusionModule.training_step``
entered for the first time), seconds to the end, the process's peak resident memory, and
the resident memory right after the imports a training command needs.
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import json  # noqa: E402 - after the clock starts
import sys  # noqa: E402

from harness import peak_rss_bytes  # noqa: E402


def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def main(args: list[str]) -> dict[str, float | int | None]:
    from fusebench.cli import app

    marks: dict[str, float | int | None] = {}
    if args and args[0] in ("train", "pretrain"):
        from fusebench.engine import module

        marks["rss_after_imports"] = _rss_bytes()
        original = module.FusionModule.training_step

        def first_step(self: module.FusionModule, batch: object, batch_idx: int) -> object:
            marks.setdefault("first_step_seconds", time.perf_counter() - STARTED)
            return original(self, batch, batch_idx)  # type: ignore[arg-type]

        module.FusionModule.training_step = first_step  # type: ignore[method-assign]
    try:
        app(args)
    except SystemExit as done:
        if done.code not in (0, None):
            raise
    marks["total_seconds"] = time.perf_counter() - STARTED
    marks["peak_rss_bytes"] = peak_rss_bytes()
    return marks


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
