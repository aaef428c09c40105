"""The facts behind the verdict, checked against independent computations on real runs.

Budget detection, epochs to threshold, best vs runner-up, seeds for 80% power, test-set
intervals, timing conditions and the decision guide's numbers, each recomputed here from
results.json, the run folders' saved logits, scipy or statsmodels.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np
import pytest
from safetensors.torch import load_file
from scipy import stats
from statsmodels.stats.proportion import proportion_confint
from tests._helpers.study_results import analysis_of, results_of, study

from fusebench.study.analysis import analyse
from fusebench.study.analysis_compare import compare_groups, family_sizes, quantities
from fusebench.study.analysis_verdict import best_and_runner_up
from fusebench.study.power import seeds_for_power
from fusebench.study.records import RunRecord, StudyRecord
from fusebench.study.report_decision import decision_guide
from fusebench.study.report_time import timing_caveat
from fusebench.study.report_verdict import budget_sentence, verdict
from fusebench.study.testset import bootstrap_difference
from fusebench.tasks import Task

FULL = "audio+image"
PATTERNS = ["audio+image", "audio", "image"]


def _runs(results: dict[str, Any], group: str) -> list[dict[str, Any]]:
    return sorted(
        (r for r in results["runs"] if r.get("group") == group and r["status"] == "completed"), key=lambda r: r["seed"]
    )


def _curve_mean(results: dict[str, Any], group: str) -> np.ndarray:
    return np.mean([r["curves"]["validation"][FULL]["accuracy"] for r in _runs(results, group)], axis=0)


def test_fixed_budget_is_read_from_the_learning_curves() -> None:
    results, analysis = results_of("pretrain"), analysis_of("pretrain")
    mean = _curve_mean(results, "scratch")
    budget = analysis["fixed_budget"]
    assert budget["epochs"] == 3 == len(mean) and budget["group"] == "scratch"
    assert budget["last_change"] == pytest.approx(mean[-1] - mean[-2], abs=1e-9)
    assert budget["still_improving"] == bool(mean[-1] > mean[-2])
    sentence = budget_sentence(analysis)
    assert (sentence is not None) == (budget["still_improving"] is not False)
    if sentence:
        assert sentence.startswith("At a fixed budget of 3 fine-tuning epochs")


def test_no_fixed_budget_when_a_run_stopped_early_or_the_baseline_had_plateaued() -> None:
    results = results_of("pretrain")
    run = _runs(results, "pretrained")[0]
    for metrics in run["curves"]["validation"].values():
        for name in metrics:
            metrics[name] = metrics[name][:2]  # as if early stopping ended it after epoch 2
    assert analyse(results, study("pretrain"))["fixed_budget"] is None
    results = results_of("pretrain")
    for run in _runs(results, "scratch"):
        curve = run["curves"]["validation"][FULL]["accuracy"]
        curve[-1] = curve[-2] - 0.01  # the baseline got worse in its last epoch
    analysis = analyse(results, study("pretrain"))
    assert analysis["fixed_budget"]["still_improving"] is False
    assert budget_sentence(analysis) is None and not verdict(analysis)[0].startswith("At a fixed budget")


@pytest.mark.parametrize("threshold", [0.2, 0.3])
def test_epochs_to_threshold_is_compared_with_the_signed_rank_test(threshold: float) -> None:
    results = results_of("pretrain")
    results["analysis"]["threshold"] = threshold
    analysis = analyse(results, study("pretrain"))
    row = next(c for c in analysis["comparisons"] if c["kind"] == "epochs_to_threshold")
    expected = {}
    for group in ("scratch", "pretrained"):
        values = []
        for run in _runs(results, group):
            hits = [i + 1 for i, v in enumerate(run["curves"]["validation"][FULL]["accuracy"]) if v >= threshold]
            values.append(hits[0] if hits else 4)  # censored after 3 epochs ranks as 4
        expected[group] = np.array(values, dtype=float)
    assert row["values_a"] == expected["scratch"].tolist() and row["values_b"] == expected["pretrained"].tolist()
    assert row["family"] == "secondary" and row["p_holm_source"] == "p_wilcoxon"
    diffs = expected["pretrained"] - expected["scratch"]
    if np.any(diffs != 0):
        assert row["p_wilcoxon"] == pytest.approx(stats.wilcoxon(diffs).pvalue)
    else:
        assert row["p_wilcoxon"] is None and row["p_holm"] is None
    censored = int(np.sum(expected["scratch"] == 4) + np.sum(expected["pretrained"] == 4))
    assert (row["ci_low"] is None) == (censored > 0)


def test_best_and_runner_up_rank_the_primary_groups_by_their_mean() -> None:
    analysis = analysis_of("axes")
    means = {g["name"]: g["test"][FULL]["accuracy"]["mean"] for g in analysis["groups"]}
    ranked = sorted(means, key=means.get, reverse=True)
    assert best_and_runner_up(
        analysis["groups"], [tuple(p) for p in analysis["primary_pairs"]], FULL, "accuracy", True
    ) == (ranked[1], ranked[0])
    assert best_and_runner_up(
        analysis["groups"], [tuple(p) for p in analysis["primary_pairs"]], FULL, "accuracy", False
    ) == (ranked[-2], ranked[-1])  # lower is better: the smallest mean wins
    pick = analysis["best_vs_runner_up"]
    assert (pick["runner_up"], pick["best"]) == (ranked[1], ranked[0])
    compared = analysis["comparisons"][pick["comparison"]]
    assert {compared["group_a"], compared["group_b"]} == {ranked[0], ranked[1]} and compared["pattern"] == FULL


def test_a_post_hoc_pair_joins_the_secondary_family_only() -> None:
    results, analysis = StudyRecord.from_json(results_of("axes")), analysis_of("axes")
    by_group: dict[str, list[RunRecord]] = {}
    for run in results.fusion_runs():
        by_group.setdefault(str(run.group), []).append(run)
    pair = ("late|fusion=concat|missing_rate=0.4", "late|fusion=gated|missing_rate=0.0")
    primary = [tuple(p) for p in analysis["primary_pairs"]]
    rows = quantities(PATTERNS, "accuracy", FULL, threshold=0.3)
    plain, _ = compare_groups(primary, by_group, rows, ["audio", "image"], primary=primary)
    extra, _ = compare_groups(primary, by_group, rows, ["audio", "image"], primary=primary, post_hoc=[pair])
    added = [c for c in extra if c["post_hoc"]]
    assert len(added) == 1 and (added[0]["group_a"], added[0]["group_b"]) == pair
    assert added[0]["family"] == "secondary" and added[0]["label"] == f"test accuracy ({FULL})"
    before, after = family_sizes(plain), family_sizes(extra)
    assert after["primary"] == before["primary"] and after["secondary"] == before["secondary"] + 1
    assert [c["p_holm"] for c in extra if c["family"] == "primary"] == [
        c["p_holm"] for c in plain if c["family"] == "primary"
    ]


def test_seeds_for_power_use_the_observed_effect_and_the_primary_family_size() -> None:
    analysis = analysis_of("pretrain")
    primary = analysis["comparisons"][analysis["primary_comparison"]]
    assert primary["seeds_needed"] == asdict(seeds_for_power(primary["hedges_g"], 0.05))
    size = analysis["families"]["primary"]
    adjusted = primary["seeds_needed_adjusted"]
    assert (adjusted is None) == (size == 1)
    if adjusted is not None:
        assert adjusted == asdict(seeds_for_power(primary["hedges_g"], 0.05 / size))
    assert all(
        "seeds_needed" not in c for c in analysis["comparisons"] if c["family"] == "secondary" and not c["post_hoc"]
    )


def test_test_set_intervals_come_from_the_test_samples() -> None:
    results, analysis = results_of("pretrain"), analysis_of("pretrain")
    for group in analysis["groups"]:
        for pattern in PATTERNS:
            record, summary = group["test_set"][pattern], group["test"][pattern]["accuracy"]
            count = _runs(results, group["name"])[0]["test"][pattern]["count"]
            low, high = proportion_confint(summary["mean"] * count, count, alpha=0.05, method="wilson")
            assert (record["method"], record["samples"]) == ("wilson", count)
            assert (record["low"], record["high"]) == pytest.approx((low, high))
    primary = analysis["comparisons"][analysis["primary_comparison"]]
    saved = {}
    for group in ("scratch", "pretrained"):
        by_seed = {r["seed"]: r for r in _runs(results, group)}
        saved[group] = []
        for seed in primary["seeds"]:
            tensors = load_file(str(study("pretrain") / by_seed[seed]["run_dir"] / "test_logits.safetensors"))
            saved[group].append((tensors[f"logits/{FULL}"], tensors["target"], Task("multiclass", 10)))
    expected = bootstrap_difference(saved["scratch"], saved["pretrained"], "accuracy")
    assert (primary["test_set"]["low"], primary["test_set"]["high"]) == pytest.approx((expected.low, expected.high))
    accuracy = [np.mean([(p.argmax(1) == t).float().mean().item() for p, t, _ in saved[g]]) for g in saved]
    assert primary["test_set"]["low"] <= accuracy[1] - accuracy[0] <= primary["test_set"]["high"]


def test_timing_conditions_and_their_caveat_come_from_the_execution_record() -> None:
    results = results_of("pretrain")
    nodes = [r["node"] for r in results["runs"]]
    results["execution"] = [
        {
            "workers": 1,
            "backend": "local",
            "cpus": 2,
            "threads_per_run": 1,
            "load_average": [0.2, 0.1, 0.1],
            "nodes": nodes,
        },
        {
            "workers": 2,
            "backend": "local",
            "cpus": 2,
            "threads_per_run": 1,
            "load_average": [1.5, 1.0, 0.5],
            "nodes": nodes[:3],
        },
    ]
    analysis = analyse(results, study("pretrain"))
    timing = analysis["setup"]["timing_conditions"]
    assert (timing["max_workers"], timing["cpus"], timing["max_load_average"], timing["unrecorded"]) == (2, 2, 1.5, 0)
    caveat = timing_caveat(analysis)
    assert "up to 2 run(s) in parallel on 2 CPU(s)" in caveat and "--workers 1" in caveat
    assert "was not recorded" in timing_caveat(analysis_of("pretrain"))  # the helper study has no record


def test_decision_guide_numbers_follow_the_curves_and_clocks() -> None:
    analysis = analysis_of("pretrain")
    (row,) = analysis["decision"]["rows"]
    groups = {g["name"]: g for g in analysis["groups"]}
    scratch, pretrained = groups["scratch"], groups["pretrained"]
    curve_a = scratch["curves"][FULL]["accuracy"]["mean"]
    curve_b = pretrained["curves"][FULL]["accuracy"]["mean"]
    reached = next((i + 1 for i, v in enumerate(curve_b) if v >= curve_a[-1]), None)
    assert (row["group_a"], row["group_b"], row["epochs_to_match"]) == ("scratch", "pretrained", reached)
    epoch_a = scratch["time"]["fit"]["mean"] / len(curve_a)
    epoch_b = pretrained["time"]["fit"]["mean"] / len(curve_b)
    pretraining = pretrained["time"]["pretraining_full"]["mean"]
    assert row["pretraining_seconds"] == pytest.approx(pretraining)
    if reached is not None:
        assert row["time_to_match_a"] == pytest.approx(len(curve_a) * epoch_a)
        assert row["net_seconds"] == pytest.approx(len(curve_a) * epoch_a - (pretraining + reached * epoch_b))
    lines = decision_guide(analysis)
    assert lines[0].startswith("Best pre-trained condition: pretrained vs scratch")
    assert lines[-1].startswith("Recommendation:")
    assert ("no evidence" in lines[-1]) == (not row["significant"])
