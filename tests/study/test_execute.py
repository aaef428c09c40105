"""Studies run for real on a tiny AV-digits subset: results schema, resume, crashes, Ray, CLI."""

from __future__ import annotations

import copy
import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from tests.study.test_spec import TINY, write_spec
from typer.testing import CliRunner

from fusebench.cli import app
from fusebench.config import ConfigError
from fusebench.io import atomic_write_json, read_json
from fusebench.models.weights import read_encoder_metadata
from fusebench.study.execute import run_study
from fusebench.study.results import collect_results, summary_by_group
from fusebench.study.spec import load_spec

PATTERNS = ["audio+image", "audio", "image"]
RUN_KEYS = {
    "node",
    "kind",
    "condition",
    "group",
    "axes",
    "seed",
    "status",
    "error",
    "run_dir",
    "depends_on",
    "modality",
    "test",
    "curves",
    "timing",
    "model",
    "resources",
    "config_overrides",
}
TOP_KEYS = {"study", "question", "modalities", "patterns", "seeds", "conditions", "axes", "analysis", "runs"}
METRICS = {"loss", "accuracy", "f1_macro", "f1_micro", "f1_weighted", "count"}


def _quiet() -> Console:
    return Console(file=io.StringIO(), width=200)


def numbers(results: dict[str, Any]) -> dict[str, Any]:
    """What must not depend on the executor: status, test metrics and learning curves per node."""
    return {r["node"]: (r["status"], r["test"], r["curves"], r["model"]) for r in results["runs"]}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, Any]]:
    """The tiny study (2 seeds, 3 conditions, 10 nodes) run once in-process: spec, folder, results."""
    root = tmp_path_factory.mktemp("reference")
    study_dir = run_study(write_spec(root), workers=1, study_root=root / "studies", console=_quiet())
    return root / "tiny.yaml", study_dir, copy.deepcopy(read_json(study_dir / "results.json"))


def test_tiny_study_completes_and_results_follow_the_schema(reference: tuple[Path, Path, dict[str, Any]]) -> None:
    _, study_dir, results = reference
    assert TOP_KEYS <= set(results)
    assert (results["study"], results["seeds"], results["axes"]) == ("tiny", [0, 1], {})
    assert results["conditions"] == ["scratch", "pretrained", "audio_scratch"]
    assert results["patterns"] == PATTERNS and results["modalities"] == ["audio", "image"]
    assert results["analysis"] == {
        "primary_metric": "accuracy",
        "threshold": 0.3,
        "patterns": PATTERNS,
        "baseline": "scratch",
        "chance": None,
        "primary": None,
        "interval": "t",
        "comparisons": [["scratch", "pretrained"], ["scratch", "audio_scratch"]],
        "best_of": {},
        "sensitivity": None,
    }
    (session,) = results["execution"]  # one invocation, with 1 worker, ran all 10 nodes
    assert (session["workers"], session["backend"], session["threads_per_run"]) == (1, "local", 1)
    assert sorted(session["nodes"]) == sorted(r["node"] for r in results["runs"]) and session["cpus"] >= 1
    runs = {r["node"]: r for r in results["runs"]}
    assert len(runs) == 10 and all(set(r) == RUN_KEYS for r in runs.values())
    assert all(r["status"] == "completed" and r["error"] is None for r in runs.values())
    for node, run in runs.items():
        assert (study_dir / run["run_dir"] / "status.json").is_file() and run["run_dir"] == f"runs/{node}"
        assert len(run["curves"]["train_loss"]) == 1 and len(run["curves"]["validation_loss"]) == 1
        assert run["model"]["parameters"] >= run["model"]["trainable_parameters"] > 0
        assert {"data", "fit", "training", "validation", "test", "total"} <= set(run["timing"])
    pretrained = runs["pretrained-s1"]
    assert (pretrained["kind"], pretrained["condition"], pretrained["group"], pretrained["seed"]) == (
        "fusion",
        "pretrained",
        "pretrained",
        1,
    )
    assert list(pretrained["test"]) == PATTERNS and set(pretrained["test"]["audio"]) == METRICS
    assert pretrained["test"]["audio+image"]["count"] == 100
    assert set(pretrained["curves"]["validation"]) == set(PATTERNS)
    audio = next(d for d in pretrained["depends_on"] if d.startswith("pretrain-audio-s1-"))
    assert runs[audio]["kind"] == "pretrain" and runs[audio]["modality"] == "audio"
    assert list(runs[audio]["test"]) == ["audio"] and runs[audio]["condition"] is None
    timing = pretrained["timing"]  # audio is used by `pretrained` only, image by two conditions
    assert timing["pretraining_amortised"]["audio"] == timing["pretraining"]["audio"] > 0
    assert timing["pretraining_amortised"]["image"] == pytest.approx(timing["pretraining"]["image"] / 2)
    node = runs[audio]["timing"]  # one definition of a pre-training node's seconds: data + fit, as in its encoder
    assert timing["pretraining"]["audio"] == pytest.approx(node["data"] + node["fit"])
    header = read_encoder_metadata(study_dir / runs[audio]["run_dir"] / "encoders" / "audio.safetensors")
    assert float(header["pretraining_seconds"]) == pytest.approx(node["data"] + node["fit"], abs=1e-3)
    assert runs["scratch-s0"]["timing"]["pretraining"] == {} and runs["scratch-s0"]["depends_on"] == []
    assert collect_results(study_dir)["runs"] == results["runs"]  # rebuilt from the folder alone
    csv_lines = (study_dir / "results.csv").read_text().splitlines()
    assert csv_lines[0].startswith("node,kind,condition,modality,seed,status,split,epoch,pattern,metric,value")
    assert "scratch-s0,fusion,scratch,,0,completed,test,,audio+image,accuracy," in "\n".join(csv_lines)
    assert load_spec(study_dir / "spec.yaml").spec == load_spec(reference[0]).spec  # re-runnable copy
    summary = summary_by_group(results)
    assert set(summary) == {"scratch", "pretrained", "audio_scratch"} and summary["scratch"]["audio"][2] == 2


