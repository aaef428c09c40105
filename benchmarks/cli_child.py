"""A ``fusebench`` command in a fresh process, timed from the interpreter's first line to the first training step.

    python benchmarks/cli_child.py train configs/avdigits/demo.yaml training.epochs=1 ...

Prints one JSON line: wall and CPU seconds to the first training step (``FusionModule.training_step``
entered for the first time), seconds to the end, the process's peak resident memory, and
the resident memory right after the imports a training command needs.
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()
STARTED_CPU = time.process_time()

import json  # noqa: E402 - after the clock starts
import sys  # noqa: E402

from harness import peak_rss_bytes, rss_bytes  # noqa: E402


def main(args: list[str]) -> dict[str, float | int | None]:
    from fusebench.cli import app

    marks: dict[str, float | int | None] = {}
    if args and args[0] in ("train", "pretrain"):
        from fusebench.engine import module

        marks["rss_after_imports"] = rss_bytes()
        original = module.FusionModule.training_step

        def first_step(self: module.FusionModule, batch: object, batch_idx: int) -> object:
            if "first_step_seconds" not in marks:
                marks["first_step_seconds"] = time.perf_counter() - STARTED
                marks["first_step_cpu_seconds"] = time.process_time() - STARTED_CPU
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
