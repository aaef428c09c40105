"""Session-wide fixtures shared by all test folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from fusebench.data.avdigits import AVDigitsRecipe, SplitTensors, load_avdigits, prepare_avdigits

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
