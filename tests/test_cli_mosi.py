"""The shipped configs/mosi and configs/mosei configs through the CLI, on small pickles in both layouts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tests._helpers.mosi_files import make_multibench, strip_private, write_mmsa, write_multibench, write_pickle
from typer.testing import CliRunner

from fusebench.cli import app
from fusebench.tasks import metric_names

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs" / "mosi").glob("*.yaml")) + sorted((ROOT / "configs" / "mosei").glob("*.yaml"))
PATTERNS = ["audio+text+vision", "audio+text", "audio+vision", "text+vision", "audio", "text", "vision"]
SMALL = {"train": 24, "valid": 8, "test": 12}
runner = CliRunner()


def _quick(tmp_path: Path) -> list[str]:
    return [f"experiment.runs_dir={tmp_path / 'runs'}", "logging.progress_bar=false", "--disable-monitoring"]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shipped_config_builds_on_a_multibench_pickle(tmp_path: Path, config: Path) -> None:
    name = "mosei_senti_data.pkl" if config.parent.name == "mosei" else "mosi_raw.pkl"
    write_multibench(tmp_path, name=name, sizes=SMALL)
    command = "pretrain" if config.name.startswith("pretrain_") else "train"
    result = runner.invoke(app, [command, str(config), "--dry-run", f"data.root={tmp_path}", *_quick(tmp_path)])
    assert result.exit_code == 0, result.output
    assert f"dataset `{config.parent.name}`: task {{'kind': 'regression'" in result.output
    assert "train/validation/test samples: 24/8/12" in result.output


@pytest.mark.parametrize(
    ("aligned", "extra"),
    [(True, []), (False, []), (False, ["data.text_field=text_bert", "model.encoders.text.vocab_size=30522"])],
    ids=["mmsa-aligned", "mmsa-unaligned", "mmsa-text_bert"],
)
def test_the_mosi_config_reads_mmsa_pickles(tmp_path: Path, aligned: bool, extra: list[str]) -> None:
    path, _ = write_mmsa(tmp_path, aligned=aligned, sizes=SMALL)
    result = runner.invoke(
        app,
        [
            "train",
            str(ROOT / "configs/mosi/late_fusion.yaml"),
            "--dry-run",
            f"data.root={tmp_path}",
            f"data.file={path.name}",
            *extra,
            *_quick(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    steps = "(50, 5)" if aligned else "(375, 5)"
    assert f"'audio': {steps}" in result.output


@pytest.mark.slow
def test_train_from_the_shipped_config_evaluates_all_seven_patterns(tmp_path: Path) -> None:
    write_multibench(tmp_path, sizes={"train": 64, "valid": 16, "test": 24})
    config = str(ROOT / "configs/mosi/late_fusion.yaml")
    common = [f"data.root={tmp_path}", "training.epochs=2", *_quick(tmp_path)]
    pre = runner.invoke(app, ["pretrain", str(ROOT / "configs/mosi/pretrain_text.yaml"), "--run-id", "p", *common])
    assert pre.exit_code == 0, pre.output
    encoder = tmp_path / "runs" / "mosi_pretrain_text" / "p" / "encoders" / "text.safetensors"
    assert encoder.is_file()
    result = runner.invoke(app, ["train", config, "--run-id", "r", f"model.pretrained.text={encoder}", *common])
    assert result.exit_code == 0, result.output
    run_dir = tmp_path / "runs" / "mosi_late_fusion" / "r"
    metrics = json.loads((run_dir / "test_metrics.json").read_text())
    assert list(metrics) == PATTERNS
    names = set(metric_names("regression"))
    assert all(names | {"loss", "count"} == set(metrics[p]) and metrics[p]["count"] == 24 for p in PATTERNS)
    data = json.loads((run_dir / "data.json").read_text())
    assert data["task"]["kind"] == "regression" and data["metrics"]["primary"] == "mae"
    assert all(0.0 <= metrics[p]["mae"] <= 6.0 and 0.0 <= metrics[p]["acc7"] <= 1.0 for p in PATTERNS)
    # the text carries the label in these files: with the text the fused model beats the constant predictor
    constant = data["constant_output"][0]
    labels = make_multibench(sizes={"train": 64, "valid": 16, "test": 24})["test"]["labels"].reshape(-1)
    assert metrics["audio+text+vision"]["mae"] < float(np.abs(labels - constant).mean())


def _break(kind: str, tmp_path: Path) -> tuple[str, str]:
    """Write a wrong file; return (its file name, a phrase the error must contain)."""
    data = strip_private(make_multibench(sizes=SMALL))
    if kind == "missing_file":
        return "absent.pkl", "found nothing there"
    if kind == "object":
        data["train"]["id"] = Path("clip.mp4")
        phrase = "references the global `pathlib"
    elif kind == "missing_key":
        del data["test"]["vision"]
        phrase = "missing ['vision']"
    elif kind == "ragged_counts":
        data["valid"]["labels"] = data["valid"]["labels"][:5]
        phrase = "same number of samples in every key"
    elif kind == "wrong_dims":
        data["train"]["text"] = data["train"]["text"].reshape(24, -1)
        phrase = "to be a numeric array of shape [N, T, F], got float64 of shape (24, 15000)"
    else:  # label out of range
        data["train"]["labels"][5] = -7.0
        phrase = "finite sentiment scores in [-3, 3], got 1 outside it (first: sample 5, value -7.0)"
    write_pickle(tmp_path / "mosi_raw.pkl", data)
    return "mosi_raw.pkl", phrase


@pytest.mark.parametrize("kind", ["missing_file", "object", "missing_key", "ragged_counts", "wrong_dims", "label"])
def test_a_wrong_file_is_one_paragraph_and_exit_code_2(tmp_path: Path, kind: str) -> None:
    name, phrase = _break(kind, tmp_path)
    result = runner.invoke(
        app,
        [
            "train",
            str(ROOT / "configs/mosi/late_fusion.yaml"),
            f"data.root={tmp_path}",
            f"data.file={name}",
            *_quick(tmp_path),
        ],
    )
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())  # rich may wrap the paragraph to the terminal width
    assert text.startswith("error: ") and phrase in text and str(tmp_path / name) in text
    assert "Traceback" not in result.output
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("test_metrics.json"))


def test_without_root_or_fusebench_data_the_error_says_where_to_put_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FUSEBENCH_DATA", raising=False)
    result = runner.invoke(app, ["train", str(ROOT / "configs/mosi/late_fusion.yaml"), *_quick(tmp_path)])
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "set `data.root=/folder/with/it`" in text and "$FUSEBENCH_DATA/mosi/mosi_raw.pkl" in text


@pytest.mark.parametrize(("task", "classes"), [("classification3", 3), ("classification2", 2)])
def test_the_mosi_config_trains_the_thesis_classes_by_override(tmp_path: Path, task: str, classes: int) -> None:
    write_multibench(tmp_path, sizes=SMALL)
    result = runner.invoke(
        app,
        [
            "train",
            str(ROOT / "configs/mosi/late_fusion.yaml"),
            "--dry-run",
            f"data.root={tmp_path}",
            f"data.task={task}",
            *_quick(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert f"task {{'kind': 'multiclass', 'output_size': {classes}, 'loss': 'cross_entropy'" in text
    assert "(primary accuracy)" in text
