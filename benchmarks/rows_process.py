"""Rows measured in fresh processes: peak resident memory against the bare process, start-up, imports.

Each measurement is a child process (``harness.child``), so one row's memory or imports
cannot leak into the next. Pairs are interleaved ABBA like the in-process rows.
"""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness import ROOT, child

BENCH = ROOT / "benchmarks"
DEMO = str(ROOT / "configs" / "avdigits" / "demo.yaml")
DEFAULT = str(ROOT / "configs" / "avdigits" / "late_fusion.yaml")


def _limits(config_path: str, overrides: list[str]) -> tuple[Any, dict[str, int]]:
    from fusebench.config import load_config
    from fusebench.data.avdigits import prepare_avdigits
    from fusebench.data.avdigits_cache import cache_folder

    config = load_config(config_path, overrides)
    prepare_avdigits(config.data.recipe, config.data.root, config.data.cache_dir)
    return config, {
        "cache": str(cache_folder(config.data.recipe, config.data.cache_dir)),
        "limit": dict(config.data.limit),
    }


def train_command(config_path: str, overrides: list[str], runs: str) -> list[str]:
    return [
        str(BENCH / "cli_child.py"),
        "train",
        config_path,
        "--run-id",
        f"r{time.perf_counter_ns()}",
        f"experiment.runs_dir={runs}",
        "logging.progress_bar=false",
        *overrides,
    ]


def memory_row(config_path: str, overrides: list[str], rounds: int) -> dict[str, Any]:
    """Peak RSS of ``fusebench train`` (1 epoch) over the bare process's on the same data and settings.

    Child processes in ABBA order (bare, fusebench, fusebench, bare per round); the ratio is
    the median over rounds of the round's mean fusebench peak over its mean bare peak.
    """
    config, settings = _limits(config_path, overrides)
    settings.update(
        {
            "widths": list(config.model.encoders["audio"].widths),
            "batch_size": config.data.batch_size,
            "eval_batch_size": config.data.eval_batch_size,
            "threads": config.experiment.threads or 1,
        }
    )
    runs = tempfile.mkdtemp(prefix="fusebench-bench-memory-")
    measured: dict[str, list[dict[str, Any]]] = {"bare": [], "fusebench": []}

    def bare() -> float:
        measured["bare"].append(child([str(BENCH / "bare.py"), json.dumps(settings)]))
        return float(measured["bare"][-1]["peak_rss_bytes"])

    def fusebench() -> float:
        measured["fusebench"].append(child(train_command(config_path, overrides, runs)))
        return float(measured["fusebench"][-1]["peak_rss_bytes"])

    ratios, bares, fusebenches = [], [], []
    for _ in range(rounds):
        a1, b1 = bare(), fusebench()
        b2, a2 = fusebench(), bare()
        bares.append((a1 + a2) / 2)
        fusebenches.append((b1 + b2) / 2)
        ratios.append(fusebenches[-1] / bares[-1])
    after_imports = statistics.median(m["rss_after_imports"] for m in measured["fusebench"])
    return {
        "ratio_median": statistics.median(ratios),
        "ratios": ratios,
        "bare_mib": statistics.median(bares) / 2**20,
        "fusebench_mib": statistics.median(fusebenches) / 2**20,
        "fusebench_rss_after_imports_mib": after_imports / 2**20,
        "bare_rss_after_imports_mib": statistics.median(m["rss_after_imports"] for m in measured["bare"]) / 2**20,
        "settings": settings,
    }


def import_memory() -> dict[str, float]:
    """Resident MiB after importing torch alone, then Lightning, then what ``fusebench train`` imports."""
    steps = {
        "python": "pass",
        "torch": "import torch",
        "torch+numpy": "import torch, numpy",
        "torch+lightning": "import torch, lightning",
        "fusebench train's imports": "import fusebench.cli, fusebench.config, fusebench.engine.run",
    }
    out = {}
    for name, code in steps.items():
        script = (
            f"{code}\nimport json\nline=[l for l in open('/proc/self/status') if l.startswith('VmRSS')][0]\n"
            "print(json.dumps({'rss': int(line.split()[1]) * 1024}))"
        )
        out[name] = child(["-c", script])["rss"] / 2**20  # resident pages after imports barely vary
    return out