def test_results_csv_has_the_thesis_quantities_per_run(reference: tuple[Path, Path, dict[str, Any]]) -> None:
    import csv

    _, study_dir, results = reference
    rows = list(csv.DictReader((study_dir / "results.csv").read_text().splitlines()))
    runs = {r["node"]: r for r in results["runs"]}

    def value(node: str, split: str, pattern: str, metric: str) -> tuple[str, float]:
        (row,) = [
            r for r in rows if (r["node"], r["split"], r["pattern"], r["metric"]) == (node, split, pattern, metric)
        ]
        return row["epoch"], float(row["value"])

    pretrained, scratch = runs["pretrained-s1"], runs["scratch-s1"]
    for pattern in PATTERNS:  # % change against the baseline's run of the same seed, by hand
        for metric in ("accuracy", "loss"):
            ours, theirs = pretrained["test"][pattern][metric], scratch["test"][pattern][metric]
            assert value("pretrained-s1", "vs_baseline", pattern, f"{metric}_pct_change")[1] == pytest.approx(
                100 * (ours - theirs) / theirs
            )
        assert value("pretrained-s1", "efficiency", pattern, "accuracy_per_training_second")[1] == pytest.approx(
            pretrained["test"][pattern]["accuracy"] / pretrained["timing"]["training"]
        )
        curve = pretrained["curves"]["validation"][pattern]["accuracy"]  # one epoch: best = last = epoch 1
        assert value("pretrained-s1", "best_epoch", pattern, "accuracy") == ("1", pytest.approx(max(curve)))
        assert value("pretrained-s1", "last_epoch", pattern, "accuracy") == ("1", pytest.approx(curve[-1]))
    assert not [r for r in rows if r["node"] == "scratch-s1" and r["split"] == "vs_baseline"]  # the baseline itself
    resources = pretrained["resources"]
    assert value("pretrained-s1", "resources", "", "weights_bytes")[1] == resources["weights_bytes"] > 0
    assert resources["inference_samples"] == 100 and resources["peak_rss_bytes"] > 0


