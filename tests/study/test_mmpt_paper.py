"""The MMPT paper's study-level protocols (004_*.txt): experts, the Appendix B mixture grid, best-of, Best-Fusion,
weakness (Definition 3), each checked against values worked out by hand from the paper's definitions."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file
from tests.study.test_spec import TINY, write_spec
from typer.testing import CliRunner

from fusebench.cli import app
from fusebench.config import ConfigError
from fusebench.study.analysis_best import best_of
from fusebench.study.analysis_mixture import mixture_curve, mixture_expert
from fusebench.study.graph import build_graph
from fusebench.study.spec import load_spec
from fusebench.tasks import Task

ROOT = Path(__file__).resolve().parents[2]
MIXTURE = ROOT / "configs" / "studies" / "mmpt_mixture.yaml"
ARSENAL = ROOT / "configs" / "studies" / "mmpt_arsenal.yaml"
NAMES = ["audio", "image"]


def test_the_expert_each_appendix_b_panel_mixes_in() -> None:
    # the paper's example: text missing in training at p_train = 0.9, image missing at test time:
    # "the logits of the model trained at 10% of only text at 60% probability"
    assert mixture_expert("text", "image", 0.9, ["image", "text"]) == ("text", 0.1)
    # same modality missing in training and test: the other modality's expert on 100% of the data
    assert mixture_expert("text", "text", 0.9, ["image", "text"]) == ("image", 1.0)
    assert mixture_expert("image", "image", 0.3, NAMES) == ("audio", 1.0)
    assert mixture_expert("audio", "image", 0.3, NAMES) == ("audio", 0.7)
    with pytest.raises(ValueError, match="two modalities"):
        mixture_expert("audio", "text", 0.3, NAMES)


def test_a_mixture_cell_is_the_exact_expected_accuracy() -> None:
    target = torch.tensor([0, 1, 2, 3])
    eye = torch.eye(4)
    full = eye[[0, 1, 2, 0]]  # right on 3 of 4 samples
    expert = eye[[0, 0, 0, 0]]  # right on 1 of 4
    values = mixture_curve(full, expert, target, NAMES, "image", [0.0, 0.6, 1.0], "accuracy", Task("multiclass", 4))
    # by hand: (1 - p) * 3/4 + p * 1/4
    assert values == pytest.approx([0.75, 0.4 * 0.75 + 0.6 * 0.25, 0.25])


def _group(name: str, condition: str, means: dict[str, float]) -> dict[str, Any]:
    return {
        "name": name,
        "condition": condition,
        "axes": {},
        "n": 3,
        "test": {p: {"accuracy": {"mean": v, "std": 0.01, "n": 3}} for p, v in means.items()},
    }


def test_best_of_reports_the_better_member_for_each_pattern() -> None:
    groups = [
        _group("naive", "naive", {"audio+image": 0.80, "audio": 0.30, "image": 0.50}),
        _group("dropout_audio", "dropout_audio", {"audio+image": 0.82, "audio": 0.35, "image": 0.60}),
        _group("dropout_image", "dropout_image", {"audio+image": 0.79, "audio": 0.45, "image": 0.52}),
    ]
    rules = {"dropout": ["dropout_audio", "dropout_image"]}
    (row,) = best_of(groups, rules, ["audio+image", "audio", "image"], "accuracy", higher=True)
    picked = {p: (c["member"], c["summary"]["mean"]) for p, c in row["cells"].items()}
    # the paper's rule (004 Sec. 4.1): the maximum of the two per-modality models; naive is not a member
    assert picked == {
        "audio+image": ("dropout_audio", 0.82),
        "audio": ("dropout_image", 0.45),
        "image": ("dropout_audio", 0.60),
    }
    (lower,) = best_of(groups, rules, ["audio+image"], "mae", higher=False)
    assert lower["cells"]["audio+image"]["member"] is None  # no mae recorded: nothing is chosen


def test_experts_are_pretraining_nodes_per_modality_fraction_and_seed(tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path,
        conditions={"scratch": {}, "pretrained": {"pretrained": ["audio", "image"]}},
        experts={"data_fractions": [1.0, 0.5]},
        analysis={"baseline": "scratch"},
    )
    graph = build_graph(load_spec(spec), tmp_path / "study")
    pretrain = [n for n in graph.nodes.values() if n.kind == "pretrain"]
    # 2 seeds x 2 modalities x 2 fractions; the fraction-1.0 expert is the node `pretrained` loads
    assert len(pretrain) == 8
    fractions = sorted((n.modality, n.seed, n.config.pretrain.data_fraction) for n in pretrain)
    assert fractions == sorted((m, s, f) for m in NAMES for s in (0, 1) for f in (1.0, 0.5))
    used = {d for n in graph.nodes.values() for d in n.depends_on}
    assert {n.id for n in pretrain if n.config.pretrain.data_fraction == 1.0} == used
    assert list(graph.nodes)[:4] == [n.id for n in pretrain if n.seed == 0]  # run before the seed's fusion runs


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        pytest.param({"experts": {"data_fractions": [0.0]}}, r"in \(0, 1\]", id="fraction"),
        pytest.param({"experts": {"data_fractions": [0.5, 0.5]}}, "distinct", id="repeat"),
        pytest.param(
            {"experts": {"modalities": ["text"]}}, r"`study.experts.modalities` names \['text'\]", id="modality"
        ),
        pytest.param(
            {"analysis": {"baseline": "scratch", "best_of": {"x": ["scratch", "nope"]}}},
            r"names conditions `nope`",
            id="best-of-unknown",
        ),
        pytest.param(
            {"analysis": {"baseline": "scratch", "best_of": {"x": "scratch"}}},
            "must be a condition template",
            id="best-of-not-template",
        ),
        pytest.param(
            {"analysis": {"baseline": "scratch", "best_of": {"x": ["scratch"]}}}, "at least two", id="best-of-one"
        ),
    ],
)
def test_expert_and_best_of_mistakes_are_named(tmp_path: Path, changes: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_spec(write_spec(tmp_path, **changes))


def test_the_shipped_arsenal_expands_the_dropout_template_into_the_best_of_rule() -> None:
    study = load_spec(ARSENAL)
    assert study.spec.analysis.best_of == {"dropout": ["dropout_audio", "dropout_image"]}
    config = study.fusion_config("dropout_image", {}, 0)
    strategy = config.training.strategy
    assert (strategy.modality_dropout_of, strategy.modality_dropout) == ("image", 0.5)  # 004 Sec. 4.1
    assert config.probe.enabled and study.spec.experts is not None


@pytest.mark.slow
def test_mixture_study_end_to_end_matches_the_hand_formula(tmp_path: Path) -> None:
    """The shipped mixture spec on a tiny subset: every reported number recomputed by hand from the runs."""
    root = tmp_path / "studies"
    shared = json.dumps([*TINY["shared_overrides"], "probe.enabled=true"])
    result = CliRunner().invoke(
        app,
        [
            "study",
            str(MIXTURE),
            "--root",
            str(root),
            "--set",
            "seeds=[0, 1]",
            "--set",
            f"shared_overrides={shared}",
            "--set",
            "overrides=[training.epochs=1]",
            "--set",
            "pretrain.overrides=[training.epochs=1]",
            "--set",
            "axes={train_fraction: {key: data.train_fraction, values: [1.0, 0.5]}}",
            "--set",
            "experts.data_fractions=[1.0, 0.5]",
        ],
    )
    assert result.exit_code == 0, result.output
    study = root / "mmpt_mixture"
    results = json.loads((study / "results.json").read_text())
    assert all(r["status"] == "completed" for r in results["runs"]), [r["error"] for r in results["runs"]]
    analysis = json.loads((study / "analysis.json").read_text())
    fusion = {(r["axes"]["train_fraction"], r["seed"]): r for r in results["runs"] if r["kind"] == "fusion"}
    experts = {}
    for run in (r for r in results["runs"] if r["kind"] == "pretrain"):
        config = (study / run["run_dir"] / "config.yaml").read_text()
        fraction = 0.5 if "data_fraction: 0.5" in config else 1.0
        experts[(run["modality"], fraction, run["seed"])] = run
    (grid,) = analysis["mixture"]
    assert [(p["train_missing"], p["test_missing"]) for p in grid["panels"]] == [
        ("audio", "audio"),
        ("audio", "image"),
        ("image", "audio"),
        ("image", "image"),
    ]
    for panel in grid["panels"]:
        assert panel["p_train"] == [0.0, 0.5] and panel["n"] == [2, 2]
        for row, p_train in enumerate(panel["p_train"]):
            left = panel["remaining"]  # the modality left at test time; its expert's fraction (App. B):
            fraction = 1 - p_train if left == panel["train_missing"] else 1.0
            assert panel["expert_fraction"][row] == fraction
            for column, p_test in enumerate(grid["p_test"]):
                by_hand = [
                    (1 - p_test) * fusion[(1 - p_train, s)]["test"]["audio+image"]["accuracy"]
                    + p_test * experts[(left, fraction, s)]["test"][left]["accuracy"]
                    for s in (0, 1)
                ]
                assert panel["values"][row][column] == pytest.approx(sum(by_hand) / 2, abs=1e-6)
    # the weakness score (Definition 3): the ratio of the probes' training losses, mean over seeds
    (full_group,) = [g for g in analysis["groups"] if g["name"] == "naive|train_fraction=1.0"]
    ratios = []
    for seed in (0, 1):
        probes = json.loads((study / fusion[(1.0, seed)]["run_dir"] / "probe_metrics.json").read_text())["probes"]
        ratios.append(probes["audio"]["train_loss"] / probes["image"]["train_loss"])
    weakness = full_group["mmpt_weakness"]["weakness"]["audio vs image"]
    assert weakness["summary"]["mean"] == pytest.approx(sum(ratios) / 2) and weakness["summary"]["n"] == 2
    # headroom (fusebench's score) from the saved logits: (full - only m) / (full - chance)
    saved = load_file(str(study / fusion[(1.0, 0)]["run_dir"] / "test_logits.safetensors"))
    target, constant = saved["target"], saved["constant"]
    chance = float((target == constant.argmax()).float().mean())
    accuracy = {p: float((saved[f"logits/{p}"].argmax(1) == target).float().mean()) for p in ["audio+image", *NAMES]}
    above = accuracy["audio+image"] - chance
    expected = (accuracy["audio+image"] - accuracy["audio"]) / above if above > 0 else math.nan
    got = full_group["mmpt_weakness"]["headroom"]["audio"]["per_seed"].get("0")
    assert (got is None and math.isnan(expected)) or got == pytest.approx(expected)
    # Best-Fusion (004 Sec. 4.5) only chooses among models trained on the whole training split
    best = analysis["best_fusion"]
    assert best["training_fraction"] == 1.0 and best["naive"] == "naive|train_fraction=1.0"
    assert set(best["choices"]) == {"audio+image", "audio", "image"}

    # by hand: per pattern, the candidate with the best seed-mean accuracy among the fraction-1.0 models --
    # the naive group for every pattern, the expert of m for the pattern `m` alone
    def mean_accuracy(runs: list[dict[str, Any]], pattern: str) -> float:
        return sum(r["test"][pattern]["accuracy"] for r in runs) / len(runs)

    naive_runs = {s: fusion[(1.0, s)] for s in (0, 1)}
    chosen = {"audio+image": ("naive|train_fraction=1.0", naive_runs)}
    for m in NAMES:
        expert_runs = {s: experts[(m, 1.0, s)] for s in (0, 1)}
        naive_mean, expert_mean = (mean_accuracy(list(runs.values()), m) for runs in (naive_runs, expert_runs))
        chosen[m] = (f"expert:{m}", expert_runs) if expert_mean > naive_mean else chosen["audio+image"]
    assert {p: c["source"] for p, c in best["choices"].items()} == {p: c[0] for p, c in chosen.items()}
    # its curve when m goes missing: (1 - p) * the full-pattern model's accuracy + p * the model chosen for the
    # pattern without m (stochastic logit fusion, exact for accuracy), averaged over seeds
    for m in NAMES:
        rest = next(o for o in NAMES if o != m)
        by_hand = [
            sum(
                (1 - p) * naive_runs[s]["test"]["audio+image"]["accuracy"]
                + p * chosen[rest][1][s]["test"][rest]["accuracy"]
                for s in (0, 1)
            )
            / 2
            for p in best["curves"][m]["p_test"]
        ]
        assert best["curves"][m]["mean"] == pytest.approx(by_hand, abs=1e-6)
    report = (study / "report.md").read_text()
    for heading in (
        "## Mixture of models (MMPT Appendix B, Figure 4)",
        "## Best-Fusion (MMPT section 4.5)",
        "## MMPT profile and modality weakness",
        "W(audio vs image)",
    ):
        assert heading in report
    assert "exactly (1 − p_test)" in report and (study / "figures" / "mixture_0.png").is_file()
    assert (study / "figures" / "best_fusion.png").is_file()
