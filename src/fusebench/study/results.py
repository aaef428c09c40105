"""``results.json`` and ``results.csv``, rebuilt from the study folder alone.

The run directories are the truth: this module reads ``spec.yaml``, ``plan.json`` and each
node's run folder, so the executor (after every finished node) and ``fusebench report``
(at any time, also after a crash) produce the same file. The schema is
docs/study_results.md. Nodes that have not finished yet are left out of ``runs`` and
counted under ``progress``. The long format of the same results (``results.csv``) is
built by :mod:`fusebench.study.long_format`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from fusebench.engine.footprint import RESOURCES_FILE
from fusebench.engine.run_folder import RunState
from fusebench.errors import DamagedFileError
from fusebench.io import atomic_write_json, atomic_write_text, read_json, read_json_object
from fusebench.study.graph import read_plan, run_state
from fusebench.study.long_format import results_csv
from fusebench.study.spec_models import StudyFile, StudySpec, format_value

RESULTS_FILE = "results.json"
CSV_FILE = "results.csv"
EXECUTION_FILE = "execution.json"
TIMING_KEYS = ("data", "fit", "training", "validation", "test", "total")


def pretraining_seconds(timing: dict[str, Any]) -> float | None:
    """What one pre-training node cost, seconds: loading its data plus fitting (``data + fit``).

    The one definition used everywhere (results, analysis, report), and the figure the
    node writes into its encoder file's header, so both sources agree. Testing the
    pre-trained encoder and writing its files are left out: a fusion run does not need them.
    """
    if timing.get("data") is None or timing.get("fit") is None:
        return None
    return float(timing["data"]) + float(timing["fit"])


def read_study_spec(study_dir: Path) -> StudySpec:
    """The spec a study folder ran with (its ``spec.yaml``), without re-reading the run configs."""
    file = study_dir / "spec.yaml"
    if not file.is_file():
        raise FileNotFoundError(
            f"`{file}` does not exist; is `{study_dir}` a study folder written by `fusebench study`?"
        )
    from fusebench.config import read_yaml
    from fusebench.study.spec import explain_spec_error

    try:
        return StudyFile.model_validate(read_yaml(file)).study
    except ValidationError as error:
        raise explain_spec_error(error, file) from None


def collect_results(study_dir: str | Path) -> dict[str, Any]:
    """The ``results.json`` payload of ``study_dir``, read from its run directories.

    Args:
        study_dir: a folder written by ``fusebench study`` (holds spec.yaml and plan.json).

    Returns:
        The dict documented in docs/study_results.md, plus ``progress`` (node counts by state).
    """
    study_dir = Path(study_dir)
    spec, plan = read_study_spec(study_dir), read_plan(study_dir)
    nodes = plan["nodes"]
    by_id = {n["node"]: n for n in nodes}
    outcome: dict[str, str] = {}
    runs = []
    for node in nodes:
        twin = by_id[node["same_as"]] if node["same_as"] else node
        run_dir = study_dir / "runs" / twin["node"]
        state = run_state(run_dir, twin["config_digest"])
        failed_dep = next(
            (d for d in node["depends_on"] if outcome.get(d) in (RunState.FAILED, RunState.SKIPPED)), None
        )
        if state not in (RunState.COMPLETED, RunState.FAILED):
            state = RunState.SKIPPED if failed_dep else RunState.PENDING
        outcome[node["node"]] = state
        if state != RunState.PENDING:
            runs.append(_entry(node, twin["node"], run_dir, state, failed_dep, outcome))
    _pretraining_cost(runs, by_id)
    analysis = spec.analysis
    baseline = analysis.baseline or next(iter(spec.conditions))
    comparisons = analysis.comparisons or [(baseline, c) for c in spec.conditions if c != baseline]
    execution = read_json(study_dir / EXECUTION_FILE) if (study_dir / EXECUTION_FILE).is_file() else {}
    return {
        "study": spec.name,
        "question": spec.question,
        "modalities": plan["modalities"],
        "patterns": plan["patterns"],
        "seeds": spec.seeds,
        "conditions": list(spec.conditions),
        "axes": {name: axis.values for name, axis in spec.axes.items()},
        "task": plan.get("task"),
        "analysis": {
            "primary_metric": analysis.primary_metric or plan.get("primary_metric", "accuracy"),
            "threshold": analysis.threshold,
            "patterns": analysis.patterns or plan["patterns"],
            "baseline": baseline,
            "comparisons": [list(pair) for pair in comparisons],
            "chance": analysis.chance,
            "primary": [list(pair) for pair in analysis.primary] if analysis.primary else None,
            "interval": analysis.interval,
            "sensitivity": analysis.sensitivity,
            "best_of": {k: list(v) for k, v in analysis.best_of.items()},
        },
        "progress": {
            s.value: sum(v == s for v in outcome.values())
            for s in (RunState.COMPLETED, RunState.FAILED, RunState.SKIPPED, RunState.PENDING)
        },
        "execution": execution.get("sessions", []),
        "runs": runs,
    }


def _entry(
    node: dict[str, Any], twin: str, run_dir: Path, state: str, failed_dep: str | None, outcome: dict[str, str]
) -> dict[str, Any]:
    """One ``runs[]`` record (see docs/study_results.md)."""
    axes = node["axes"]
    group = None
    if node["condition"] is not None:
        group = "|".join([node["condition"], *(f"{k}={format_value(v)}" for k, v in axes.items())])
    entry: dict[str, Any] = {
        "node": node["node"],
        "kind": node["kind"],
        "condition": node["condition"],
        "group": group,
        "axes": axes,
        "seed": node["seed"],
        "status": state,
        "error": None,
        "run_dir": f"runs/{twin}",
        "depends_on": node["depends_on"],
        "modality": node["modality"],
        "test": {},
        "curves": {"train_loss": [], "validation_loss": [], "validation": {}},
        "timing": {},
        "model": {},
        "resources": {},
        "config_overrides": node["config_overrides"],
    }
    if state == RunState.SKIPPED:
        entry["error"] = (
            f"Skipped: it loads the encoder of `{failed_dep}`, which "
            f"{'failed' if outcome.get(failed_dep or '') == 'failed' else 'was skipped'}."
        )
        return entry
    status = read_json_object(run_dir / "status.json")
    entry["error"] = status.get("error")
    if (run_dir / "epoch_metrics.json").is_file():
        epochs = read_json(run_dir / "epoch_metrics.json")
        if not isinstance(epochs, list) or not all(isinstance(e, dict) for e in epochs):
            raise DamagedFileError(
                f"Expected a list of epoch records in `{run_dir / 'epoch_metrics.json'}`; the file is damaged."
            )
        entry["curves"] = curves(epochs)
    if state == RunState.COMPLETED:
        entry["test"] = read_json_object(run_dir / "test_metrics.json")
        timing = read_json_object(run_dir / "timing.json")
        entry["timing"] = {
            "pretraining": {m: float(v) for m, v in timing.get("pretraining", {}).items()},
            "pretraining_amortised": {},
            **{key: timing.get(key) for key in TIMING_KEYS},
        }
        model = read_json_object(run_dir / "model.json")
        entry["model"] = {k: model[k] for k in ("parameters", "trainable_parameters") if k in model}
        if "cost" in model:  # multiply-accumulates per sample, for the cost/accuracy trade-off
            entry["model"]["macs"] = model["cost"]["total_macs"]
        if (run_dir / RESOURCES_FILE).is_file():  # size on disk, peak memory, inference throughput
            entry["resources"] = read_json(run_dir / RESOURCES_FILE)
    return entry


def curves(epochs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-epoch series from ``epoch_metrics.json`` (index 0 = epoch 1)."""
    validation: dict[str, dict[str, list[float]]] = {}
    for epoch in epochs:
        for pattern, metrics in epoch.get("validation", {}).items():
            if isinstance(metrics, dict) and pattern != "timing":
                for metric, value in metrics.items():
                    validation.setdefault(pattern, {}).setdefault(metric, []).append(value)
    return {
        "train_loss": [e["train"]["loss"] for e in epochs if "train" in e],
        "validation_loss": [e["validation"]["loss"] for e in epochs if "validation" in e],
        "validation": validation,
    }


