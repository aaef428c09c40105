"""AV-digits: the embedded real default dataset, MNIST images paired with FSDD spoken digits.

It follows the AV-MNIST recipe (Vielzeuf et al., "CentralNet", 2018): each MNIST image is
degraded by projecting it onto the top principal components that together hold 25% of
the energy (variance), and is paired with a spoken recording of its own digit; AV-MNIST
mixes the audio with ESC-50 environmental noise, here coloured Gaussian noise at a fixed
SNR stands in. Both modalities are degraded on purpose so that neither alone is enough and
fusing them matters, which is what the framework studies.

The dataset is built once into a cache folder of ``.npy`` files named by the recipe's
digest, and loaded as whole tensors (an epoch is index slicing). See ``DESIGN.md``,
"Data contract", for where the sources come from.

Randomness: ``numpy.random.SeedSequence(pairing_seed)`` is split into independent streams
(one for carving the validation set, one per split for pairing, one per split for the
noise), each consumed by ``numpy.random.default_rng``; the same recipe gives identical
arrays on every build.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import ConfigDict
from pydantic.dataclasses import dataclass as pydantic_dataclass

from fusebench.data.source_files import MNIST_FILES
from fusebench.data.sources import DATA_ENV_VAR, locate_sources, source_checksums, user_cache_root
from fusebench.errors import CacheCorruptedError, DataError
from fusebench.io import atomic_write

MODALITIES = ("audio", "image")
SPLITS = ("train", "validation", "test")
#: FSDD authors' convention: takes 0-4 of every speaker and digit are the test recordings.
FSDD_TEST_TAKES = range(0, 5)
#: Bumped whenever the build code changes what it writes; part of the cache digest.
FORMAT_VERSION = 1
_log = logging.getLogger(__name__)


@pydantic_dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class AVDigitsRecipe:
    """Every parameter that changes the built data; the defaults are the shipped dataset.

    Attributes:
        image_energy_kept: fraction of the training images' variance kept by the PCA
            projection (AV-MNIST removed 75%, keeping 0.25).
        snr_db: signal-to-noise ratio of the noise mixed into every recording (measured
            over the recording's real, un-padded part); a fresh noise draw per pair. -8 dB
            was chosen so that fusion matters: a small CNN (two conv blocks, 3 epochs, Adam
            1e-3, batch 128, all 55,000 training pairs) reached 64.2% test accuracy on the
            images alone, 67.0% on the audio alone and 88.5% on both (late fusion by
            concatenation). At 0 dB audio alone reached 94%; at -9 dB 62%.
        noise: ``"pink"`` (1/f power, the default: closer to environmental noise) or ``"white"``.
        sample_rate: of the FSDD recordings (8 kHz; no resampling is done).
        n_fft: STFT window length in samples (400 = 50 ms; Hann windows at 50% overlap).
        hop_length: STFT hop in samples (200 = 25 ms).
        n_mels: mel bands.
        frames: spectrogram frames; every clip is zero-padded or cropped to
            ``(frames - 1) * hop_length`` samples (0.975 s by default, which holds 99.2% of
            FSDD recordings whole) so that centred STFT frames give exactly ``frames``.
        validation_size: MNIST training images carved out (seeded) for validation.
        pairing_seed: seeds the validation carve, the pairing and the noise.
        subset: if set, keep only the first ``subset`` images of each split (after the
            carve); for fast tests and tiny configurations. PCA and standardisation
            statistics then come from that smaller training split.
    """

    image_energy_kept: float = 0.25
    snr_db: float = -8.0
    noise: str = "pink"
    sample_rate: int = 8000
    n_fft: int = 400
    hop_length: int = 200
    n_mels: int = 40
    frames: int = 40
    validation_size: int = 5000
    pairing_seed: int = 0
    subset: int | None = field(default=None)

    def __post_init__(self) -> None:
        if not 0.0 < self.image_energy_kept <= 1.0:
            raise ValueError(f"Expected image_energy_kept in (0, 1], got {self.image_energy_kept}.")
        if not math.isfinite(self.snr_db):
            raise ValueError(f"Expected a finite snr_db, got {self.snr_db}.")
        if self.noise not in ("pink", "white"):
            raise ValueError(f"Expected noise 'pink' or 'white', got {self.noise!r}.")
        for name in ("sample_rate", "n_fft", "hop_length", "n_mels", "frames"):
            if getattr(self, name) < 1:
                raise ValueError(f"Expected {name} >= 1, got {getattr(self, name)}.")
        if not 1 <= self.validation_size < MNIST_FILES["train_images"].count:
            raise ValueError(f"Expected validation_size in 1..59999, got {self.validation_size}.")
        if self.subset is not None and self.subset < 1:
            raise ValueError(f"Expected subset >= 1 or None, got {self.subset}.")

    @property
    def clip_samples(self) -> int:
        """Fixed clip length in samples: centred STFT frames then number exactly ``frames``."""
        return (self.frames - 1) * self.hop_length

    def digest(self) -> str:
        """Short stable hash of all fields (and the cache format version): the cache folder name."""
        payload = json.dumps({"format": FORMAT_VERSION, **asdict(self)}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


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


def cache_folder(recipe: AVDigitsRecipe, cache_dir: str | Path | None = None) -> Path:
    """``<cache_dir>/<digest>``; ``cache_dir`` defaults to ``$FUSEBENCH_CACHE/avdigits`` or
    ``~/.cache/fusebench/avdigits``."""
    root = Path(cache_dir).expanduser() if cache_dir is not None else user_cache_root() / "avdigits"
    return root / recipe.digest()


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """The ``manifest.json`` of a built cache folder (recipe, sources, statistics, file list)."""
    path = Path(folder) / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"No AV-digits manifest at {path}; build it with prepare_avdigits.")
    manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return manifest


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
        cache_dir: parent of the per-recipe cache folders (see :func:`cache_folder`).
        force: rebuild even if the cache is up to date.
        progress: print build steps and timings to stderr.
        allow_download: whether missing sources may be downloaded.

    Returns:
        The cache folder.
    """
    folder = cache_folder(recipe, cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    if not force and _is_current(folder, recipe, source_root):
        _verify_files(folder, recipe)
        return folder
    with _exclusive(folder):
        if not force and _is_current(folder, recipe, source_root):
            _verify_files(folder, recipe)
            return folder  # another process finished the build while we waited
        from fusebench.data.avdigits_build import Progress, build_cache  # it imports this module's recipe

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


# --------------------------------------------------------------------------- cache state


def cache_file_names(split: str) -> dict[str, str]:
    names = {f"inputs.{m}": f"{split}.{m}.npy" for m in MODALITIES}
    names.update({key: f"{split}.{key}.npy" for key in ("target", "audio_source", "image_source")})
    return names


def cache_file(folder: str | Path, split: str, key: str) -> Path:
    """The ``.npy`` of ``key`` (``inputs.audio``, ``inputs.image``, ``target``, ...) of ``split`` in a built cache."""
    return Path(folder) / cache_file_names(split)[key]


def _rebuild_command(folder: Path, recipe: AVDigitsRecipe) -> str:
    """The ``fusebench data prepare --force`` line that rebuilds exactly this cache folder."""
    defaults = asdict(AVDigitsRecipe())
    sets = "".join(f" --set recipe.{k}={v}" for k, v in asdict(recipe).items() if v != defaults[k])
    return f"fusebench data prepare avdigits --force --cache-dir {folder.parent}{sets}"


def _corrupted(folder: Path, name: str, what: str, recipe: AVDigitsRecipe) -> CacheCorruptedError:
    return CacheCorruptedError(
        f"AV-digits cache file `{folder / name}` is corrupted ({what}); it will not be trained on. Rebuild the "
        f"cache with `{_rebuild_command(folder, recipe)}`."
    )


def cache_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


#: (path, inode, size, mtime) of files whose checksum this process already matched against the manifest.
_VERIFIED: set[tuple[str, int, int, int]] = set()


def _verify_files(folder: Path, recipe: AVDigitsRecipe) -> None:
    """Every cache file has the size and SHA-256 its manifest records (about 0.2 s per 300 MB, once per process).

    A cache built before checksums were recorded gets them now, from its files as they are.

    Raises:
        CacheCorruptedError: a file is missing, has another size or other bytes; names it and the fix.
    """
    manifest = read_manifest(folder)
    checksums = manifest.get("checksums")
    if not isinstance(checksums, dict):
        with _exclusive(folder):
            checksums = {
                name: {"bytes": (folder / name).stat().st_size, "sha256": cache_sha256(folder / name)}
                for name in manifest.get("files", [])
            }
            payload = json.dumps({**manifest, "checksums": checksums}, indent=1).encode()
            atomic_write(folder / "manifest.json", lambda out: out.write(payload))
        _log.warning("AV-digits cache %s had no file checksums; recorded them from its files.", folder)
    for name in manifest.get("files", []):
        path, expected = folder / name, checksums.get(name) or {}
        try:
            stat = path.stat()
        except FileNotFoundError:
            raise _corrupted(folder, name, "the file is missing", recipe) from None
        key = (str(path), stat.st_ino, stat.st_size, stat.st_mtime_ns)
        if key in _VERIFIED:
            continue
        if stat.st_size != expected.get("bytes"):
            raise _corrupted(folder, name, f"{stat.st_size} bytes, the manifest says {expected.get('bytes')}", recipe)
        if cache_sha256(path) != expected.get("sha256"):
            raise _corrupted(folder, name, "its SHA-256 differs from the manifest's", recipe)
        _VERIFIED.add(key)


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
            raise _corrupted(folder, name, f"numpy cannot read it: {error}", recipe) from None

    inputs = {m: torch.from_numpy(read(f"inputs.{m}", mapped=True)) for m in MODALITIES}
    return SplitTensors(
        inputs=inputs,
        target=torch.from_numpy(read("target", np.int64)),
        audio_source=read("audio_source"),
        image_source=read("image_source"),
    )


def _is_current(folder: Path, recipe: AVDigitsRecipe, source_root: str | Path | None) -> bool:
    try:
        manifest = read_manifest(folder)
    except (FileNotFoundError, json.JSONDecodeError):
        return False
    if manifest.get("format_version") != FORMAT_VERSION or manifest.get("recipe") != asdict(recipe):
        return False
    if not all((folder / name).is_file() for name in manifest.get("files", [])):
        return False
    try:
        sources = locate_sources(source_root, allow_download=False)
    except FileNotFoundError:
        if source_root is not None or os.environ.get(DATA_ENV_VAR):
            raise  # a configured path that is wrong is an error, not a reason to skip checks
        _log.warning("AV-digits sources not found; using the existing cache %s unchecked.", folder)
        return True
    if source_checksums(sources) != manifest["sources"]["checksums"]:
        _log.warning("AV-digits sources changed since %s was built; rebuilding.", folder)
        return False
    return True


@contextlib.contextmanager
def _exclusive(folder: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, concurrent builds just repeat the work
        yield
        return
    with open(folder / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --------------------------------------------------------------------------- build

__all__ = [
    "MODALITIES",
    "SPLITS",
    "AVDigitsRecipe",
    "CacheCorruptedError",
    "SplitTensors",
    "cache_file",
    "cache_folder",
    "load_avdigits",
    "prepare_avdigits",
    "read_manifest",
]
