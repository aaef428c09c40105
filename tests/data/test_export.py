"""AV-digits exported in AV-MNIST's MultiBench layout: exact files, values traced back to the cache, read back."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from tests._helpers.avmnist import FILES
from typer.testing import CliRunner

from fusebench.cli import app
from fusebench.data.avdigits import load_avdigits
from fusebench.data.avdigits_cache import read_manifest
from fusebench.data.avdigits_recipe import AVDigitsRecipe
from fusebench.data.avmnist import AVMNISTOptions, load
from fusebench.data.export import MANIFEST, export_avmnist, resize_spectrograms, split_sizes

runner = CliRunner()


def _recipe(folder: Path) -> AVDigitsRecipe:
    return AVDigitsRecipe(**json.loads((folder / MANIFEST).read_text())["recipe"])


def _cache(folder: Path) -> dict:
    return load_avdigits(_recipe(folder), cache_dir=folder.parent / "cache", allow_download=False)


@pytest.mark.parametrize(
    ("train", "validation", "keep_all", "expected"),
    [
        pytest.param(55000, 5000, False, (55000, 5000), id="full-dataset-is-multibench-ratio"),
        pytest.param(600, 600, False, (594, 54), id="validation-trimmed"),
        pytest.param(55000, 9000, False, (55000, 5000), id="validation-surplus"),
        pytest.param(1000, 50, False, (550, 50), id="train-trimmed"),
        pytest.param(600, 600, True, (600, 600), id="keep-all"),
    ],
)
def test_split_sizes_keep_eleven_training_pairs_per_validation_pair(
    train: int, validation: int, keep_all: bool, expected: tuple[int, int]
) -> None:
    assert split_sizes(train, validation, keep_all) == expected


def test_too_few_pairs_is_an_error() -> None:
    with pytest.raises(ValueError, match="Expected at least 11 AV-digits training pairs"):
        split_sizes(10, 5, keep_all=False)


def test_resize_is_bilinear_to_112_and_leaves_112_alone() -> None:
    native = np.random.default_rng(0).normal(size=(3, 112, 112)).astype(np.float32)
    assert resize_spectrograms(native) is native
    ramp = np.tile(np.arange(40, dtype=np.float32), (2, 40, 1))  # [2, 40 mels, 40 frames], rising along time
    resized = resize_spectrograms(ramp)
    assert resized.shape == (2, 112, 112)
    assert resized.min() >= 0.0 and resized.max() <= 39.0  # convex weights stay within the input's range
    # align_corners=False: output column j samples input position (j + 0.5) * 40 / 112 - 0.5, clamped at 0.
    position = np.clip((np.arange(112) + 0.5) * 40 / 112 - 0.5, 0, 39)
    np.testing.assert_allclose(resized[0, 5], position, atol=1e-5)


def test_files_are_exactly_the_layout(avmnist_export: Path) -> None:
    shapes = {
        "image/train_data.npy": ((720, 784), "float32"),
        "image/test_data.npy": ((660, 784), "float32"),
        "audio/train_data.npy": ((720, 112, 112), "float32"),
        "audio/test_data.npy": ((660, 112, 112), "float32"),
        "train_labels.npy": ((720,), "int64"),
        "test_labels.npy": ((660,), "int64"),
    }
    assert sorted(shapes) == sorted(FILES)
    for name, (shape, dtype) in shapes.items():
        array = np.load(avmnist_export / name)
        assert (array.shape, array.dtype.name) == (shape, dtype), name
        if name.endswith("_data.npy"):
            assert 0.0 <= array.min() and array.max() <= 255.0 and array.max() > 1.0, name
    assert (avmnist_export / "image" / "train_data.npy").stat().st_mode & 0o044  # readable by others (umask 022)


def test_values_trace_back_to_the_avdigits_cache(avmnist_export: Path) -> None:
    cache = _cache(avmnist_export)
    stats = read_manifest(avmnist_export.parent / "cache" / _recipe(avmnist_export).digest())["normalisation"]
    scaling = json.loads((avmnist_export / MANIFEST).read_text())["scaling"]
    # Training file = AV-digits train (660) then its validation pairs (60); test = AV-digits test.
    for split, file, rows in (
        ("train", "train", slice(0, 660)),
        ("validation", "train", slice(660, 720)),
        ("test", "test", slice(0, 660)),
    ):
        n = rows.stop - rows.start  # the export keeps the first 60 of the 100 validation pairs
        labels = np.load(avmnist_export / f"{file}_labels.npy")[rows]
        assert labels.tolist() == cache[split].target[:n].tolist()
        standardised = cache[split].inputs["image"][:n].numpy().reshape(-1, 784).astype(np.float64)
        expected = np.clip((standardised * stats["image_std"] + stats["image_mean"]) * 255.0, 0, 255)
        np.testing.assert_allclose(np.load(avmnist_export / f"image/{file}_data.npy")[rows], expected, atol=1e-3)
        band = cache[split].inputs["audio"][:n].numpy()[:, 0].astype(np.float64)  # [n, 40 mels, 40 frames]
        log_mel = band * np.array(stats["audio_std"])[:, None] + np.array(stats["audio_mean"])[:, None]
        scaled = 255 * (log_mel - scaling["audio_low"]) / (scaling["audio_high"] - scaling["audio_low"])
        resized = torch.nn.functional.interpolate(
            torch.from_numpy(scaled)[:, None], size=(112, 112), mode="bilinear", align_corners=False
        )[:, 0].numpy()
        np.testing.assert_allclose(
            np.load(avmnist_export / f"audio/{file}_data.npy")[rows], np.clip(resized, 0, 255), atol=1e-3
        )
    band = cache["train"].inputs["audio"].numpy()[:, 0].astype(np.float64)  # 0 and 255 = the training extremes
    log_mel = band * np.array(stats["audio_std"])[:, None] + np.array(stats["audio_mean"])[:, None]
    np.testing.assert_allclose([scaling["audio_low"], scaling["audio_high"]], [log_mel.min(), log_mel.max()], rtol=1e-5)


def test_reading_it_back_recovers_the_avdigits_splits(avmnist_export: Path) -> None:
    cache = _cache(avmnist_export)
    loaded = load(AVMNISTOptions(root=str(avmnist_export)))  # default: validation = the last 1/12
    assert (len(loaded.train), len(loaded.validation), len(loaded.test)) == (660, 60, 660)
    for name in ("train", "validation", "test"):
        assert loaded.split(name).target.tolist() == cache[name].target[: len(loaded.split(name))].tolist()


def test_uint8_export_rounds_the_same_values(avmnist_export: Path, tmp_path: Path) -> None:
    recipe, cache_dir = _recipe(avmnist_export), avmnist_export.parent / "cache"
    export_avmnist(recipe, tmp_path / "u8", cache_dir=cache_dir, dtype="uint8", allow_download=False)
    as_uint8 = np.load(tmp_path / "u8" / "audio" / "test_data.npy")
    as_float = np.load(avmnist_export / "audio" / "test_data.npy")
    assert as_uint8.dtype == np.uint8
    assert np.abs(as_uint8.astype(np.float64) - as_float).max() <= 0.5 + 1e-3  # rounded, same scale
    assert len(load(AVMNISTOptions(root=str(tmp_path / "u8"))).validation) == 60
    with pytest.raises(ValueError, match=r"already holds AV-MNIST files .*pass --force"):
        export_avmnist(recipe, tmp_path / "u8", cache_dir=cache_dir, allow_download=False)
    export_avmnist(recipe, tmp_path / "u8", cache_dir=cache_dir, force=True, allow_download=False)
    assert np.load(tmp_path / "u8" / "audio" / "test_data.npy").dtype == np.float32


def test_keep_all_reports_the_validation_size_that_reads_it_back(avmnist_export: Path, tmp_path: Path) -> None:
    recipe, cache_dir = _recipe(avmnist_export), avmnist_export.parent / "cache"
    exported = json.loads((avmnist_export / MANIFEST).read_text())
    assert (exported["counts"], exported["dropped"]) == (
        {"train": 660, "validation": 60, "test": 660},
        {"train": 0, "validation": 40},
    )  # 660 + 100 built
    kept = export_avmnist(recipe, tmp_path / "all", cache_dir=cache_dir, keep_all=True, allow_download=False)
    assert (kept.counts["validation"], kept.validation_size) == (100, 100)
    back = load(AVMNISTOptions(root=str(tmp_path / "all"), validation_size=100))
    assert back.validation.target.tolist() == _cache(avmnist_export)["validation"].target.tolist()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["mnist", "--format", "avmnist"], "Only `avdigits` can be exported", id="dataset"),
        pytest.param(["avdigits", "--format", "mmimdb"], "Expected `--format avmnist`", id="format"),
        pytest.param(["avdigits", "--set", "recipe.nmels=112"], r"did you mean .*n_mels", id="typo"),
        pytest.param(
            ["avdigits", "--dtype", "int16"], r"Expected an export dtype in \['float32', 'uint8'\]", id="dtype"
        ),
    ],
)
def test_cli_export_errors_are_one_paragraph(tmp_path: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["data", "export", args[0], str(tmp_path / "out"), *args[1:]])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert re.search(message, " ".join(result.output.split())), result.output
    assert not (tmp_path / "out").exists()
