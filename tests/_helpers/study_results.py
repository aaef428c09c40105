"""Realistic study directories for the analysis, plot and report tests, built from real runs.

Every number in these fixtures comes from a real (tiny) training run: each node is run with
:func:`fusebench.engine.run.execute_run` on 200 AV-digits training samples, and
``results.json`` is assembled from the run directories following
``docs/study_results.md``. Tests therefore check the analysis against values that were
actually computed, not against numbers typed into a fixture.

Studies are built once per test process into a temporary folder (``study(name)``) and
copied into each test's ``tmp_path`` (``copy_study``), because rendering writes into the
study directory.
"""

from __future__ import annotations

import atexit
import copy
import itertools
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fusebench.config import load_config
from fusebench.engine.datasets import DataSplits, load_splits
from fusebench.engine.run import execute_run
from fusebench.io import atomic_write_json, read_json
from fusebench.study.results import curves

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs" / "avdigits"
MODALITIES = ("audio", "image")
PATTERNS = ["audio+image", "audio", "image"]
COMMON = (
    "data.recipe={subset: 1200}",
    "data.limit={train: 240, validation: 100, test: 200}",
    "data.batch_size=32",
    "logging.progress_bar=false",
    "experiment.threads=1",
    "monitoring.enabled=true",
    "training.optimizer.lr=0.003",
)
ENCODER = tuple(f"model.encoders.{m}.widths=[4,8]" for m in MODALITIES)
FUSION_EPOCHS = 3

_BUILT: dict[str, Path] = {}
_ANALYSED: dict[str, dict[str, Any]] = {}
_DATA: dict[tuple[str, ...], DataSplits] = {}


def study(name: str) -> Path:
    """The built study ``name`` (``"pretrain"`` or ``"axes"``), built on first use."""
    if name not in _BUILT:
        root = Path(tempfile.mkdtemp(prefix=f"fusebench-{name}-study-"))
        atexit.register(shutil.rmtree, root, True)
        builders = {"pretrain": build_pretrain_study, "axes": build_axes_study}
        _BUILT[name] = builders[name](root / name)
    return _BUILT[name]


def copy_study(name: str, destination: Path) -> Path:
    """A private copy of study ``name`` that a test may render into."""
    return Path(shutil.copytree(study(name), destination / name))


def _data(config: Any) -> DataSplits:
    modalities = config.modalities()
    if modalities not in _DATA:
        _DATA[modalities] = load_splits(config.data, modalities, 0)
    return _DATA[modalities]


def _run(config_file: str, overrides: Sequence[str], run_dir: Path) -> None:
    config = load_config(CONFIGS / config_file, list(overrides))
    try:
        execute_run(config, run_dir, data=_data(config), command=["tests"])
    except (FileNotFoundError, ValueError, RuntimeError):
        pass  # status.json records the failure; the study goes on, as the executor does.


def _entry(
    study_dir: Path,
    node: str,
    *,
    kind: str = "fusion",
    condition: str | None = None,
    axes: dict[str, Any] | None = None,
    seed: int,
    depends_on: Sequence[str] = (),
    modality: str | None = None,
    overrides: Sequence[str] = (),
) -> dict[str, Any]:
    """One ``runs[]`` record of results.json, read from the node's run directory."""
    run_dir = study_dir / "runs" / node
    axes = axes or {}
    group = None if condition is None else "|".join([condition, *(f"{k}={v}" for k, v in axes.items())])
    entry: dict[str, Any] = {
        "node": node,
        "kind": kind,
        "condition": condition,
        "group": group,
        "axes": axes,
        "seed": seed,
        "status": "skipped",
        "error": None,
        "run_dir": f"runs/{node}",
        "depends_on": list(depends_on),
        "modality": modality,
        "test": {},
        "curves": {"train_loss": [], "validation_loss": [], "validation": {}},
        "timing": {},
        "model": {},
        "config_overrides": list(overrides),
    }
    if not (run_dir / "status.json").is_file():
        return entry
    status = read_json(run_dir / "status.json")
    entry["status"] = status["state"]
    entry["error"] = status.get("error")
    if (run_dir / "epoch_metrics.json").is_file():
        entry["curves"] = curves(read_json(run_dir / "epoch_metrics.json"))
    if entry["status"] == "completed":
        entry["test"] = read_json(run_dir / "test_metrics.json")
        timing = read_json(run_dir / "timing.json")
        entry["timing"] = {
            k: timing[k] for k in ("pretraining", "data", "fit", "training", "validation", "test", "total")
        }
        model = read_json(run_dir / "model.json")
        entry["model"] = {k: model[k] for k in ("parameters", "trainable_parameters")}
    return entry


def _amortise(runs: list[dict[str, Any]]) -> None:
    """Fill ``timing.pretraining_amortised``: each node's cost split over the completed runs using it."""
    users: dict[str, int] = {}
    for run in runs:
        for node in run["depends_on"] if run["status"] == "completed" else []:
            users[node] = users.get(node, 0) + 1
    for run in runs:
        if run["kind"] != "fusion" or not run["timing"]:
            continue
        shares = {node.split("-")[1]: users[node] for node in run["depends_on"]}
        run["timing"]["pretraining_amortised"] = {
            m: seconds / shares[m] for m, seconds in run["timing"]["pretraining"].items()
        }


