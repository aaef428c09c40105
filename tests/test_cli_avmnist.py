"""AV-MNIST end to end through the command line: a folder fusebench has never seen, the shipped configs.

The folder is AV-digits written by ``fusebench data export avdigits --format avmnist`` (the
session fixture ``avmnist_export``), so fusebench knows nothing about it but its MultiBench layout.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from tests._helpers.avmnist import save, write_avmnist
from typer.testing import CliRunner

from fusebench.cli import app
from fusebench.config import dump_config, load_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
runner = CliRunner()


def _one_paragraph(output: str) -> str:
    return " ".join(output.split())


@pytest.mark.parametrize("path", sorted((CONFIGS / "avmnist").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_validate_and_round_trip(path: Path, tmp_path: Path) -> None:
    config = load_config(path)
    assert config.data.dataset == "avmnist" and config.data.root is None  # data.root or $FUSEBENCH_DATA
    dumped = tmp_path / "resolved.yaml"
    dumped.write_text(dump_config(config))
    assert load_config(dumped) == config


def test_pretraining_configs_build_the_fusion_encoders() -> None:
    fusion = load_config(CONFIGS / "avmnist" / "late_fusion.yaml")
    for modality in ("audio", "image"):
        pretrain = load_config(CONFIGS / "avmnist" / f"pretrain_{modality}.yaml")
        assert pretrain.model.encoders[modality] == fusion.model.encoders[modality]  # its weights load there
    resnet = load_config(CONFIGS / "avmnist" / "resnet_late_fusion.yaml")  # the thesis, section 7.1.1
    assert (resnet.model.encoders["audio"].kind, resnet.model.encoders["audio"].out_dim) == ("resnet18", 64)
    assert (resnet.model.encoders["image"].kind, resnet.model.encoders["image"].out_dim) == ("resnet34", 128)


@pytest.mark.slow
def test_shipped_late_fusion_beats_either_modality_on_an_unseen_folder(avmnist_export: Path, tmp_path: Path) -> None:
    # Overrides: where the data is, how much of it, how many epochs; nothing about the model.
    result = runner.invoke(
        app,
        [
            "train",
            str(CONFIGS / "avmnist" / "late_fusion.yaml"),
            f"data.root={avmnist_export}",
            "data.limit={test: 300}",
            "training.epochs=5",
            f"experiment.runs_dir={tmp_path}",
            "--run-id",
            "1",
            "--disable-monitoring",
            "logging.progress_bar=false",
        ],
    )
    assert result.exit_code == 0, result.output
    run_dir = tmp_path / "avmnist_late_fusion" / "1"
    test = json.loads((run_dir / "test_metrics.json").read_text())
    assert set(test) == {"audio+image", "audio", "image"}  # all 2^2 - 1 patterns evaluated
    fused, audio, image = (test[p]["accuracy"] for p in ("audio+image", "audio", "image"))
    assert fused > max(audio, image), test
    assert fused > 0.3, test  # far above the 0.1 of chance on 300 test pairs
    data = json.loads((run_dir / "data.json").read_text())
    assert (data["dataset"], data["samples"]) == ("avmnist", {"train": 660, "validation": 60, "test": 300})


@pytest.mark.slow
def test_shipped_pretrain_vs_scratch_study_runs_on_avmnist(avmnist_export: Path, tmp_path: Path) -> None:
    # The shipped spec as is, pointed at the AV-MNIST config; only where the data is, a tiny size, one seed.
    shared = f"shared_overrides=[data.root={avmnist_export}, 'data.limit={{train: 120, validation: 40, test: 100}}']"
    result = runner.invoke(
        app,
        [
            "study",
            str(CONFIGS / "studies" / "pretrain_vs_scratch.yaml"),
            "--base",
            str(CONFIGS / "avmnist" / "late_fusion.yaml"),
            "--name",
            "avmnist_pretraining",
            "--root",
            str(tmp_path / "studies"),
            "--set",
            "seeds=[0]",
            "--set",
            "overrides=[training.epochs=1]",
            "--set",
            "pretrain.overrides=[training.epochs=1]",
            "--set",
            shared,
        ],
    )
    assert result.exit_code == 0, result.output
    study = tmp_path / "studies" / "avmnist_pretraining"
    results = json.loads((study / "results.json").read_text())
    assert results["conditions"] == ["scratch", "pretrained", "audio_scratch", "image_scratch"]
    assert all(r["status"] == "completed" for r in results["runs"]), [r.get("error") for r in results["runs"]]
    assert sorted(r["modality"] for r in results["runs"] if r["kind"] == "pretrain") == ["audio", "image"]
    fusion = [r for r in results["runs"] if r["kind"] == "fusion"]
    assert len(fusion) == 4 and all(set(r["test"]) == {"audio+image", "audio", "image"} for r in fusion)
    assert results["analysis"]["primary_metric"] == "accuracy"
    report = (study / "report.md").read_text()
    assert "pretrained" in report and "scratch" in report


def test_train_on_a_wrong_folder_is_one_paragraph_and_exit_2(tmp_path: Path) -> None:
    arrays = write_avmnist(tmp_path / "avmnist")
    save(tmp_path / "avmnist" / "audio" / "train_data.npy", arrays["audio/train_data.npy"][:, :, :100])
    result = runner.invoke(
        app,
        [
            "train",
            str(CONFIGS / "avmnist" / "late_fusion.yaml"),
            f"data.root={tmp_path / 'avmnist'}",
            f"experiment.runs_dir={tmp_path / 'runs'}",
        ],
    )
    assert result.exit_code == 2, result.output
    text = _one_paragraph(result.output)
    assert "Traceback" not in result.output
    assert re.search(r"audio/train_data.npy` has shape \(24, 112, 100\); expected N x 112 x 112", text), text


def test_train_without_a_folder_names_the_path_and_the_layout(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "train",
            str(CONFIGS / "avmnist" / "late_fusion.yaml"),
            f"data.root={tmp_path / 'missing'}",
            f"experiment.runs_dir={tmp_path / 'runs'}",
        ],
    )
    assert result.exit_code == 2, result.output
    text = _one_paragraph(result.output)
    assert f"AV-MNIST not found: `{tmp_path / 'missing'}` does not exist" in text
    assert "audio/{train,test}_data.npy (N x 112 x 112)" in text and "Traceback" not in result.output


def test_data_prepare_reads_and_checks_a_folder(tmp_path: Path) -> None:
    write_avmnist(tmp_path, n_train=36, n_test=5, dtype="float32", image_shape="square")
    result = runner.invoke(app, ["data", "prepare", "avmnist", "--root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "train 33, validation 3, test 5" in _one_paragraph(result.output)
    save(tmp_path / "test_labels.npy", np.arange(5) + 6)
    failed = runner.invoke(app, ["data", "prepare", "avmnist", "--root", str(tmp_path)])
    assert failed.exit_code == 2 and "test_labels.npy` holds 1 labels outside 0-9 (found [10])" in _one_paragraph(
        failed.output
    )
