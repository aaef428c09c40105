"""Studies and reports for non-classification tasks, on small dataset folders (dataset ``folder``).

``fusebench study`` runs one dataset-agnostic pretrain-vs-scratch spec twice: its ``base``
points at a user's config for a regression folder (metric MAE, lower is better) and for
a multilabel folder (F1 samples). Every number the report states is checked against a
value computed here from the run directories and the data files: the headline means,
epochs to threshold in the metric's direction, Shapley's empty-set value (the training
median's MAE; the per-label majority's F1), MMPT end points, and the verdict's wording.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from sklearn.metrics import f1_score
from tests._helpers.folder_data import CONFIGS, user_config, write_folder
from typer.testing import CliRunner

from fusebench.cli import app
from fusebench.data.patterns import all_patterns, pattern_name
from fusebench.study.report import headline_table
from fusebench.study.report_text import num
from fusebench.study.report_verdict import conclusion

MODALITIES = ["image", "sensor", "series"]
PATTERNS = [pattern_name(p) for p in all_patterns(MODALITIES)]  # all 2^3 - 1 = 7
FULL = "image+sensor+series"
#: odd sizes: the training median and each label's majority are unambiguous
SIZES = {"train": 401, "validation": 101, "test": 151}
STUDIES = {
    "regression": {"metric": "mae", "threshold": 0.6, "seeds": [0, 1, 2]},
    "multilabel": {"metric": "f1_samples", "threshold": 0.65, "seeds": [0, 1]},
}


def study_spec(name: str, base: Path, pretrain_image: Path, threshold: float, seeds: list[int]) -> dict[str, Any]:
    """pretrain_vs_scratch in small: nothing in it names a dataset, a task or a metric."""
    return {
        "study": {
            "name": name,
            "question": "Does pre-training the image encoder help?",
            "base": str(base),
            "overrides": ["training.epochs=2"],
            "pretrain": {"configs": {"image": str(pretrain_image)}, "overrides": ["training.epochs=2"]},
            "shared_overrides": ["monitoring.enabled=false"],
            "seeds": seeds,
            "conditions": {"scratch": {}, "pretrained": {"pretrained": ["image"]}},
            "analysis": {"threshold": threshold, "baseline": "scratch"},
        }
    }


@pytest.fixture(scope="module", params=list(STUDIES))
def study(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    kind: str = request.param
    root = tmp_path_factory.mktemp(kind)
    data = write_folder(root / "data", kind, SIZES, seed=7)
    runs = root / "runs"
    base = user_config(data, "late_fusion.yaml", root / "late_fusion.yaml", runs)
    pretrain = user_config(data, "pretrain_image.yaml", root / "pretrain_image.yaml", runs)
    settings = STUDIES[kind]
    spec = root / "spec.yaml"
    spec.write_text(
        yaml.safe_dump(
            study_spec(f"folder_{kind}", base, pretrain, settings["threshold"], settings["seeds"]), sort_keys=False
        )
    )
    result = CliRunner().invoke(app, ["study", str(spec), "--root", str(root / "studies"), "--workers", "1"])
    assert result.exit_code == 0, result.output
    study_dir = root / "studies" / f"folder_{kind}"
    return {
        "kind": kind,
        "data": data,
        "dir": study_dir,
        "output": " ".join(result.output.split()),
        **settings,
        "analysis": json.loads((study_dir / "analysis.json").read_text()),
        "results": json.loads((study_dir / "results.json").read_text()),
        "report": (study_dir / "report.md").read_text(),
        "html": (study_dir / "report.html").read_text(),
    }


def fusion_runs(study: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in study["results"]["runs"] if r["kind"] == "fusion"]


def run_json(study: dict[str, Any], run: dict[str, Any], name: str) -> Any:
    return json.loads((study["dir"] / run["run_dir"] / name).read_text())


def constant_score(study: dict[str, Any]) -> float:
    """The best input-free predictor's test score, from the label files alone."""
    train = np.load(study["data"] / "train" / "labels.npy")
    test = np.load(study["data"] / "test" / "labels.npy")
    if study["kind"] == "regression":
        return float(np.mean(np.abs(test - np.median(train))))
    majority = np.broadcast_to(train.mean(axis=0) > 0.5, test.shape)
    return float(f1_score(test.astype(int), majority.astype(int), average="samples", zero_division=0))


