"""Export AV-digits in AV-MNIST's MultiBench layout, so tools that read AV-MNIST can read it.

``fusebench data export avdigits --format avmnist DIR`` builds (or reuses) the AV-digits
cache of a recipe and writes the six files of :mod:`fusebench.data.avmnist`'s layout:

- **Audio**: the recipe's log-mel spectrograms (AV-digits' own 40 mel bands x 40 frames by
  default, so the export reuses the cache the demo builds) are resized to 112 x 112 by bilinear
  interpolation (``torch.nn.functional.interpolate``, ``align_corners=False``); a recipe built at
  112 x 112 (``--set recipe.n_mels=112 --set recipe.frames=112 --set recipe.hop_length=70``) is
  written as is. Resizing is the default because a small CNN learns the digits far faster from
  it: on 1,100 pairs at 0 dB, 3 epochs, the shipped audio encoder reached 39% test accuracy on
  resized 40 x 40 spectrograms and 27% on spectrograms built at 112 x 112 (112 narrow mel bands
  of a 400-point FFT and 8.75 ms hops hold little more than the 40 x 40 do, and noisier). The
  cache's per-band standardisation is undone, and the natural-log mel power is mapped linearly
  onto 0-255 with the exported training rows' minimum and maximum (validation and test values
  outside that range are clipped).
- **Image**: the cache's standardisation is undone, giving the PCA reconstruction on MNIST's
  0-1 scale, which is multiplied by 255 and clipped to 0-255 (a PCA reconstruction can leave
  that range slightly).
- **dtype**: ``float32`` by default, because MultiBench's own loader divides the image array
  in place (``trains[0] /= 255.0``), which numpy refuses for ``uint8``; ``uint8`` (rounded)
  takes a quarter of the space and reads back the same way in fusebench.
- **Validation**: the training file is AV-digits' train pairs followed by its validation
  pairs, so MultiBench's convention (validation = the last 1/12 of train) recovers them. By
  default the export keeps exactly 11 training pairs per validation pair, dropping the surplus
  of the larger split (none for the full dataset: 55,000 + 5,000); ``keep_all`` writes every
  pair and reports the ``data.validation_size`` that reads the split back.

A ``fusebench_export.json`` beside the files records the recipe, counts and scaling.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

import numpy as np
import torch

from fusebench.data.avdigits import prepare_avdigits
from fusebench.data.avdigits_cache import cache_file, read_manifest
from fusebench.data.avdigits_recipe import AVDigitsRecipe
from fusebench.data.avmnist import AUDIO_SIDE, IMAGE_SIDE, relative_paths
from fusebench.errors import DataError
from fusebench.io import atomic_write, atomic_write_json

ExportDtype = Literal["float32", "uint8"]
EXPORT_DTYPES: tuple[str, ...] = ("float32", "uint8")
#: Training pairs per validation pair: MultiBench's 55,000 / 5,000.
TRAIN_PER_VALIDATION = 11
MANIFEST = "fusebench_export.json"
_CHUNK = 2048


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote.

    Attributes:
        folder: the AV-MNIST folder.
        counts: rows per part: ``train`` (of the training file), ``validation`` (its last
            rows), ``test``.
        dropped: AV-digits pairs left out to keep the 11:1 ratio, per AV-digits split.
        validation_size: the ``data.validation_size`` that reads the split back, or
            ``None`` when the default ``validation_fraction`` (1/12) does.
    """

    folder: Path
    counts: dict[str, int]
    dropped: dict[str, int]
    validation_size: int | None


