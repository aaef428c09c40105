"""A corrupted AV-digits cache is detected and named with its fix, never trained on."""

from __future__ import annotations

import json
import os
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from tests._helpers.runs import tiny_raw
from tests.conftest import SMALL_RECIPE
from typer.testing import CliRunner

from fusebench.cli import app
from fusebench.data import avdigits_cache
from fusebench.data.avdigits import CacheCorruptedError, load_avdigits

runner = CliRunner()


@pytest.fixture()
def cache(avdigits_small_folder: Path, tmp_path: Path) -> Path:
    """A private copy of the small cache folder (``<cache_dir>/<digest>``)."""
    folder = tmp_path / "cache" / avdigits_small_folder.name
    shutil.copytree(avdigits_small_folder, folder)
    avdigits_cache._VERIFIED.clear()  # a fresh process: nothing verified yet
    return folder


def _load(folder: Path) -> None:
    load_avdigits(SMALL_RECIPE, cache_dir=folder.parent, allow_download=False)


def test_the_manifest_records_every_files_size_and_checksum(cache: Path) -> None:
    manifest = json.loads((cache / "manifest.json").read_text())
    assert set(manifest["checksums"]) == set(manifest["files"])
    for name, entry in manifest["checksums"].items():
        assert entry["bytes"] == (cache / name).stat().st_size and len(entry["sha256"]) == 64


def test_random_bytes_over_an_array_are_detected(cache: Path) -> None:
    target = cache / "train.audio.npy"
    data = bytearray(target.read_bytes())
    data[200:1200] = os.urandom(1000)  # same size, header intact: the array loads, full of garbage
    target.write_bytes(bytes(data))
    with pytest.raises(CacheCorruptedError, match=r"train\.audio\.npy` is corrupted \(its SHA-256 differs"):
        _load(cache)


def test_a_truncated_array_names_the_file_and_the_fix(cache: Path) -> None:
    target = cache / "test.image.npy"
    target.write_bytes(target.read_bytes()[:500])
    with pytest.raises(CacheCorruptedError) as caught:
        _load(cache)
    message = str(caught.value)
    assert f"`{target}` is corrupted (500 bytes, the manifest says" in message
    assert f"fusebench data prepare avdigits --force --cache-dir {cache.parent} --set recipe.subset=300" in message


def test_a_bad_header_in_a_cache_without_checksums_is_named(cache: Path) -> None:
    manifest = json.loads((cache / "manifest.json").read_text())
    del manifest["checksums"]  # built by a fusebench that recorded none: they are filled in from the files
    (cache / "manifest.json").write_text(json.dumps(manifest))
    target = cache / "validation.target.npy"
    target.write_bytes(b"\x93NUMPY garbage" + target.read_bytes()[14:])
    with pytest.raises(CacheCorruptedError, match=r"validation\.target\.npy` is corrupted \(numpy cannot read it"):
        _load(cache)
    assert "checksums" in json.loads((cache / "manifest.json").read_text())


def test_training_on_a_corrupted_cache_fails_the_run_and_the_printed_fix_works(cache: Path, tmp_path: Path) -> None:
    target = cache / "train.image.npy"
    data = bytearray(target.read_bytes())
    data[-4000:] = np.full(1000, np.nan, dtype=np.float32).tobytes()
    target.write_bytes(bytes(data))
    raw = tiny_raw(tmp_path / "runs", name="corrupt")
    raw["data"].update(
        {
            "recipe": {"subset": 300},
            "cache_dir": str(cache.parent),
            "limit": {"train": 300, "validation": 300, "test": 300},
        }
    )
    raw["training"]["epochs"] = 1
    config = tmp_path / "corrupt.yaml"
    config.write_text(yaml.safe_dump(raw))
    result = runner.invoke(app, ["train", str(config), "--run-id", "1"])
    assert result.exit_code == 2 and "train.image.npy` is corrupted" in result.output, result.output
    status = json.loads((tmp_path / "runs" / "corrupt" / "1" / "status.json").read_text())
    assert status["state"] == "failed" and "data prepare avdigits --force" in status["error"]
    fix = shlex.split(status["error"].split("`")[-2])  # the command in the message, run as printed
    assert fix[0] == "fusebench"
    rebuilt = runner.invoke(app, fix[1:])
    assert rebuilt.exit_code == 0, rebuilt.output
    avdigits_cache._VERIFIED.clear()
    _load(cache)  # now intact