@pytest.mark.slow
def test_every_pattern_is_evaluated_and_the_headline_is_the_runs_mean(study: dict[str, Any]) -> None:
    analysis, metric = study["analysis"], study["metric"]
    assert analysis["primary_metric"] == metric and analysis["patterns"] == PATTERNS
    assert analysis["higher_is_better"] is (metric == "f1_samples")
    assert analysis["setup"]["runs_completed"] == analysis["setup"]["runs_total"] == 3 * len(study["seeds"])
    for group in analysis["groups"]:
        runs = [r for r in fusion_runs(study) if r["condition"] == group["name"]]
        assert len(runs) == len(study["seeds"])
        for p in PATTERNS:
            values = [run_json(study, r, "test_metrics.json")[p][metric] for r in runs]
            assert group["test"][p][metric]["mean"] == pytest.approx(statistics.fmean(values), abs=1e-12)
            assert group["test"][p][metric]["n"] == len(runs)
    # the signal needs every modality: the fused model beats each one alone, in the metric's direction
    sign = 1 if analysis["higher_is_better"] else -1
    scratch = analysis["groups"][0]["test"]
    assert all(sign * scratch[FULL][metric]["mean"] > sign * scratch[m][metric]["mean"] for m in MODALITIES)
    better = "higher" if analysis["higher_is_better"] else "lower"
    for text in (study["report"], study["html"]):
        assert f"primary metric {metric} ({better} is better)" in text
        assert f"Headline: test {metric} ({better} is better)" in text
        assert num(scratch[FULL][metric]["mean"]) in text
    assert f"test {metric} ({better} is better), mean ± std" in headline_table(study["dir"])
    assert f"test {metric} ({better} is better)" in study["output"]
    for figure in ("learning_curves", "first_epoch", "epochs_to_threshold", "pattern_heatmap", "mmpt", "shapley"):
        assert (study["dir"] / "figures" / f"{figure}.png").is_file()


@pytest.mark.slow
def test_epochs_to_threshold_follow_the_metric_direction(study: dict[str, Any]) -> None:
    analysis, metric, threshold = study["analysis"], study["metric"], study["threshold"]
    reached = (lambda v: v >= threshold) if analysis["higher_is_better"] else (lambda v: v <= threshold)
    for group in analysis["groups"]:
        for record in group["epochs_to_threshold"]["per_seed"]:
            run = next(r for r in fusion_runs(study) if r["condition"] == group["name"] and r["seed"] == record["seed"])
            curve = [e["validation"][FULL][metric] for e in run_json(study, run, "epoch_metrics.json")]
            first = next((i + 1 for i, v in enumerate(curve) if reached(v)), None)
            assert (record["epochs"], record["censored"]) == (first, first is None)
    sign = "≥" if analysis["higher_is_better"] else "≤"
    assert f"epochs to {metric} {sign} {threshold} (validation, {FULL})" in study["report"]


@pytest.mark.slow
def test_shapley_starts_from_the_best_constant_predictor(study: dict[str, Any]) -> None:
    analysis, metric = study["analysis"], study["metric"]
    expected = constant_score(study)
    for group in analysis["groups"]:
        shapley = group["shapley"]
        assert sorted(shapley["chance"]) == [str(s) for s in study["seeds"]]
        for seed, chance in shapley["chance"].items():
            assert chance == pytest.approx(expected, abs=1e-6)
            run = next(r for r in fusion_runs(study) if r["condition"] == group["name"] and str(r["seed"]) == seed)
            full = run_json(study, run, "test_metrics.json")[FULL][metric]
            assert sum(shapley["per_seed"][seed].values()) == pytest.approx(full - chance, abs=1e-9)
    predictor = {"regression": "the training median", "multilabel": "each label's majority value"}[study["kind"]]
    assert f"best constant predictor for this {study['kind']} task ({predictor})" in study["report"]
    helps = "negative contribution (it lowers mae)" if metric == "mae" else "positive contribution"
    assert f"a modality that helps has a {helps}" in study["report"]
    if metric == "mae":  # every modality lowers the error here
        assert all(analysis["groups"][0]["shapley"]["mean"][m]["mean"] < 0 for m in MODALITIES)


