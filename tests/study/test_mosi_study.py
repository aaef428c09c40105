"""A tiny `fusebench study` on MOSI pickles: the report reads MAE as lower-is-better throughout."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from tests._helpers.mosi_files import write_multibench
from typer.testing import CliRunner

from fusebench.cli import app

ROOT = Path(__file__).resolve().parents[2]
SEEDS = [0, 1, 2]


def _spec(tmp_path: Path) -> Path:
    """Two conditions that must differ: the same model trained, and barely trained (lr 1e-7)."""
    spec = {
        "study": {
            "name": "mosi_mae",
            "question": "Does training lower the test MAE on MOSI?",
            "base": str(ROOT / "configs" / "mosi" / "late_fusion.yaml"),
            "overrides": ["training.epochs=3", "training.optimizer.lr=0.003"],
            "shared_overrides": [
                f"data.root={tmp_path}",
                "logging.progress_bar=false",
                "model.encoders.text.hidden=32",
                "model.encoders.audio.hidden=8",
                "model.encoders.vision.hidden=8",
            ],
            "seeds": SEEDS,
            "conditions": {"untrained": {"overrides": ["training.optimizer.lr=0.0000001"]}, "trained": {}},
            "analysis": {"threshold": 0.9, "baseline": "untrained"},
        }
    }
    path = tmp_path / "mosi_mae.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.mark.slow
def test_mosi_study_report_treats_a_lower_mae_as_the_improvement(tmp_path: Path) -> None:
    write_multibench(tmp_path, sizes={"train": 64, "valid": 16, "test": 24})
    root = tmp_path / "studies"
    result = CliRunner().invoke(app, ["study", str(_spec(tmp_path)), "--root", str(root), "--workers", "2"])
    assert result.exit_code == 0, result.output
    study = root / "mosi_mae"
    results = json.loads((study / "results.json").read_text())
    analysis = json.loads((study / "analysis.json").read_text())
    assert results["analysis"]["primary_metric"] == "mae" and analysis["higher_is_better"] is False
    assert len(results["patterns"]) == 7

    # the numbers the report compares are the runs' own test MAEs
    mae = {
        c: [r["test"]["audio+text+vision"]["mae"] for r in results["runs"] if r["condition"] == c]
        for c in ("untrained", "trained")
    }
    assert all(len(v) == len(SEEDS) for v in mae.values())
    head = next(c for c in analysis["comparisons"] if c["kind"] == "test" and c["pattern"] == "audio+text+vision")
    assert (head["group_a"], head["group_b"]) == ("untrained", "trained")
    assert head["mean_diff"] == pytest.approx(float(np.mean(mae["trained"]) - np.mean(mae["untrained"])), abs=1e-9)
    assert head["mean_diff"] < 0 and head["higher_is_better"] is False  # training lowers the MAE

    report = (study / "report.md").read_text()
    assert "primary metric mae (lower is better)" in report
    assert "epochs to mae ≤ 0.9" in report  # reaching the threshold means going below it
    verdict = report.split("## Verdict", 1)[1].split("##", 1)[0]
    assert head["p_holm"] < 0.05  # a drop of ~0.8 in MAE on every seed
    assert "trained is lower than untrained (better for this quantity)" in verdict
    assert "(better" not in verdict.replace("lower than untrained (better", "")
    # epochs to threshold: the trained runs get below 0.9 on validation within 3 epochs, the untrained never do
    assert re.search(r"^\| trained \| \d \(3/3 reached\) \|", report, flags=re.MULTILINE)
    assert "| untrained | >3 (censored 3/3)" in report
    # % change against the baseline: negative = lower MAE = the improvement; no "efficiency" (mae per second
    # would rank the worse model as more efficient)
    assert "lower mae is better, so a negative change is an improvement" in report
    assert re.search(r"^\| trained \| 3 \| untrained \| -\d", report, flags=re.MULTILINE)
    assert all(v is None for g in analysis["groups"] for v in g["efficiency"].values())
    assert re.search(r"^\| trained \| 3 \| – \| 0\.\d{4} ± ", report, flags=re.MULTILINE)
    assert "efficiency" not in (study / "results.csv").read_text()
    untrained = [
        r["curves"]["validation"]["audio+text+vision"]["mae"] for r in results["runs"] if r["condition"] == "untrained"
    ]
    assert min(min(curve) for curve in untrained) > 0.9