def test_existing_study_folder_needs_resume(reference: tuple[Path, Path, dict[str, Any]]) -> None:
    spec, study_dir, _ = reference
    with pytest.raises(ConfigError, match=r"already holds runs; pass `--resume` to continue it"):
        run_study(spec, study_root=study_dir.parent, console=_quiet())


def test_resume_reruns_only_unfinished_nodes_with_identical_numbers(
    reference: tuple[Path, Path, dict[str, Any]],
) -> None:
    spec, study_dir, results = reference
    runs = study_dir / "runs"
    shutil.rmtree(runs / "pretrained-s1")  # killed before it wrote anything
    status = read_json(runs / "audio_scratch-s0" / "status.json")
    atomic_write_json(runs / "audio_scratch-s0" / "status.json", {**status, "state": "failed", "error": "boom"})
    rebuilt = {r["node"]: r for r in collect_results(study_dir)["runs"]}
    assert rebuilt["audio_scratch-s0"]["status"] == "failed"
    image = rebuilt["pretrained-s0"]["timing"]  # its image encoder is now shared by one completed run, not two
    assert image["pretraining_amortised"]["image"] == image["pretraining"]["image"]
    untouched = {d.name: (d / "status.json").stat().st_mtime_ns for d in runs.iterdir() if d.name != "audio_scratch-s0"}
    console = _quiet()
    run_study(spec, workers=2, resume=True, study_root=study_dir.parent, console=console)  # a process pool
    lines = [line for line in console.file.getvalue().splitlines() if "] completed" in line]  # type: ignore[attr-defined]
    assert sorted(line.split()[2] for line in lines) == ["audio_scratch-s0", "pretrained-s1"]
    assert {d: (runs / d / "status.json").stat().st_mtime_ns for d in untouched} == untouched
    assert numbers(read_json(study_dir / "results.json")) == numbers(results)
    sessions = read_json(study_dir / "results.json")["execution"]
    assert [s["workers"] for s in sessions] == [1, 2] and sorted(sessions[1]["nodes"]) == [
        "audio_scratch-s0",
        "pretrained-s1",
    ]


def test_failed_run_is_recorded_and_dependents_skipped_while_others_complete(tmp_path: Path) -> None:
    pretrain = {
        "configs": {"image": TINY["pretrain"]["configs"]["image"]},
        "overrides": ["training.epochs=1", "training.optimizer.lr=1e30"],
    }  # diverges at run time
    conditions = {
        "scratch": {},
        "broken": {"overrides": ["training.optimizer.lr=1e30"]},
        "pretrained": {"pretrained": ["image"]},
    }
    spec = write_spec(tmp_path, name="crash", seeds=[0], pretrain=pretrain, conditions=conditions)
    console = _quiet()
    study_dir = run_study(spec, study_root=tmp_path / "studies", console=console)
    runs = {r["node"]: r for r in read_json(study_dir / "results.json")["runs"]}
    (pretrain_node,) = runs["pretrained-s0"]["depends_on"]
    assert runs["scratch-s0"]["status"] == "completed"
    assert runs["broken-s0"]["status"] == "failed" and "NonFiniteLossError" in runs["broken-s0"]["error"]
    assert runs[pretrain_node]["status"] == "failed" and "training loss is nan" in runs[pretrain_node]["error"]
    assert runs["pretrained-s0"]["status"] == "skipped" and pretrain_node in runs["pretrained-s0"]["error"]
    assert runs["pretrained-s0"]["test"] == {} and runs["broken-s0"]["test"] == {}
    output = console.file.getvalue()  # type: ignore[attr-defined]
    assert "failed" in output and "skipped" in output and "NonFiniteLossError" in output
    assert read_json(study_dir / "results.json")["progress"] == {
        "completed": 1,
        "failed": 2,
        "skipped": 1,
        "pending": 0,
    }