def split_sizes(train: int, validation: int, keep_all: bool) -> tuple[int, int]:
    """Training and validation pairs to write: 11:1 unless ``keep_all`` (then all of both).

    >>> split_sizes(55000, 5000, keep_all=False)
    (55000, 5000)
    >>> split_sizes(600, 600, keep_all=False)
    (594, 54)
    """
    if keep_all:
        return train, validation
    n_validation = min(validation, train // TRAIN_PER_VALIDATION)
    if n_validation < 1:
        raise DataError(
            f"Expected at least {TRAIN_PER_VALIDATION} AV-digits training pairs to keep MultiBench's "
            f"11:1 train/validation ratio, got {train}; build more pairs or pass keep_all."
        )
    return TRAIN_PER_VALIDATION * n_validation, n_validation


def resize_spectrograms(x: np.ndarray) -> np.ndarray:
    """``[n, n_mels, frames]`` -> ``[n, 112, 112]`` by bilinear interpolation (unchanged if already 112 x 112).

    Bilinear weights are convex, so the result stays within the input's range.
    """
    if x.shape[1:] == (AUDIO_SIDE, AUDIO_SIDE):
        return x
    resized = torch.nn.functional.interpolate(
        torch.from_numpy(x)[:, None], size=(AUDIO_SIDE, AUDIO_SIDE), mode="bilinear", align_corners=False
    )
    return resized[:, 0].numpy()


def export_avmnist(
    recipe: AVDigitsRecipe,
    out_dir: str | Path,
    *,
    source_root: str | Path | None = None,
    cache_dir: str | Path | None = None,
    dtype: ExportDtype = "float32",
    keep_all: bool = False,
    force: bool = False,
    progress: bool = False,
    allow_download: bool = True,
) -> ExportResult:
    """Write AV-digits of ``recipe`` into ``out_dir`` in the AV-MNIST layout (see the module docstring).

    Raises:
        ValueError: ``dtype`` is unknown, or ``out_dir`` already holds AV-MNIST files and
            ``force`` is off.
    """
    if dtype not in EXPORT_DTYPES:
        raise DataError(f"Expected an export dtype in {list(EXPORT_DTYPES)}, got `{dtype}`.")
    folder = Path(out_dir).expanduser()
    targets = [folder / rel for split in ("train", "test") for rel in relative_paths(split).values()]
    present = [str(p) for p in targets if p.exists()]
    if present and not force:
        raise DataError(
            f"`{folder}` already holds AV-MNIST files ({', '.join(present)}); pass --force to "
            f"overwrite them, or choose an empty folder."
        )
    cache = prepare_avdigits(recipe, source_root, cache_dir, progress=progress, allow_download=allow_download)
    manifest = read_manifest(cache)
    n_train, n_validation = split_sizes(manifest["counts"]["train"], manifest["counts"]["validation"], keep_all)
    rows = {"train": [("train", n_train), ("validation", n_validation)], "test": [("test", manifest["counts"]["test"])]}
    scaling = _Scaling.from_cache(cache, manifest, n_train)

    for split, parts in rows.items():
        names = relative_paths(split)
        total = sum(n for _, n in parts)
        _write_npy(
            folder / names["image"],
            np.dtype(dtype),
            (total, IMAGE_SIDE * IMAGE_SIDE),
            _chunks(cache, parts, "inputs.image", lambda x: scaling.image(x, dtype)),
        )
        _write_npy(
            folder / names["audio"],
            np.dtype(dtype),
            (total, AUDIO_SIDE, AUDIO_SIDE),
            _chunks(cache, parts, "inputs.audio", lambda x: scaling.audio(x, dtype)),
        )
        _write_npy(
            folder / names["labels"],
            np.dtype(np.int64),
            (total,),
            _chunks(cache, parts, "target", lambda x: x.astype(np.int64)),
        )

    exact = n_train + n_validation
    validation_size = None if round(exact / 12) == n_validation else n_validation
    counts = {"train": n_train, "validation": n_validation, "test": manifest["counts"]["test"]}
    dropped = {
        "train": manifest["counts"]["train"] - n_train,
        "validation": manifest["counts"]["validation"] - n_validation,
    }
    manifest_path = folder / MANIFEST
    atomic_write_json(
        manifest_path,
        {
            "source": "avdigits",
            "avdigits_cache": str(cache),
            "recipe": manifest["recipe"],
            "recipe_digest": manifest["digest"],
            "dtype": dtype,
            "training_file": {
                "rows": exact,
                "avdigits_train_rows": [0, n_train],
                "avdigits_validation_rows": [n_train, exact],
            },
            "counts": counts,
            "dropped": dropped,
            "read_back": {"validation_size": validation_size},
            "scaling": scaling.describe(),
        },
    )
    return ExportResult(folder, counts, dropped, validation_size)


@dataclass(frozen=True)
class _Scaling:
    """How the cache's standardised values map back onto the 0-255 scale."""

    image_mean: float
    image_std: float
    audio_mean: np.ndarray  # [n_mels, 1]
    audio_std: np.ndarray  # [n_mels, 1]
    audio_low: float
    audio_high: float

    @classmethod
    def from_cache(cls, cache: Path, manifest: dict[str, Any], n_train: int) -> _Scaling:
        stats = manifest["normalisation"]
        mean = np.asarray(stats["audio_mean"], dtype=np.float32)[:, None]
        std = np.asarray(stats["audio_std"], dtype=np.float32)[:, None]
        low, high = np.inf, -np.inf
        train = np.load(cache_file(cache, "train", "inputs.audio"), mmap_mode="r")
        for start in range(0, n_train, _CHUNK):
            log_mel = train[start : min(start + _CHUNK, n_train), 0].astype(np.float32) * std + mean
            low, high = min(low, float(log_mel.min())), max(high, float(log_mel.max()))
        return cls(stats["image_mean"], stats["image_std"], mean, std, low, max(high, low + 1e-6))

    def image(self, x: np.ndarray, dtype: str) -> np.ndarray:
        pixels = (x.astype(np.float32) * self.image_std + self.image_mean) * 255.0  # [n, 1, 28, 28], 0-1 -> 0-255
        return _as(pixels.reshape(len(x), IMAGE_SIDE * IMAGE_SIDE), dtype)

    def audio(self, x: np.ndarray, dtype: str) -> np.ndarray:
        log_mel = x[:, 0].astype(np.float32) * self.audio_std + self.audio_mean  # [n, n_mels, frames]
        scaled = (log_mel - self.audio_low) * (255.0 / (self.audio_high - self.audio_low))
        return _as(resize_spectrograms(scaled), dtype)  # [n, 112, 112]

    def describe(self) -> dict[str, Any]:
        return {
            "image": "value = clip(255 * PCA reconstruction on MNIST's 0-1 scale, 0, 255)",
            "audio": "value = clip(resize_112(255 * (log_mel - audio_low) / (audio_high - audio_low)), 0, 255), "
            "natural-log mel power; audio_low/high = extremes over the exported training rows; resize_112 = "
            "bilinear interpolation to 112 x 112 (align_corners=False), skipped when already 112 x 112",
            "audio_low": self.audio_low,
            "audio_high": self.audio_high,
        }


def _as(values: np.ndarray, dtype: str) -> np.ndarray:
    clipped: np.ndarray = np.clip(values, 0.0, 255.0)
    return np.rint(clipped).astype(np.uint8) if dtype == "uint8" else clipped.astype(np.float32)


def _chunks(
    cache: Path, parts: list[tuple[str, int]], key: str, convert: Callable[[np.ndarray], np.ndarray]
) -> Iterator[np.ndarray]:
    for split, n in parts:
        array = np.load(cache_file(cache, split, key), mmap_mode="r")
        for start in range(0, n, _CHUNK):
            yield convert(np.asarray(array[start : min(start + _CHUNK, n)]))


def _write_npy(path: Path, dtype: np.dtype, shape: tuple[int, ...], chunks: Iterator[np.ndarray]) -> None:
    """Stream ``chunks`` (rows in order) into a ``.npy`` of ``shape``, atomically."""

    def write(handle: BinaryIO) -> None:
        header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_1_0(handle, header)
        rows = 0
        for chunk in chunks:
            if chunk.dtype != dtype or chunk.shape[1:] != shape[1:]:
                raise RuntimeError(f"internal: chunk {chunk.dtype} {chunk.shape} for {path} of {dtype} {shape}")
            handle.write(np.ascontiguousarray(chunk).tobytes())
            rows += len(chunk)
        if rows != shape[0]:
            raise RuntimeError(f"internal: wrote {rows} rows to {path}, expected {shape[0]}")

    atomic_write(path, write)
