"""AV-digits: the embedded real default dataset, MNIST images paired with FSDD spoken digits.

What the data is, and how the images and recordings are degraded and paired, is the
recipe's (:mod:`fusebench.data.avdigits_recipe`, after the AV-MNIST recipe of Vielzeuf et
al., "CentralNet", 2018). The dataset is built once (:mod:`fusebench.data.avdigits_build`)
into a cache folder of ``.npy`` files named by the recipe's digest
(:mod:`fusebench.data.avdigits_cache`), and loaded here as whole tensors (an epoch is index
slicing). See ``DESIGN.md``, "Data contract", for where the sources come from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fusebench.data.avdigits_build import Progress, build_cache
from fusebench.data.avdigits_cache import (
    cache_file_names,
    cache_folder,
    cache_is_current,
    cache_lock,
    corrupted_error,
    read_manifest,
    verify_cache_files,
)
from fusebench.data.avdigits_recipe import MODALITIES, SPLITS, AVDigitsRecipe
from fusebench.data.sources import locate_sources
from fusebench.errors import CacheCorruptedError, DataError


@dataclass(frozen=True)
class SplitTensors:
    """One split of AV-digits as whole tensors.

    Attributes:
        inputs: ``"audio"``: ``[N, 1, n_mels, frames]`` log-mel, standardised per mel band with
            training statistics; ``"image"``: ``[N, 1, 28, 28]``, PCA reconstructions scaled to
            zero mean and unit std with training statistics. Both are memory maps of the cache's
            float16 files (no copy; batches are cut at float32 by ``TensorLoader``).
        target: long ``[N]`` digit labels.
        audio_source: int ``[N]`` index of the FSDD recording each pair used, into the
            name-sorted recording list (``manifest.json`` -> ``fsdd_files``).
        image_source: int ``[N]`` index of the MNIST image each pair used, into MNIST
            train (train and validation splits) or MNIST test (test split).
    """

    inputs: dict[str, torch.Tensor]
    target: torch.Tensor
    audio_source: np.ndarray
    image_source: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.target)


# --------------------------------------------------------------------------- public API


def prepare_avdigits(
    recipe: AVDigitsRecipe = AVDigitsRecipe(),  # noqa: B008 - frozen, so a safe default
    source_root: str | Path | None = None,
    cache_dir: str | Path | None = None,
    force: bool = False,
    progress: bool = False,
    *,
    allow_download: bool = True,
) -> Path:
    """Build the AV-digits cache for ``recipe`` unless an up-to-date one exists.

    A cache is up to date when its manifest records the same recipe and the same source
    checksums as the sources found now. When no sources can be found at all (and none was
    configured), an existing complete cache is trusted, so a cache folder can be copied to
    a machine without the sources. Concurrent builders of the same folder wait for each
    other (POSIX file lock) instead of building twice.

    Args:
        recipe: what to build.
        source_root: explicit data root (``mnist/``, ``fsdd/recordings/``); see
            :func:`~fusebench.data.sources.locate_sources` for the lookup order.
        cache_dir: parent of the per-recipe cache folders (see
            :func:`~fusebench.data.avdigits_cache.cache_folder`).
        force: rebuild even if the cache is up to date.
        progress: print build steps and timings to stderr.
        allow_download: whether missing sources may be downloaded.

    Returns:
        The cache folder.
    """
    folder = cache_folder(recipe, cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    if not force and cache_is_current(folder, recipe, source_root):
        verify_cache_files(folder, recipe)
        return folder
    with cache_lock(folder):
        if not force and cache_is_current(folder, recipe, source_root):
            verify_cache_files(folder, recipe)
            return folder  # another process finished the build while we waited
        sources = locate_sources(source_root, allow_download=allow_download)
        build_cache(recipe, sources, folder, Progress(progress))
    return folder


def load_avdigits(
    recipe: AVDigitsRecipe = AVDigitsRecipe(),  # noqa: B008 - frozen, so a safe default
    source_root: str | Path | None = None,
    cache_dir: str | Path | None = None,
    limit: dict[str, int] | None = None,
    *,
    allow_download: bool = True,
) -> dict[str, SplitTensors]:
    """Load AV-digits as whole tensors, building the cache on first use.

    Args:
        recipe, source_root, cache_dir, allow_download: as for :func:`prepare_avdigits`.
        limit: optional split name -> keep only the first ``n`` pairs (tiny test configs);
            only that many rows are read from disk.

    Returns:
        ``{"train": ..., "validation": ..., "test": ...}``.
    """
    limit = dict(limit or {})
    unknown = sorted(set(limit) - set(SPLITS))
    if unknown or any(int(n) < 0 for n in limit.values()):
        raise DataError(f"Expected limit keys among {SPLITS} with values >= 0, got {limit}.")
    folder = prepare_avdigits(recipe, source_root, cache_dir, allow_download=allow_download)
    return {split: _load_split(folder, split, limit.get(split)) for split in SPLITS}


def _load_split(folder: Path, split: str, limit: int | None) -> SplitTensors:
    def read(key: str, dtype: type | None = None, mapped: bool = False) -> np.ndarray:
        name = cache_file_names(split)[key]
        try:
            # copy-on-write map: pages come from the page cache, shared by every process that reads the
            # cache (study workers); a write would stay private to its process, never reach the file
            array = np.load(folder / name, mmap_mode="c", allow_pickle=False)[:limit]
            return array if mapped else np.array(array, dtype=dtype)
        except (ValueError, OSError, EOFError) as error:  # truncated, or a bad .npy header
            manifest = read_manifest(folder)
            recipe = AVDigitsRecipe(**manifest.get("recipe", {}))
            raise corrupted_error(folder, name, f"numpy cannot read it: {error}", recipe) from None

    inputs = {m: torch.from_numpy(read(f"inputs.{m}", mapped=True)) for m in MODALITIES}
    return SplitTensors(
        inputs=inputs,
        target=torch.from_numpy(read("target", np.int64)),
        audio_source=read("audio_source"),
        image_source=read("image_source"),
    )


__all__ = [
    "CacheCorruptedError",
    "SplitTensors",
    "load_avdigits",
    "prepare_avdigits",
]