@pytest.mark.slow
def test_mmpt_curves_run_from_the_full_pattern_to_the_pattern_without(study: dict[str, Any]) -> None:
    metric = study["metric"]
    for group in study["analysis"]["groups"]:
        for m in MODALITIES:
            curve = group["mmpt"][m]
            without = "+".join(x for x in MODALITIES if x != m)
            assert curve["p_test"][0] == 0.0 and curve["p_test"][-1] == 1.0 and curve["n"] == len(study["seeds"])
            assert curve["mean"][0] == pytest.approx(group["test"][FULL][metric]["mean"], abs=1e-6)
            assert curve["mean"][-1] == pytest.approx(group["test"][without][metric]["mean"], abs=1e-6)
            # both metrics are per-sample means: the expectation is linear in p_test
            middle = curve["p_test"].index(0.5)
            assert curve["mean"][middle] == pytest.approx((curve["mean"][0] + curve["mean"][-1]) / 2, abs=1e-6)


@pytest.mark.slow
def test_verdict_reads_the_direction_of_the_metric(study: dict[str, Any]) -> None:
    analysis, metric = study["analysis"], study["metric"]
    primary = analysis["comparisons"][analysis["primary_comparison"]]
    assert (primary["metric"], primary["pattern"], primary["higher_is_better"]) == (
        metric,
        FULL,
        analysis["higher_is_better"],
    )
    assert f"pretrained − scratch on test {metric} ({FULL}): mean difference" in study["report"]
    # the same record judged at a lenient alpha, so that the sentence must pick a direction
    loud = conclusion(primary, alpha=1.01)
    lower = primary["mean_diff"] < 0
    good = lower != analysis["higher_is_better"]
    assert f"pretrained is {'lower' if lower else 'higher'} than scratch" in loud
    assert f"({'better' if good else 'worse'} for this quantity)" in loud


@pytest.mark.slow
def test_budget_and_decision_guide_read_the_direction_of_the_metric(study: dict[str, Any]) -> None:
    analysis, metric = study["analysis"], study["metric"]
    sign = 1.0 if analysis["higher_is_better"] else -1.0
    curves = {g["name"]: g["curves"][FULL][metric]["mean"] for g in analysis["groups"]}
    budget = analysis["fixed_budget"]
    scratch = curves["scratch"]
    assert budget["last_change"] == pytest.approx(scratch[-1] - scratch[-2], abs=1e-9)
    assert budget["still_improving"] is (sign * budget["last_change"] > 0)
    row = analysis["decision"]["rows"][0]
    assert (row["group_a"], row["group_b"], row["baseline_final"]) == ("scratch", "pretrained", scratch[-1])
    assert row["better"] is (sign * row["mean_diff"] > 0)
    reached = [i + 1 for i, v in enumerate(curves["pretrained"]) if sign * v >= sign * scratch[-1]]
    assert row["epochs_to_match"] == (reached[0] if reached else None)


@pytest.mark.slow
def test_cli_trains_the_shipped_config_on_a_regression_folder(tmp_path: Path) -> None:
    data = write_folder(tmp_path / "data", "regression", SIZES, seed=3)
    result = CliRunner().invoke(
        app,
        [
            "train",
            str(CONFIGS / "late_fusion.yaml"),
            f"data.root={data}",
            f"experiment.runs_dir={tmp_path / 'runs'}",
            "training.epochs=2",
            "logging.progress_bar=false",
            "experiment.threads=1",
            "--run-id",
            "r",
        ],
    )
    assert result.exit_code == 0, result.output
    run_dir = tmp_path / "runs" / "folder_late_fusion" / "r"
    test = json.loads((run_dir / "test_metrics.json").read_text())
    assert sorted(test) == sorted(PATTERNS)
    described = json.loads((run_dir / "data.json").read_text())
    assert described["task"]["kind"] == "regression" and described["metrics"]["primary"] == "mae"
    train, target = np.load(data / "train" / "labels.npy"), np.load(data / "test" / "labels.npy")
    constant = float(np.mean(np.abs(target - np.median(train))))
    assert test[FULL]["mae"] < min(test[m]["mae"] for m in MODALITIES) < constant