def _write(study_dir: Path, header: dict[str, Any], runs: list[dict[str, Any]]) -> Path:
    _amortise(runs)
    atomic_write_json(study_dir / "results.json", {**header, "runs": runs})
    return study_dir


def build_pretrain_study(study_dir: Path) -> Path:
    """Scratch vs pre-trained vs frozen pre-trained encoders over seeds 0-2.

    ``frozen`` completes only seed 0: seed 1 fails for real (its encoder file does not
    exist) and seed 2 is recorded as skipped, as a fail-fast executor would leave it.
    """
    seeds = [0, 1, 2]
    runs: list[dict[str, Any]] = []
    for seed in seeds:
        encoders: dict[str, str] = {}
        for m in MODALITIES:
            node = f"pretrain-{m}-s{seed}-0000000{MODALITIES.index(m)}"
            extra = [*COMMON, f"model.encoders.{m}.widths=[4,8]", "training.epochs=1", f"experiment.seed={seed}"]
            _run(f"pretrain_{m}.yaml", extra, study_dir / "runs" / node)
            runs.append(_entry(study_dir, node, kind="pretrain", seed=seed, modality=m, overrides=extra))
            encoders[m] = node
        base = [*COMMON, *ENCODER, f"training.epochs={FUSION_EPOCHS}", f"experiment.seed={seed}"]
        weights = [
            f"model.pretrained.{m}={study_dir / 'runs' / n / 'encoders' / f'{m}.safetensors'}"
            for m, n in encoders.items()
        ]
        frozen = [*weights, *(f"model.freeze.{m}=true" for m in MODALITIES)]
        if seed == 1:
            frozen[0] = frozen[0].replace("audio.safetensors", "deleted.safetensors")
        for condition, extra in (("scratch", []), ("pretrained", weights), ("frozen", frozen)):
            node = f"{condition}-s{seed}"
            depends = [] if condition == "scratch" else list(encoders.values())
            if not (condition == "frozen" and seed == 2):
                _run("late_fusion.yaml", [*base, *extra], study_dir / "runs" / node)
            entry = _entry(
                study_dir, node, condition=condition, seed=seed, depends_on=depends, overrides=[*base, *extra]
            )
            if entry["status"] == "skipped":
                entry["error"] = "Skipped: the study stopped (fail-fast) after `frozen-s1` failed."
            runs.append(entry)
    header = {
        "study": "pretrain_vs_scratch",
        "question": "Does task-specific pre-training of the encoders help on AV-digits?",
        "modalities": list(MODALITIES),
        "patterns": PATTERNS,
        "seeds": seeds,
        "conditions": ["scratch", "pretrained", "frozen"],
        "axes": {},
        "analysis": {
            "primary_metric": "accuracy",
            "threshold": 0.3,
            "patterns": PATTERNS,
            "baseline": "scratch",
            "comparisons": [["scratch", "pretrained"], ["scratch", "frozen"]],
            "chance": None,
        },
    }
    return _write(study_dir, header, runs)


def build_axes_study(study_dir: Path) -> Path:
    """One condition over a fusion axis x a train-time missing-rate axis, seeds 0-1."""
    seeds = [0, 1]
    axes = {"fusion": ["concat", "gated"], "missing_rate": [0.0, 0.4]}
    runs = []
    for seed, fusion, rate in itertools.product(seeds, axes["fusion"], axes["missing_rate"]):
        values = {"fusion": fusion, "missing_rate": rate}
        node = f"late__fusion={fusion}__missing_rate={rate}-s{seed}"
        extra = [
            *COMMON,
            *ENCODER,
            f"training.epochs={FUSION_EPOCHS}",
            f"experiment.seed={seed}",
            f"model.fusion.method={fusion}",
            f"data.missing_rate={{audio: {rate}, image: {rate}}}",
        ]
        _run("late_fusion.yaml", extra, study_dir / "runs" / node)
        runs.append(_entry(study_dir, node, condition="late", axes=values, seed=seed, overrides=extra))
    header = {
        "study": "fusion_x_missing_rate",
        "question": "Which late fusion is most robust to missing modalities when trained with MCAR dropout?",
        "modalities": list(MODALITIES),
        "patterns": PATTERNS,
        "seeds": seeds,
        "conditions": ["late"],
        "axes": axes,
        "analysis": {
            "primary_metric": "accuracy",
            "threshold": 0.3,
            "patterns": PATTERNS,
            "baseline": "late",
            "comparisons": None,
            "chance": None,
        },
    }
    return _write(study_dir, header, runs)


def results_of(name: str) -> dict[str, Any]:
    """A deep copy of the study's results.json, safe to modify in a test."""
    return copy.deepcopy(read_json(study(name) / "results.json"))


def analysis_of(name: str) -> dict[str, Any]:
    """A deep copy of ``analyse`` on study ``name``, computed once per test process."""
    from fusebench.study.analysis import analyse

    if name not in _ANALYSED:
        _ANALYSED[name] = analyse(results_of(name), study(name))
    return copy.deepcopy(_ANALYSED[name])
