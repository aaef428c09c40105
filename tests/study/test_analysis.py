"""analysis.json against independent computations on the per-seed values of real runs."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.torch import load_file
from scipy import stats
from tests._helpers.study_results import PATTERNS, analysis_of, results_of, study

from fusebench.errors import ResultsError
from fusebench.study.analysis import analyse, write_analysis
from fusebench.study.records import load_results
from fusebench.study.report_verdict import verdict

FULL = "audio+image"


def completed(results: dict[str, Any], group: str) -> list[dict[str, Any]]:
    runs = [r for r in results["runs"] if r.get("group") == group and r["status"] == "completed"]
    return sorted(runs, key=lambda r: r["seed"])


def group(analysis: dict[str, Any], name: str) -> dict[str, Any]:
    return next(g for g in analysis["groups"] if g["name"] == name)


def comparison(analysis: dict[str, Any], a: str, b: str, label: str) -> dict[str, Any]:
    return next(c for c in analysis["comparisons"] if (c["group_a"], c["group_b"], c["label"]) == (a, b, label))


@pytest.mark.parametrize("name", ["scratch", "pretrained", "frozen"])
@pytest.mark.parametrize("pattern", PATTERNS)
def test_test_summary_matches_numpy_and_scipy(name: str, pattern: str) -> None:
    results, analysis = results_of("pretrain"), analysis_of("pretrain")
    values = np.array([r["test"][pattern]["accuracy"] for r in completed(results, name)])
    summary = group(analysis, name)["test"][pattern]["accuracy"]
    assert summary["n"] == len(values)
    assert summary["mean"] == pytest.approx(values.mean(), abs=1e-12)
    if len(values) > 1:
        if values.std() == 0:  # scipy's interval is NaN at zero scale; the interval is the point itself
            low = high = values.mean()
        else:
            low, high = stats.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=stats.sem(values))
        assert summary["std"] == pytest.approx(values.std(ddof=1), abs=1e-12)
        assert (summary["ci_low"], summary["ci_high"]) == pytest.approx((low, high), abs=1e-12)
    else:
        assert summary["std"] is None and summary["ci_low"] is None  # one seed: no spread, written as null


def test_first_epoch_is_the_first_validation_value() -> None:
    results, analysis = results_of("pretrain"), analysis_of("pretrain")
    for name in ("scratch", "pretrained"):
        runs = completed(results, name)
        first = np.array([r["curves"]["validation"][FULL]["accuracy"][0] for r in runs])
        loss = np.array([r["curves"]["validation"][FULL]["loss"][0] for r in runs])
        summary = group(analysis, name)["first_epoch"]
        assert summary["metric"]["mean"] == pytest.approx(first.mean(), abs=1e-12)
        assert summary["loss"]["std"] == pytest.approx(loss.std(ddof=1), abs=1e-12)


def test_paired_tests_equal_scipy_on_the_same_seeds() -> None:
    results, analysis = results_of("pretrain"), analysis_of("pretrain")
    a = {r["seed"]: r["test"][FULL]["accuracy"] for r in completed(results, "scratch")}
    b = {r["seed"]: r["test"][FULL]["accuracy"] for r in completed(results, "pretrained")}
    seeds = sorted(set(a) & set(b))
    row = comparison(analysis, "scratch", "pretrained", f"test accuracy ({FULL})")
    xa, xb = np.array([a[s] for s in seeds]), np.array([b[s] for s in seeds])
    assert row["seeds"] == seeds and row["n"] == len(seeds) == 3
    assert row["mean_diff"] == pytest.approx((xb - xa).mean(), abs=1e-12)
    assert row["p_ttest"] == pytest.approx(stats.ttest_rel(xb, xa).pvalue, rel=1e-9)
    assert row["p_wilcoxon"] == pytest.approx(stats.wilcoxon(xb - xa).pvalue, rel=1e-9)


def _holm_by_hand(p: np.ndarray) -> np.ndarray:
    order = np.argsort(p)
    m = len(p)
    expected = np.empty(m)
    running = 0.0
    for rank, index in enumerate(order):  # Holm (1979) step-down, written out by hand
        running = max(running, min(1.0, (m - rank) * p[index]))
        expected[index] = running
    return expected


@pytest.mark.parametrize("family", ["primary", "secondary"])
def test_holm_adjusts_each_family_on_its_own(family: str) -> None:
    analysis = analysis_of("axes")
    rows = [c for c in analysis["comparisons"] if c["family"] == family and c["p_holm"] is not None]
    p = np.array([c["p_wilcoxon"] if c["kind"] == "epochs_to_threshold" else c["p_ttest"] for c in rows])
    assert analysis["families"][family] == len(rows) >= 4
    assert [c["p_holm"] for c in rows] == pytest.approx(_holm_by_hand(p).tolist(), abs=1e-12)


def test_primary_family_is_the_primary_quantity_of_the_primary_pairs() -> None:
    analysis = analysis_of("pretrain")  # primary by default: the compared condition pairs
    primary = [c for c in analysis["comparisons"] if c["family"] == "primary"]
    assert [(c["group_a"], c["group_b"], c["label"]) for c in primary] == [
        ("scratch", "pretrained", f"test accuracy ({FULL})")
    ]  # scratch vs frozen has one seed: not compared
    assert analysis["primary_pairs"] == [["scratch", "pretrained"], ["scratch", "frozen"]]
    assert analysis["comparisons"][analysis["primary_comparison"]] == primary[0]
    axes = analysis_of("axes")  # one condition: the axis values against each axis' first value
    assert {c["label"] for c in axes["comparisons"] if c["family"] == "primary"} == {f"test accuracy ({FULL})"}
    assert ["late|fusion=concat|missing_rate=0.0", "late|fusion=gated|missing_rate=0.0"] in axes["primary_pairs"]


def test_a_named_primary_pair_is_compared_and_the_others_are_secondary() -> None:
    results = results_of("pretrain")
    results["analysis"]["primary"] = [["pretrained", "scratch"]]  # not among `comparisons`: added
    analysis = analyse(results, study("pretrain"))
    assert analysis["primary_pairs"] == [["pretrained", "scratch"]]
    primary = [c for c in analysis["comparisons"] if c["family"] == "primary"]
    assert [(c["group_a"], c["group_b"], c["label"]) for c in primary] == [
        ("pretrained", "scratch", f"test accuracy ({FULL})")
    ]
    other = comparison(analysis, "scratch", "pretrained", f"test accuracy ({FULL})")
    assert other["family"] == "secondary" and other["mean_diff"] == pytest.approx(-primary[0]["mean_diff"])


def test_time_is_described_not_tested() -> None:
    analysis = analysis_of("pretrain")
    time = [c for c in analysis["comparisons"] if c["kind"] == "time"]
    assert time and all(c["family"] == "descriptive" for c in time)
    for c in time:
        assert c["p_ttest"] is None and c["p_holm"] is None and c["p_wilcoxon"] is None
        assert c["ratio"] == pytest.approx(c["mean_b"] / c["mean_a"])
        d = np.array(c["values_b"]) - np.array(c["values_a"])
        low, high = stats.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=stats.sem(d))
        assert (c["ci_low"], c["ci_high"]) == pytest.approx((low, high))
    assert analysis["families"]["descriptive"] == len(time)
    assert sum(analysis["families"][f] for f in ("primary", "secondary")) == sum(
        1 for c in analysis["comparisons"] if c["p_holm"] is not None
    )


def test_failed_and_skipped_runs_are_listed_and_only_complete_pairs_are_compared() -> None:
    analysis = analysis_of("pretrain")
    failed = {r["node"]: r for r in analysis["failed_runs"]}
    assert set(failed) == {"frozen-s1", "frozen-s2"}
    assert failed["frozen-s1"]["status"] == "failed" and "FileNotFoundError" in failed["frozen-s1"]["error"]
    assert failed["frozen-s2"]["status"] == "skipped" and failed["frozen-s2"]["error"]
    frozen = group(analysis, "frozen")
    assert (frozen["seeds_planned"], frozen["seeds_completed"], frozen["n"]) == ([0, 1, 2], [0], 1)
    assert not [c for c in analysis["comparisons"] if "frozen" in (c["group_a"], c["group_b"])]
    skipped = [n for n in analysis["not_compared"] if n["group_b"] == "frozen"]
    assert len(skipped) == len(PATTERNS) + 3 and all(n["n"] == 1 and n["seeds"] == [0] for n in skipped)


def test_epochs_to_threshold_matches_the_curves() -> None:
    results, analysis = results_of("pretrain"), analysis_of("pretrain")
    for name in ("scratch", "pretrained"):
        record = group(analysis, name)["epochs_to_threshold"]
        for run, seed in zip(completed(results, name), record["per_seed"], strict=True):
            curve = run["curves"]["validation"][FULL]["accuracy"]
            hits = [i + 1 for i, v in enumerate(curve) if v >= 0.3]
            assert seed["epochs"] == (hits[0] if hits else None)
            assert seed["censored"] == (not hits)


def test_a_threshold_never_reached_is_shown_as_censored() -> None:
    results = results_of("pretrain")
    results["analysis"]["threshold"] = 1.01
    analysis = analyse(results, study("pretrain"))
    for g in analysis["groups"]:
        summary = g["epochs_to_threshold"]["summary"]
        assert summary["display"] == f">3 (censored {g['n']}/{g['n']})"
        assert summary["km_median"] is None and summary["n_reached"] == 0


def test_time_split_adds_full_pretraining_to_the_main_run() -> None:
    results, analysis = results_of("pretrain"), analysis_of("pretrain")
    runs = completed(results, "pretrained")
    full = np.array([r["timing"]["total"] + sum(r["timing"]["pretraining"].values()) for r in runs])
    amortised = np.array([sum(r["timing"]["pretraining_amortised"].values()) for r in runs])
    time = group(analysis, "pretrained")["time"]
    assert time["total_with_pretraining"]["mean"] == pytest.approx(full.mean(), abs=1e-12)
    assert time["pretraining_amortised"]["mean"] == pytest.approx(amortised.mean(), abs=1e-12)
    assert group(analysis, "scratch")["time"]["pretraining_full"]["mean"] == 0.0
    cost = next(c for c in analysis["costs"] if (c["group_a"], c["group_b"]) == ("scratch", "pretrained"))
    scratch = group(analysis, "scratch")["time"]["total_with_pretraining"]["mean"]
    assert cost["total_change_pct_full"] == pytest.approx(100 * (full.mean() - scratch) / scratch, abs=1e-9)
    pretraining = np.array([sum(r["timing"]["pretraining"].values()) for r in runs])
    assert cost["pretraining_added_full"] == pytest.approx(pretraining.mean(), abs=1e-12)  # scratch has none


def test_shapley_uses_the_majority_class_rate_of_the_test_targets() -> None:
    results, analysis = results_of("pretrain"), analysis_of("pretrain")
    shapley = group(analysis, "scratch")["shapley"]
    for run in completed(results, "scratch"):
        target = load_file(str(study("pretrain") / run["run_dir"] / "test_logits.safetensors"))["target"].numpy()
        chance = np.bincount(target).max() / target.size
        values = shapley["per_seed"][str(run["seed"])]
        assert shapley["chance"][str(run["seed"])] == pytest.approx(chance)
        # efficiency: contributions add up to full-pattern accuracy minus the empty-set value
        assert sum(values.values()) == pytest.approx(run["test"][FULL]["accuracy"] - chance, abs=1e-9)
        # two modalities: phi_audio = (v(audio) - chance + v(full) - v(image)) / 2
        v = {p: run["test"][p]["accuracy"] for p in PATTERNS}
        assert values["audio"] == pytest.approx((v["audio"] - chance + v[FULL] - v["image"]) / 2, abs=1e-9)


def test_mmpt_curve_ends_are_the_full_and_reduced_pattern_metrics() -> None:
    results, analysis = results_of("pretrain"), analysis_of("pretrain")
    runs = completed(results, "pretrained")
    curve = group(analysis, "pretrained")["mmpt"]["audio"]
    assert curve["n"] == 3 and curve["p_test"][0] == 0.0 and curve["p_test"][-1] == 1.0
    assert curve["mean"][0] == pytest.approx(np.mean([r["test"][FULL]["accuracy"] for r in runs]), abs=1e-6)
    assert curve["mean"][-1] == pytest.approx(np.mean([r["test"]["image"]["accuracy"] for r in runs]), abs=1e-6)


def test_axes_study_gets_ptrain_ptest_matrices_and_a_fusion_axis() -> None:
    results, analysis = results_of("axes"), analysis_of("axes")
    assert analysis["fusion_axes"] == ["fusion"]
    matrices = {(m["scope"], m["modality"]): m for m in analysis["ptrain_ptest"]}
    assert set(matrices) == {(f"late|fusion={f}", m) for f in ("concat", "gated") for m in ("audio", "image")}
    matrix = matrices[("late|fusion=gated", "image")]
    assert matrix["p_train"] == [0.0, 0.4] and matrix["n"] == [2, 2]
    for row, name in zip(matrix["values"], matrix["groups"], strict=True):
        full = np.mean([r["test"][FULL]["accuracy"] for r in completed(results, name)])
        audio_only = np.mean([r["test"]["audio"]["accuracy"] for r in completed(results, name)])
        assert (row[0], row[-1]) == pytest.approx((full, audio_only), abs=1e-6)
    pairs = {(c["group_a"], c["group_b"]) for c in analysis["comparisons"]}
    assert ("late|fusion=concat|missing_rate=0.0", "late|fusion=gated|missing_rate=0.0") in pairs
    assert ("late|fusion=gated|missing_rate=0.0", "late|fusion=gated|missing_rate=0.4") in pairs


def test_analysis_json_is_strict_json(tmp_path: Path) -> None:
    (tmp_path / "results.json").write_text(json.dumps(results_of("pretrain")))
    (tmp_path / "runs").symlink_to(study("pretrain") / "runs")
    write_analysis(tmp_path)

    def reject(constant: str) -> None:
        raise ValueError(f"analysis.json holds {constant}")

    parsed = json.loads((tmp_path / "analysis.json").read_text(), parse_constant=reject)
    assert parsed["groups"][0]["name"] == "scratch"
    frozen = parsed["groups"][2]["test"][FULL]["accuracy"]
    assert frozen["n"] == 1 and frozen["std"] is None
    assert not any(isinstance(v, float) and math.isnan(v) for v in frozen.values())


def test_a_folder_without_results_names_the_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"results\.json.*holds no runs"):
        load_results(tmp_path)
    (tmp_path / "results.json").write_text(json.dumps({"study": "x"}))
    with pytest.raises(
        ResultsError,
        match=r"results.json` does not follow docs/study_results.md: `modalities`: "
        r"Field required; `runs`: Field required",
    ):
        load_results(tmp_path)


def test_a_single_group_study_says_no_comparison_was_possible() -> None:
    results = results_of("pretrain")
    results["runs"] = [r for r in results["runs"] if r.get("group") in (None, "scratch")]
    results["conditions"], results["analysis"]["comparisons"] = ["scratch"], None
    analysis = analyse(results, study("pretrain"))
    assert [g["name"] for g in analysis["groups"]] == ["scratch"]
    assert analysis["comparisons"] == [] and analysis["primary_comparison"] is None
    assert verdict(analysis) == ["No paired comparison could be made (the study has a single group)."]


def test_ptrain_ptest_rows_come_from_conditions_when_no_axis_sets_rates() -> None:
    from fusebench.study.analysis_modality import ptrain_ptest

    def group(name: str, values: list[float]) -> dict[str, Any]:
        curve = {"p_test": [0.0, 0.5, 1.0], "mean": values, "n": 3}
        return {"name": name, "condition": name, "axes": {}, "mmpt": {"audio": curve, "image": curve}}

    groups = [
        group("complete", [0.9, 0.7, 0.5]),
        group("audio_0.5", [0.88, 0.8, 0.72]),
        group("audio_0.9", [0.8, 0.78, 0.76]),
        group("image_0.5", [0.85, 0.8, 0.75]),
    ]
    rates = {
        "complete": {"audio": 0.0, "image": 0.0},
        "audio_0.5": {"audio": 0.5, "image": 0.0},
        "audio_0.9": {"audio": 0.9, "image": 0.0},
        "image_0.5": {"audio": 0.0, "image": 0.5},
    }
    matrices = {m["modality"]: m for m in ptrain_ptest(groups, [], rates, ["audio", "image"])}
    assert matrices["audio"]["groups"] == ["complete", "audio_0.5", "audio_0.9"]
    assert matrices["audio"]["p_train"] == [0.0, 0.5, 0.9]
    assert matrices["audio"]["values"][2] == [0.8, 0.78, 0.76]
    assert matrices["image"]["groups"] == ["complete", "image_0.5"]
