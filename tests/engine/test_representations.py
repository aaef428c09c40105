"""``fusebench analyze`` on real tiny runs: a pre-training, a scratch run and runs fine-tuned from its encoder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from tests._helpers.runs import tiny_config, tiny_pretrain_config
from typer.testing import CliRunner

from fusebench.cli import app
from fusebench.engine.analyze import analyze_runs
from fusebench.engine.cka import linear_cka
from fusebench.engine.probe import load_trained_run, split_embeddings
from fusebench.engine.representation_views import analyse_run, locate_pretrained
from fusebench.engine.representations import REPRESENTATIONS_FILE
from fusebench.engine.run import execute_run
from fusebench.models.weights import load_encoder

EPOCHS = ["training.epochs=2"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An audio pre-training, a scratch fusion run, one fine-tuned from the audio encoder, one with it frozen."""
    root = tmp_path_factory.mktemp("representations")
    pre = execute_run(tiny_pretrain_config(root, "audio", EPOCHS), root / "pre_audio").run_dir
    weights = f"model.pretrained.audio={pre / 'encoders' / 'audio.safetensors'}"
    return {
        "pre_audio": pre,
        "scratch": execute_run(tiny_config(root, EPOCHS), root / "scratch").run_dir,
        "pretrained": execute_run(tiny_config(root, [*EPOCHS, weights]), root / "pretrained").run_dir,
        "frozen": execute_run(
            tiny_config(root, [*EPOCHS, weights, "model.freeze.audio=true"]), root / "frozen"
        ).run_dir,
    }