def startup_rows(rounds: int, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """``fusebench --help`` seconds; seconds to the first training step; process time over its epoch."""
    runs = tempfile.mkdtemp(prefix="fusebench-bench-startup-")
    helps = []
    for _ in range(max(3, rounds)):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "fusebench", "--help"], capture_output=True, check=True, cwd=ROOT, env={**_env()}
        )
        helps.append(time.perf_counter() - start)
    firsts, first_cpus, totals, epochs = [], [], [], []
    for _ in range(max(3, rounds)):
        start = time.perf_counter()
        marks = child(train_command(DEMO, ["experiment.threads=1", "training.epochs=1", *overrides], runs))
        totals.append(time.perf_counter() - start)
        firsts.append(float(marks["first_step_seconds"]))
        first_cpus.append(float(marks["first_step_cpu_seconds"]))
        epochs.append(_last_epoch_seconds(runs))
    interpreter = statistics.median(_timed([sys.executable, "-c", "pass"]) for _ in range(3))
    return {
        "help_seconds": statistics.median(helps),
        "first_step_seconds": statistics.median(firsts) + interpreter,
        "first_step_cpu_seconds": statistics.median(first_cpus),
        "interpreter_seconds": interpreter,
        "process_seconds": statistics.median(totals),
        "train_epoch_seconds": statistics.median(epochs),
        "process_over_epoch": statistics.median(t / e for t, e in zip(totals, epochs, strict=True)),
    }


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, capture_output=True, check=True)
    return time.perf_counter() - start


def _last_epoch_seconds(runs: str) -> float:
    from pathlib import Path

    newest = max(Path(runs).glob("*/*/timing.json"), key=lambda p: p.stat().st_mtime)
    return float(json.loads(newest.read_text())["training"])


def import_profile(top: int = 12) -> dict[str, float]:
    """``python -X importtime`` of what ``fusebench train`` imports, self-time summed per top-level package (s)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import fusebench.cli, fusebench.config, fusebench.engine.run"],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=ROOT,
        check=True,
    )
    totals: dict[str, float] = defaultdict(float)
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)", line)
        if match:
            totals[match.group(2).split(".")[0]] += int(match.group(1)) / 1e6
    ranked = sorted(totals.items(), key=lambda kv: -kv[1])
    return {name: round(seconds, 3) for name, seconds in ranked[:top]} | {"total": round(sum(totals.values()), 3)}


def config_import_seconds() -> dict[str, float]:
    """Seconds of ``import fusebench.config`` beyond its imports: the pydantic unions built from the registries."""
    script = (
        "import time\nimport torch, lightning, torchmetrics, pydantic, yaml, numpy\n"
        "import fusebench.data.registry, fusebench.models.encoder_specs, fusebench.tasks\n"
        "start = time.perf_counter()\nimport fusebench.config\n"
        "import json\nprint(json.dumps({'seconds': time.perf_counter() - start}))"
    )
    return {"config_module_seconds": statistics.median(child(["-c", script])["seconds"] for _ in range(3))}


def cold_build_row(recipe_overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Seconds and peak RSS of building the AV-digits cache from the sources into an empty folder.

    ``steps`` are the build's own progress lines (seconds since its start, then the step).
    """
    cache = tempfile.mkdtemp(prefix="fusebench-bench-cold-")
    script = (
        "import json, time, sys\nsys.path.insert(0, 'benchmarks')\nfrom harness import peak_rss_bytes\n"
        "from fusebench.data.avdigits import prepare_avdigits\n"
        "from fusebench.data.avdigits_recipe import AVDigitsRecipe\n"
        f"recipe = AVDigitsRecipe(**{recipe_overrides or {}!r})\n"
        "cpu, wall = time.process_time(), time.perf_counter()\n"
        f"prepare_avdigits(recipe, cache_dir={cache!r}, progress=True, allow_download=False)\n"
        "print(json.dumps({'seconds': time.perf_counter() - wall, 'cpu_seconds': time.process_time() - cpu,"
        " 'peak_rss_bytes': peak_rss_bytes()}))"
    )
    done = child(["-c", script], keep_stderr=True)
    done["steps"] = [line for line in done.pop("stderr") if line.startswith("[avdigits")]
    import shutil

    shutil.rmtree(cache, ignore_errors=True)
    return {**done, "peak_rss_mib": done["peak_rss_bytes"] / 2**20, "recipe_overrides": recipe_overrides or {}}


