"""Session-wide fixtures shared by all test folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from fusebench.data.avdigits import SplitTensors, load_avdigits, prepare_avdigits
from fusebench.data.avdigits_recipe import AVDigitsRecipe

#: A few hundred pairs per split: real data, built in seconds, small enough for quick models.
SMALL_RECIPE = AVDigitsRecipe(subset=300)


@pytest.fixture(scope="session")
def avdigits_small_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Cache folder of :data:`SMALL_RECIPE`, built once per session into a temporary folder."""
    return prepare_avdigits(SMALL_RECIPE, cache_dir=tmp_path_factory.mktemp("avdigits"), allow_download=False)


@pytest.fixture(scope="session")
def avdigits_small(avdigits_small_folder: Path) -> dict[str, SplitTensors]:
    """``load_avdigits`` of :data:`SMALL_RECIPE`: 300 real pairs per split.

    Session-scoped and shared: tests must not modify the tensors in place.
    """
    return load_avdigits(SMALL_RECIPE, cache_dir=avdigits_small_folder.parent, allow_download=False)


#: The AV-digits recipe of the AV-MNIST export the tests train on: 660 training and 100 validation
#: pairs, of which the export keeps 60 (MultiBench's 11:1, so the last 1/12 of the exported training
#: file is AV-digits' validation split), and 660 test pairs; 0 dB, so that the audio is learnable
#: from so few pairs.
AVMNIST_EXPORT_SETTINGS = ["recipe.subset=660", "recipe.validation_size=100", "recipe.snr_db=0"]


@pytest.fixture(scope="session")
def avmnist_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder in AV-MNIST's MultiBench layout written by `fusebench data export` from real AV-digits.

    Session-scoped and shared: tests must not modify it. Its AV-digits cache is the folder's
    sibling ``cache`` (for tests that compare the export with the cache it came from).
    """
    from typer.testing import CliRunner

    from fusebench.cli import app

    base = tmp_path_factory.mktemp("avmnist_export")
    settings = [arg for item in AVMNIST_EXPORT_SETTINGS for arg in ("--set", item)]
    result = CliRunner().invoke(
        app,
        [
            "data",
            "export",
            "avdigits",
            "--format",
            "avmnist",
            str(base / "avmnist"),
            "--cache-dir",
            str(base / "cache"),
            *settings,
        ],
    )
    assert result.exit_code == 0, result.output
    return base / "avmnist"