def test_pretrain_axis_study_runs_identical_scratch_runs_once(tmp_path: Path) -> None:
    axes = {"fraction": {"key": "pretrain.data_fraction", "values": [0.5, 1.0], "target": "pretrain"}}
    conditions = {"scratch": {}, "pretrained": {"pretrained": ["image"]}}
    spec = write_spec(tmp_path, name="axis", seeds=[0], conditions=conditions, axes=axes)
    study_dir = run_study(spec, study_root=tmp_path / "studies", console=_quiet())
    results = read_json(study_dir / "results.json")
    runs = {r["node"]: r for r in results["runs"]}
    assert results["axes"] == {"fraction": [0.5, 1.0]} and len(runs) == 6
    assert sorted(p.name for p in (study_dir / "runs").iterdir() if p.name.startswith("scratch")) == [
        "scratch__fraction=0.5-s0"
    ]
    twin, alias = runs["scratch__fraction=0.5-s0"], runs["scratch__fraction=1.0-s0"]
    assert alias["run_dir"] == twin["run_dir"] and alias["test"] == twin["test"] and alias["status"] == "completed"
    assert (alias["group"], alias["axes"]) == ("scratch|fraction=1.0", {"fraction": 1.0})
    pretrain = [r for r in runs.values() if r["kind"] == "pretrain"]
    assert sorted(r["axes"]["fraction"] for r in pretrain) == [0.5, 1.0]
    assert runs["pretrained__fraction=0.5-s0"]["test"] != runs["pretrained__fraction=1.0-s0"]["test"]


def test_interrupt_keeps_finished_runs_and_resume_finishes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import fusebench.study.local_pool as local_pool

    real, calls = local_pool.execute_node, []

    def interrupted_on_third_node(node_id: str, *args: Any) -> Any:
        calls.append(node_id)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(node_id, *args)

    monkeypatch.setattr(local_pool, "execute_node", interrupted_on_third_node)
    conditions = {"scratch": {}, "pretrained": {"pretrained": ["image"]}}
    spec = write_spec(tmp_path, name="stop", seeds=[0], conditions=conditions)
    with pytest.raises(KeyboardInterrupt):
        run_study(spec, study_root=tmp_path / "studies", console=_quiet())
    progress = read_json(tmp_path / "studies" / "stop" / "results.json")["progress"]
    assert progress == {"completed": 2, "failed": 0, "skipped": 0, "pending": 1}
    monkeypatch.undo()
    console = _quiet()
    run_study(spec, resume=True, study_root=tmp_path / "studies", console=console)
    assert "2 already complete, 1 to run" in console.file.getvalue()  # type: ignore[attr-defined]
    assert read_json(tmp_path / "studies" / "stop" / "results.json")["progress"]["completed"] == 3


@pytest.mark.slow
def test_ray_backend_gives_the_local_numbers(reference: tuple[Path, Path, dict[str, Any]], tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    spec, _, results = reference
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        study_dir = run_study(spec, backend="ray", study_root=tmp_path / "studies", console=_quiet())
    finally:
        ray.shutdown()
    assert numbers(read_json(study_dir / "results.json")) == numbers(results)


@pytest.mark.slow
def test_cli_study_end_to_end(tmp_path: Path) -> None:
    conditions = {"scratch": {}, "pretrained": {"pretrained": ["image"]}}
    spec = write_spec(tmp_path, name="cli", seeds=[3], conditions=conditions)
    root = tmp_path / "studies"
    result = CliRunner().invoke(app, ["study", str(spec), "--root", str(root), "--workers", "1"])
    assert result.exit_code == 0, result.output
    finished = [line for line in result.output.splitlines() if "] completed" in line]
    assert len(finished) == 3 and "results:" in result.output
    results = json.loads((root / "cli" / "results.json").read_text())
    assert {r["node"] for r in results["runs"]} >= {"scratch-s3", "pretrained-s3"}
    again = CliRunner().invoke(app, ["study", str(spec), "--root", str(root)])
    assert again.exit_code == 2 and "--resume" in again.output
    resumed = CliRunner().invoke(app, ["study", str(spec), "--root", str(root), "--resume"])
    assert resumed.exit_code == 0 and "3 already complete, 0 to run" in resumed.output