@pytest.fixture(scope="module")
def analysed(runs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    out = tmp_path_factory.mktemp("analysis")
    return out, analyze_runs([runs["scratch"], runs["pretrained"]], out, methods=["pca"], max_points=200)


def _cka(result: dict[str, object], a: str, b: str) -> float:
    pairs = {(p["a"], p["b"]): p["cka"] for p in result["cka"]}  # type: ignore[attr-defined]
    return float(pairs.get((a, b), pairs.get((b, a))))


def test_views_pairs_and_files_of_a_scratch_and_a_pretrained_run(analysed: tuple[Path, dict[str, object]]) -> None:
    out, result = analysed
    assert json.loads((out / REPRESENTATIONS_FILE).read_text()) == json.loads(json.dumps(result))
    keys = [v["key"] for v in result["views"]]  # type: ignore[attr-defined]
    assert keys == [
        "scratch/audio",
        "scratch/image",
        "pretrained/audio@pretrained",
        "pretrained/audio",
        "pretrained/image",
    ]
    relations = {(p["a"], p["b"]): p["relation"] for p in result["cka"]}  # type: ignore[attr-defined]
    assert relations[("pretrained/audio@pretrained", "pretrained/audio")] == "before_vs_after"
    assert relations[("scratch/audio", "pretrained/audio")] == "across_runs"
    assert len(relations) == 4  # 3 audio pairs + 1 image pair; no pair across modalities
    assert all(0.0 < p["cka"] <= 1.0 for p in result["cka"])  # type: ignore[attr-defined]
    figures = sorted(p.name for p in (out / "figures").glob("*.png"))
    assert figures == ["cka_audio.png", "cka_image.png", "projection_audio.png", "projection_image.png"]
    assert result["figures"]["projection_audio"]["samples"] == 200  # type: ignore[index]
    matrix = result["cka_matrices"]["audio"]  # type: ignore[index]
    assert matrix["labels"][1] == "pretrained/audio@pretrained" and matrix["matrix"][1][1] == 1.0
    assert matrix["matrix"][1][2] == pytest.approx(_cka(result, "pretrained/audio@pretrained", "pretrained/audio"))


def test_before_view_is_the_pretrained_file_and_cka_recomputes(
    runs: dict[str, Path], analysed: tuple[Path, dict[str, object]]
) -> None:
    """Recompute both audio embeddings independently: the file loaded into a fresh encoder, and the checkpoint."""
    _, result = analysed
    loaded = load_trained_run(runs["pretrained"])
    after = split_embeddings(loaded.model, loaded.data.test, 256)["audio"]
    load_encoder(loaded.model.encoders["audio"], runs["pre_audio"] / "encoders" / "audio.safetensors", "audio")
    before = split_embeddings(loaded.model, loaded.data.test, 256)["audio"]
    assert not torch.allclose(before, after)  # fine-tuning moved the encoder
    assert _cka(result, "pretrained/audio@pretrained", "pretrained/audio") == pytest.approx(
        linear_cka(before, after), abs=1e-9
    )


def test_pretraining_run_encoder_equals_the_file_it_exported(runs: dict[str, Path], tmp_path: Path) -> None:
    """The pre-training run's trained audio encoder is the file the fine-tuned run loaded: CKA 1, same probe."""
    result = analyze_runs([runs["pre_audio"], runs["pretrained"]], tmp_path, methods=["pca"], max_points=100)
    assert _cka(result, "pre_audio/audio", "pretrained/audio@pretrained") == pytest.approx(1.0, abs=1e-9)
    probes = result["probes"]
    assert probes["pre_audio/audio"]["test"] == probes["pretrained/audio@pretrained"]["test"]
    assert result["runs"][0]["kind"] == "pretrain" and result["runs"][1]["pretrained"]


def test_a_frozen_encoder_is_unchanged_by_fine_tuning(runs: dict[str, Path], tmp_path: Path) -> None:
    result = analyze_runs([runs["frozen"]], tmp_path, methods=["pca"], probes=False)
    assert _cka(result, "frozen/audio@pretrained", "frozen/audio") == pytest.approx(1.0, abs=1e-9)
    assert [v["frozen"] for v in result["views"]] == [True, True, False]
    assert result["probes"] == {}


def test_runs_on_other_test_samples_are_not_compared(runs: dict[str, Path], tmp_path: Path) -> None:
    other = Path(shutil.copytree(runs["scratch"], tmp_path / "fewer"))
    config = yaml.safe_load((other / "config.yaml").read_text())
    config["data"]["limit"]["test"] = 150
    (other / "config.yaml").write_text(yaml.safe_dump(config))
    result = analyze_runs([runs["scratch"], other], tmp_path / "out", methods=["pca"], probes=False)
    across = [p for p in result["cka"] if p["relation"] == "across_runs"]
    assert across and all(p["cka"] is None and "different test samples" in p["note"] for p in across)
    assert {"projection_audio_1", "projection_audio_2"} <= set(result["figures"])


def test_a_moved_study_folder_still_finds_the_pretrained_file(runs: dict[str, Path], tmp_path: Path) -> None:
    moved = tmp_path / "moved"
    for name in ("pre_audio", "pretrained"):
        shutil.copytree(runs[name], moved / name)
    gone = tmp_path / "gone" / "pre_audio" / "encoders" / "audio.safetensors"
    config = yaml.safe_load((moved / "pretrained" / "config.yaml").read_text())
    config["model"]["pretrained"]["audio"] = str(gone)
    (moved / "pretrained" / "config.yaml").write_text(yaml.safe_dump(config))
    assert locate_pretrained(gone, moved / "pretrained") == moved / "pre_audio" / "encoders" / "audio.safetensors"
    views = analyse_run(moved / "pretrained", "moved").views
    assert views[0].source == str(moved / "pre_audio" / "encoders" / "audio.safetensors")
    shutil.rmtree(moved / "pre_audio")
    with pytest.raises(FileNotFoundError, match="no longer exists"):
        analyse_run(moved / "pretrained", "moved")


@pytest.mark.slow
def test_cli_analyze_prints_the_tables_and_rejects_bad_arguments(runs: dict[str, Path], tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "cli"
    ok = runner.invoke(
        app,
        [
            "analyze",
            str(runs["scratch"]),
            str(runs["pretrained"]),
            "--out",
            str(out),
            "--projection",
            "pca",
            "--max-points",
            "100",
        ],
    )
    assert ok.exit_code == 0, ok.output
    assert "before_vs_after" in ok.output and "linear probes" in ok.output
    assert (out / REPRESENTATIONS_FILE).is_file() and (out / "figures" / "projection_audio.png").is_file()
    neither = runner.invoke(app, ["analyze"])
    assert neither.exit_code == 2 and "not both and not neither" in neither.output
    bad = runner.invoke(app, ["analyze", str(runs["scratch"]), "--projection", "mds", "--out", str(out)])
    assert bad.exit_code == 2 and "Expected projections among" in bad.output
    missing = runner.invoke(app, ["analyze", str(tmp_path / "nope"), "--out", str(out)])
    assert missing.exit_code == 2 and "nope" in missing.output