def _study_spec(folder: Path, overrides: list[str], seeds: list[int]) -> Path:
    import yaml

    spec = {
        "study": {
            "name": "bench_study",
            "base": DEMO,
            "overrides": overrides,
            "pretrain": {"overrides": []},
            "seeds": seeds,
            "threads_per_run": 1,
            "conditions": {"scratch": {}, "pretrained": {"pretrained": "all"}},
            "analysis": {"baseline": "scratch"},
        }
    }
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _study_phases(study_dir: Path, started: float) -> dict[str, float]:
    """Wall seconds of a finished study's three phases, from its files' modification times.

    ``setup``: process start to ``plan.json`` (imports, the dataset, every run's preflight);
    ``nodes``: ``plan.json`` to the last node's ``status.json`` (what workers can share);
    ``report``: from there to ``report.html`` (results, statistics, figures).
    """
    plan = (study_dir / "plan.json").stat().st_mtime
    done = max(p.stat().st_mtime for p in (study_dir / "runs").glob("*/status.json"))
    report = (study_dir / "report.html").stat().st_mtime
    return {"setup": plan - started, "nodes": done - plan, "report": report - done}


def study_row(rounds: int, overrides: list[str], seeds: list[int]) -> dict[str, Any]:
    """Wall seconds of a small study on 2 local workers (B) over 1 worker (A), ABBA; same numbers; reused workers.

    Each study runs in a child process (``fusebench study``); the row also checks that every
    node's test metrics are identical between the two, counts the distinct worker
    processes (``env.json: pid``) that ran the nodes of a 2-worker study, and splits each
    study's wall time into set-up, nodes and report (:func:`_study_phases`): only the
    nodes phase runs in parallel.
    """
    folder = Path(tempfile.mkdtemp(prefix="fusebench-bench-study-"))
    spec = _study_spec(folder, overrides, seeds)
    studies: dict[int, list[Path]] = {1: [], 2: []}
    phases: dict[int, list[dict[str, float]]] = {1: [], 2: []}

    def study(workers: int) -> float:
        root = folder / f"w{workers}-{len(studies[workers])}"
        started = time.time()  # file modification times are on this clock
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "fusebench", "study", str(spec), "--workers", str(workers), "--root", str(root)],
            capture_output=True,
            check=True,
            cwd=ROOT,
            env=_env(),
        )
        studies[workers].append(root / "bench_study")
        phases[workers].append(_study_phases(root / "bench_study", started))
        return time.perf_counter() - start

    ratios, ones, twos = [], [], []
    for _ in range(rounds):
        a1, b1 = study(1), study(2)
        b2, a2 = (study(2), study(1)) if rounds > 1 else (b1, a1)
        ones.append((a1 + a2) / 2)
        twos.append((b1 + b2) / 2)
        ratios.append(twos[-1] / ones[-1])
    one, two = studies[1][0] / "runs", studies[2][0] / "runs"
    nodes = sorted(p.name for p in one.iterdir() if (p / "test_metrics.json").is_file())
    same = all(
        json.loads((one / n / "test_metrics.json").read_text())
        == json.loads((two / n / "test_metrics.json").read_text())
        for n in nodes
    )
    pids = {json.loads((two / n / "env.json").read_text())["pid"] for n in nodes}
    phase_medians = {
        workers: {k: statistics.median(p[k] for p in phases[workers]) for k in ("setup", "nodes", "report")}
        for workers in (1, 2)
    }
    return {
        "phases_one_worker": phase_medians[1],
        "phases_two_workers": phase_medians[2],
        "nodes_phase_ratio": phase_medians[2]["nodes"] / phase_medians[1]["nodes"],
        "ratio_median": statistics.median(ratios),
        "ratios": ratios,
        "one_worker_seconds": ones,
        "two_worker_seconds": twos,
        "nodes": len(nodes),
        "identical_test_metrics": same,
        "worker_processes_for_nodes": len(pids),
        "overrides": overrides,
        "seeds": seeds,
    }