def _pretraining_cost(runs: list[dict[str, Any]], plan: dict[str, dict[str, Any]]) -> None:
    """Each fusion run's pre-trained encoders: the full seconds of the node that trained each one
    (:func:`pretraining_seconds`), and that divided by the number of *completed* fusion runs of
    this study that loaded it (its share when the encoder is shared among this study's arms).

    If the node's own timing is gone, the seconds recorded in the encoder file the run loaded
    (the same data + fit figure) stand in. Runs that failed, or have not run yet, share nothing:
    dividing by planned runs would make a partial study look cheaper than it was.
    """
    by_node = {r["node"]: r for r in runs}
    users: dict[str, set[str]] = {}
    for run in runs:
        if run["kind"] == "fusion" and run["status"] == RunState.COMPLETED:
            for dep in run["depends_on"]:
                users.setdefault(dep, set()).add(run["run_dir"])  # twins share one run directory: one run
    for run in runs:
        if run["kind"] != "fusion" or not run["timing"]:
            continue
        full, shares = {}, {}
        for dep in run["depends_on"]:
            modality = plan[dep]["modality"]
            seconds = pretraining_seconds(by_node.get(dep, {}).get("timing") or {})
            full[modality] = seconds if seconds is not None else run["timing"]["pretraining"].get(modality)
            shares[modality] = None if full[modality] is None else full[modality] / max(len(users.get(dep, ())), 1)
        run["timing"]["pretraining"], run["timing"]["pretraining_amortised"] = full, shares


def write_results(study_dir: str | Path) -> dict[str, Any]:
    """Rebuild ``results.json`` and ``results.csv`` atomically; return the results."""
    study_dir = Path(study_dir)
    results = collect_results(study_dir)
    atomic_write_json(study_dir / RESULTS_FILE, results)
    atomic_write_text(study_dir / CSV_FILE, results_csv(results))
    return results


Summary = dict[str, dict[str, tuple[float, float, int]]]


def summary_by_group(results: dict[str, Any], metric: str | None = None) -> Summary:
    """``{group: {pattern: (mean, sample std, n)}}`` of a test metric over the completed fusion runs' seeds."""
    import statistics

    metric = metric or results["analysis"]["primary_metric"]
    values: dict[str, dict[str, list[float]]] = {}
    for run in results["runs"]:
        if run["kind"] == "fusion" and run["status"] == RunState.COMPLETED:
            for pattern in results["patterns"]:
                if metric in run["test"].get(pattern, {}):
                    values.setdefault(run["group"], {}).setdefault(pattern, []).append(run["test"][pattern][metric])
    return {
        group: {
            p: (statistics.fmean(v), statistics.stdev(v) if len(v) > 1 else 0.0, len(v)) for p, v in by_pattern.items()
        }
        for group, by_pattern in values.items()
    }
