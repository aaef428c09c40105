"""What every benchmark row shares: paired interleaved (ABBA) rounds, medians, the machine, child processes.

A shared machine's load drifts within minutes, so two things measured minutes apart are
not comparable. Each round measures A, B, B, A back to back and keeps the ratio of the
round's B mean to its A mean; the row reports the median ratio over the rounds and its
range. The load averages before and after go into the results beside the numbers.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Sample:
    """One measurement: this process's CPU seconds (all threads) and wall seconds, or any other quantity."""

    cpu: float
    wall: float

    def __add__(self, other: Sample) -> Sample:
        return Sample(self.cpu + other.cpu, self.wall + other.wall)

    def half(self) -> Sample:
        return Sample(self.cpu / 2, self.wall / 2)


def timed(fn: Callable[[], object]) -> Sample:
    """CPU and wall seconds of ``fn()`` in this process."""
    cpu, wall = time.process_time(), time.perf_counter()
    fn()
    return Sample(time.process_time() - cpu, time.perf_counter() - wall)


@dataclass
class Paired:
    """ABBA rounds of two measurements: per-round means and their ratios B / A.

    ``ratio`` is on CPU seconds: on a machine shared with other work, wall seconds include the
    time a process waited for a core, CPU seconds only the work it did (with one thread per
    process the two agree on a quiet machine). ``wall_ratio`` is beside it.
    """

    a: list[Sample] = field(default_factory=list)
    b: list[Sample] = field(default_factory=list)

    @property
    def ratios(self) -> list[float]:
        return [b.cpu / a.cpu for a, b in zip(self.a, self.b, strict=True)]

    @property
    def wall_ratios(self) -> list[float]:
        return [b.wall / a.wall for a, b in zip(self.a, self.b, strict=True)]

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios)

    @property
    def median_a(self) -> float:
        return statistics.median(s.cpu for s in self.a)

    @property
    def median_b(self) -> float:
        return statistics.median(s.cpu for s in self.b)

    def summary(self) -> dict[str, Any]:
        return {
            "ratio_median": self.ratio,
            "ratio_min": min(self.ratios),
            "ratio_max": max(self.ratios),
            "wall_ratio_median": statistics.median(self.wall_ratios),
            "a_cpu": [s.cpu for s in self.a],
            "b_cpu": [s.cpu for s in self.b],
            "a_wall": [s.wall for s in self.a],
            "b_wall": [s.wall for s in self.b],
            "rounds": len(self.a),
        }


def abba(measure_a: Callable[[], Sample], measure_b: Callable[[], Sample], rounds: int, warmup: bool = True) -> Paired:
    """``rounds`` rounds of A, B, B, A; after one unrecorded A and B when ``warmup``."""
    if warmup:
        measure_a()
        measure_b()
    paired = Paired()
    for _ in range(rounds):
        a1, b1 = measure_a(), measure_b()
        b2, a2 = measure_b(), measure_a()
        paired.a.append((a1 + a2).half())
        paired.b.append((b1 + b2).half())
    return paired


def load_average() -> list[float] | None:
    return [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None


def machine() -> dict[str, Any]:
    """CPU model, cores, memory, OS, library versions and the load right now."""
    import lightning
    import torch

    cpu = platform.processor() or platform.machine()
    info = Path("/proc/cpuinfo")
    if info.is_file():
        names = [
            line.split(":", 1)[1].strip() for line in info.read_text().splitlines() if line.startswith("model name")
        ]
        cpu = names[0] if names else cpu
    memory = None
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        total = next((line for line in meminfo.read_text().splitlines() if line.startswith("MemTotal")), "")
        memory = round(int(total.split()[1]) / 2**20, 1) if total else None
    affinity = getattr(os, "sched_getaffinity", None)
    return {
        "cpu": cpu,
        "cores": len(affinity(0)) if affinity else os.cpu_count(),
        "memory_gib": memory,
        "os": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "load_average_at_start": load_average(),
    }


def child(
    args: Sequence[str], env: dict[str, str] | None = None, timeout: float = 3600, keep_stderr: bool = False
) -> dict[str, Any]:
    """Run ``python args...`` in a fresh process that prints one JSON object last; return it.

    With ``keep_stderr`` the child's stderr lines come back too, under ``stderr``.
    """
    environment = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""),
        **(env or {}),
    }
    done = subprocess.run(
        [sys.executable, *args], env=environment, capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )
    if done.returncode != 0:
        raise RuntimeError(f"Benchmark child `{' '.join(args)}` failed ({done.returncode}):\n{done.stderr[-4000:]}")
    result = dict(json.loads(done.stdout.strip().splitlines()[-1]))
    if keep_stderr:
        result["stderr"] = done.stderr.splitlines()
    return result


def rss_bytes() -> int | None:
    """This process's resident set now (VmRSS) in bytes (Linux), else None."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return None


def peak_rss_bytes() -> int:
    """This process's peak resident set (VmHWM) in bytes (Linux), else ``ru_maxrss``."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024


class Stopwatch:
    """``with Stopwatch() as s: ...`` then ``s.seconds``."""

    def __enter__(self) -> Stopwatch:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start
