"""Linear probes of finished runs on real AV-digits data, expert gaps, encoder export and the CLI."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from typer.testing import CliRunner

from fusebench.cli import app
from fusebench.config import validate_config
from fusebench.engine.datasets import load_splits
from fusebench.engine.linear_probe import fit_linear_probe
from fusebench.engine.probe import (
    PROBE_FILE,
    export_encoders,
    load_trained_run,
    parse_experts,
    probe_run,
)
from fusebench.engine.run import RunResult, execute_run
from fusebench.models.weights import load_encoder, read_encoder_metadata

CHANCE = 0.1
TOLERANCE = 0.05  # 100 test samples: one sample is 0.01


def raw_config(runs_dir: Path, pretrain: str | None = None) -> dict[str, Any]:
    encoders = {
        "audio": {"kind": "cnn", "out_dim": 32, "widths": [8, 16]},
        "image": {"kind": "cnn", "out_dim": 32, "widths": [8, 16]},
    }
    raw: dict[str, Any] = {
        "experiment": {"name": "probe", "seed": 0, "runs_dir": str(runs_dir), "threads": 1},
        "data": {"limit": {"train": 300, "validation": 100, "test": 100}, "batch_size": 64},
        "model": {"encoders": encoders, "fusion": {"type": "late", "method": "concat", "hidden_dim": 64}},
        "training": {"epochs": 2, "optimizer": {"lr": 0.003}, "strategy": {"aux_heads": {"audio": 0.3}}},
        "logging": {"progress_bar": False},
    }
    if pretrain is not None:
        raw["model"]["encoders"] = {pretrain: encoders[pretrain]}
        raw["pretrain"] = {"modality": pretrain}
        raw["training"] = {"epochs": 1, "optimizer": {"lr": 0.003}}
    return raw


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, RunResult]:
    """A 2-epoch multimodal run (with an auxiliary head in its checkpoint) and a 1-epoch audio expert."""
    root = tmp_path_factory.mktemp("probe")
    config = validate_config(raw_config(root))
    data = load_splits(config.data, ("audio", "image"), seed=0)
    expert = validate_config(raw_config(root, pretrain="audio"))
    return {
        "multimodal": execute_run(config, root / "mm", data=data),
        "audio": execute_run(expert, root / "expert", data=load_splits(expert.data, ("audio",), seed=0)),
    }


@pytest.fixture(scope="module")
def probed(runs: dict[str, RunResult]) -> dict[str, Any]:
    return probe_run(runs["multimodal"].run_dir, {"audio": runs["audio"].run_dir})


def test_probe_metrics_written_and_concatenation_at_least_each_modality(
    runs: dict[str, RunResult], probed: dict[str, Any]
) -> None:
    assert json.loads((runs["multimodal"].run_dir / PROBE_FILE).read_text()) == json.loads(json.dumps(probed))
    probes = probed["probes"]
    assert list(probes) == ["audio", "image", "audio+image"]
    assert [probes[n]["dim"] for n in probes] == [32, 32, 64]
    accuracy = {name: entry["test"]["accuracy"] for name, entry in probes.items()}
    assert accuracy["audio+image"] >= max(accuracy["audio"], accuracy["image"]) - TOLERANCE, accuracy
    assert accuracy["audio+image"] > CHANCE + 0.3, accuracy
    assert all(
        entry["test"]["count"] == 100 and entry["l2"] in probed["protocol"]["l2_grid"] for entry in probes.values()
    )


def test_expert_gaps_are_the_differences_of_the_test_metrics(
    runs: dict[str, RunResult], probed: dict[str, Any]
) -> None:
    expert = runs["audio"].test_metrics["audio"]
    entry = probed["experts"]["audio"]
    assert entry["test"] == expert
    pattern = runs["multimodal"].test_metrics["audio"]
    for metric in ("accuracy", "f1_macro"):
        assert entry["gap"][metric] == pytest.approx(pattern[metric] - expert[metric])
        assert entry["probe_gap"][metric] == pytest.approx(probed["probes"]["audio"]["test"][metric] - expert[metric])


def test_probe_of_a_pretraining_run_has_its_one_modality(runs: dict[str, RunResult]) -> None:
    result = probe_run(runs["audio"].run_dir)
    assert list(result["probes"]) == ["audio"] and result["experts"] == {}
    # A 1-epoch expert on 300 noisy recordings: its probe fits the training features below the
    # uniform predictor's loss ln(10) and predicts the test set above chance (seeds give 0.16-0.31).
    probe = result["probes"]["audio"]
    assert probe["train_loss"] < 0.95 * math.log(10) and probe["test"]["accuracy"] > CHANCE, probe


def test_export_encoders_writes_the_checkpoint_encoders(runs: dict[str, RunResult]) -> None:
    run_dir = runs["multimodal"].run_dir
    loaded = load_trained_run(run_dir)
    paths = export_encoders(run_dir, loaded=loaded)
    assert set(paths) == {"audio", "image"}
    for modality, path in paths.items():
        fresh = load_trained_run(run_dir).model.encoders[modality]
        for parameter in fresh.parameters():
            torch.nn.init.zeros_(parameter)
        load_encoder(fresh, path, modality)
        for key, value in loaded.model.encoders[modality].state_dict().items():
            torch.testing.assert_close(fresh.state_dict()[key], value)
        metadata = read_encoder_metadata(path)
        assert metadata["source_run"] == str(run_dir) and float(metadata["pretraining_seconds"]) > 0


def test_experts_must_be_pretraining_runs_of_that_modality_on_the_same_data(
    runs: dict[str, RunResult], tmp_path: Path
) -> None:
    loaded = load_trained_run(runs["multimodal"].run_dir)
    with pytest.raises(ValueError, match="must be a `fusebench pretrain` run of `image`"):
        probe_run(loaded.run_dir, {"image": runs["audio"].run_dir}, loaded=loaded)
    other = tmp_path / "other"
    shutil.copytree(runs["audio"].run_dir, other, ignore=shutil.ignore_patterns("checkpoints"))
    config = yaml.safe_load((other / "config.yaml").read_text())
    config["data"]["limit"]["test"] = 50
    (other / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(ValueError, match="tested on other data: `data.limit`"):
        probe_run(loaded.run_dir, {"audio": other}, loaded=loaded)
    with pytest.raises(ValueError, match="MODALITY=RUN_DIR"):
        parse_experts(["audio"])


def test_cli_probe_rewrites_the_same_deterministic_probes_and_rejects_a_bad_expert(
    runs: dict[str, RunResult], probed: dict[str, Any]
) -> None:
    runner = CliRunner()
    run_dir = runs["multimodal"].run_dir
    (run_dir / PROBE_FILE).unlink()
    ok = runner.invoke(app, ["probe", str(run_dir), "--expert", f"audio={runs['audio'].run_dir}"])
    assert ok.exit_code == 0, ok.output
    assert "audio+image" in ok.output and "probe gap" in ok.output
    assert json.loads((run_dir / PROBE_FILE).read_text())["probes"] == json.loads(json.dumps(probed["probes"]))
    bad = runner.invoke(app, ["probe", str(run_dir), "--expert", "audio"])
    assert bad.exit_code == 2 and "MODALITY=RUN_DIR" in bad.output


def test_mmpt_profile_is_written_from_the_runs_test_metrics(runs: dict[str, RunResult], probed: dict[str, Any]) -> None:
    profile = probed["mmpt_profile"]["accuracy"]
    metrics = runs["multimodal"].test_metrics
    assert profile["full"] == pytest.approx(metrics["audio+image"]["accuracy"], abs=1e-6)
    assert profile["unimodal"]["audio"] == pytest.approx(metrics["audio"]["accuracy"], abs=1e-6)
    expected = (profile["full"] - profile["unimodal"]["image"]) / (profile["full"] - profile["chance"])
    assert profile["headroom"]["image"] == pytest.approx(expected)


def test_weakness_score_is_the_ratio_of_probe_train_losses(runs: dict[str, RunResult], probed: dict[str, Any]) -> None:
    """MMPT Definition 3: W(audio vs image) = CE of the audio probe on train / CE of the image probe on train."""
    loaded = load_trained_run(runs["multimodal"].run_dir)
    train = loaded.data.train
    with torch.no_grad():
        features = loaded.model.encode(train.inputs)
    losses = {}
    for m in ("audio", "image"):  # each probe is fitted on standardised training features
        z = features[m]
        z = (z - z.mean(dim=0)) / z.std(dim=0).clamp(min=1e-6)
        entry = probed["probes"][m]
        linear = fit_linear_probe(z, train.target, loaded.data.task, entry["l2"])
        losses[m] = float(torch.nn.functional.cross_entropy(linear(z), train.target))
        assert entry["train_loss"] == pytest.approx(losses[m], rel=1e-4)
    assert probed["weakness"]["audio"]["image"] == pytest.approx(losses["audio"] / losses["image"], rel=1e-4)
    assert probed["weakness"]["image"]["audio"] == pytest.approx(losses["image"] / losses["audio"], rel=1e-4)


def test_mmpt_profile_from_probes_sits_beside_the_fused_heads(probed: dict[str, Any]) -> None:
    """MMPT section 3.2 steps 2-3: unimodal numbers from the unimodal probes, full from the concatenation probe."""
    profile = probed["mmpt_profile_probes"]["accuracy"]
    assert profile["full"] == probed["probes"]["audio+image"]["test"]["accuracy"]
    assert profile["unimodal"] == {m: probed["probes"][m]["test"]["accuracy"] for m in ("audio", "image")}
    assert set(probed["mmpt_profile_probes"]) == set(probed["mmpt_profile"]) | {"loss"}


def test_probe_enabled_in_the_config_probes_after_testing(tmp_path: Path) -> None:
    raw = raw_config(tmp_path)
    raw["training"] = {"epochs": 1}
    raw["probe"] = {"enabled": True}
    result = execute_run(validate_config(raw), tmp_path / "probed")
    written = json.loads((result.run_dir / PROBE_FILE).read_text())
    assert set(written["weakness"]) == {"audio", "image"} and written["primary_metric"] == "accuracy"
