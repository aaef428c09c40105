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
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch
from pydantic import ConfigDict
from pydantic.dataclasses import dataclass as pydantic_dataclass

from fusebench.data.audio import coloured_noise, fix_length, log_mel_spectrogram, mix_at_snr
from fusebench.data.source_files import MNIST_FILES, FsddRecording, fsdd_index, read_mnist_file, read_wav, verify_fsdd
from fusebench.data.sources import DATA_ENV_VAR, SourcePaths, locate_sources, source_checksums, user_cache_root
from fusebench.errors import CacheCorruptedError, DataError
from fusebench.io import atomic_write

MODALITIES = ("audio", "image")
SPLITS = ("train", "validation", "test")
#: FSDD authors' convention: takes 0-4 of every speaker and digit are the test recordings.
FSDD_TEST_TAKES = range(0, 5)
#: Bumped whenever the build code changes what it writes; part of the cache digest.
FORMAT_VERSION = 1
_CHUNK = 512  # pairs per STFT/noise chunk: bounds memory, keeps torch ops large
_STREAMS = ("carve", "pair_train", "pair_validation", "pair_test", "noise_train", "noise_validation", "noise_test")
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
        sources = locate_sources(source_root, allow_download=allow_download)
        _build(recipe, sources, folder, _Progress(progress))
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


def _file_names(split: str) -> dict[str, str]:
    names = {f"inputs.{m}": f"{split}.{m}.npy" for m in MODALITIES}
    names.update({key: f"{split}.{key}.npy" for key in ("target", "audio_source", "image_source")})
    return names


def cache_file(folder: str | Path, split: str, key: str) -> Path:
    """The ``.npy`` of ``key`` (``inputs.audio``, ``inputs.image``, ``target``, ...) of ``split`` in a built cache."""
    return Path(folder) / _file_names(split)[key]


def _save_npy(out: BinaryIO, array: np.ndarray) -> None:
    np.save(out, array)


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


def _sha256(path: Path) -> str:
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
                name: {"bytes": (folder / name).stat().st_size, "sha256": _sha256(folder / name)}
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
        if _sha256(path) != expected.get("sha256"):
            raise _corrupted(folder, name, "its SHA-256 differs from the manifest's", recipe)
        _VERIFIED.add(key)


def _load_split(folder: Path, split: str, limit: int | None) -> SplitTensors:
    def read(key: str, dtype: type | None = None, mapped: bool = False) -> np.ndarray:
        name = _file_names(split)[key]
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


class _Progress:
    def __init__(self, enabled: bool) -> None:
        self.enabled, self.start = enabled, time.perf_counter()

    def __call__(self, message: str) -> None:
        if self.enabled:
            print(f"[avdigits {time.perf_counter() - self.start:6.1f}s] {message}", file=sys.stderr)


def _build(recipe: AVDigitsRecipe, sources: SourcePaths, folder: Path, report: _Progress) -> None:
    """Build every cache file of ``recipe`` into ``folder``; the manifest is written last."""
    started = time.perf_counter()
    mnist = {role: read_mnist_file(sources.mnist / spec.name, role) for role, spec in MNIST_FILES.items()}
    report(f"read MNIST from {sources.mnist}")
    verify_fsdd(sources.fsdd)
    recordings = fsdd_index(sources.fsdd)

    seeds = np.random.SeedSequence(recipe.pairing_seed).spawn(len(_STREAMS))
    rngs = {name: np.random.default_rng(seed) for name, seed in zip(_STREAMS, seeds, strict=True)}
    image_source = _carve(recipe, rngs["carve"])
    pools = {split: ("test" if split == "test" else "train") for split in SPLITS}
    images = {s: mnist[f"{pools[s]}_images"][image_source[s]] for s in SPLITS}
    targets = {s: mnist[f"{pools[s]}_labels"][image_source[s]].astype(np.int64) for s in SPLITS}
    audio_source = {s: _pair(targets[s], recordings, test_takes=(s == "test"), rng=rngs[f"pair_{s}"]) for s in SPLITS}

    used = np.unique(np.concatenate(list(audio_source.values())))
    clips, lengths = _read_recordings(recordings, used, recipe)
    report(f"read {len(used)} FSDD recordings from {sources.fsdd}")

    projected, pca = _pca_images(images, recipe.image_energy_kept)
    report(f"PCA: {pca['components']} components keep {pca['energy_kept']:.3f} of the energy")
    audio = {s: _audio_features(audio_source[s], clips, lengths, recipe, rngs[f"noise_{s}"]) for s in SPLITS}
    report("computed log-mel spectrograms")
    audio, audio_stats = _standardise_bands(audio)
    projected, image_stats = _standardise_scalar(projected)

    files = []
    for split in SPLITS:
        arrays = {
            "inputs.audio": audio[split][:, None].astype(np.float16),
            "inputs.image": projected[split].reshape(-1, 1, 28, 28).astype(np.float16),
            "target": targets[split],
            "audio_source": audio_source[split].astype(np.int32),
            "image_source": image_source[split].astype(np.int32),
        }
        for key, name in _file_names(split).items():
            array = arrays[key]
            atomic_write(folder / name, partial(_save_npy, array=array))
            files.append(name)
    checksums = {name: {"bytes": (folder / name).stat().st_size, "sha256": _sha256(folder / name)} for name in files}
    report(f"wrote {folder}")

    import fusebench

    manifest = {
        "format_version": FORMAT_VERSION,
        "fusebench_version": fusebench.__version__,
        "recipe": asdict(recipe),
        "digest": recipe.digest(),
        "sources": {
            "origin": sources.origin,
            "mnist": str(sources.mnist),
            "fsdd": str(sources.fsdd),
            "checksums": source_checksums(sources),
        },
        "counts": {s: len(targets[s]) for s in SPLITS},
        "pca": pca,
        "normalisation": {**image_stats, **audio_stats},
        "build_seconds": round(time.perf_counter() - started, 2),
        "files": files,
        "checksums": checksums,
        "fsdd_files": [r.path.name for r in recordings],
    }
    payload = json.dumps(manifest, indent=1).encode()
    atomic_write(folder / "manifest.json", lambda out: out.write(payload))


def _read_recordings(
    recordings: list[FsddRecording], used: np.ndarray, recipe: AVDigitsRecipe
) -> tuple[np.ndarray, np.ndarray]:
    """Fixed-length clips ``[len(recordings), clip_samples]``; only ``used`` rows are read."""
    clips = np.zeros((len(recordings), recipe.clip_samples), dtype=np.float32)
    lengths = np.ones(len(recordings), dtype=np.int64)
    for index in used:
        samples, rate = read_wav(recordings[index].path)
        if rate != recipe.sample_rate:
            raise DataError(
                f"{recordings[index].path} is sampled at {rate} Hz, expected recipe.sample_rate="
                f"{recipe.sample_rate} (AV-digits does not resample)."
            )
        clip, length = fix_length([samples], recipe.clip_samples)
        clips[index], lengths[index] = clip[0], length[0]
    return clips, lengths


def _carve(recipe: AVDigitsRecipe, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """MNIST indices per split: a seeded validation carve from train, test as is."""
    order = rng.permutation(MNIST_FILES["train_images"].count)
    indices = {
        "train": np.sort(order[recipe.validation_size :]),
        "validation": np.sort(order[: recipe.validation_size]),
        "test": np.arange(MNIST_FILES["test_images"].count),
    }
    return {split: idx[: recipe.subset] for split, idx in indices.items()}


def _pair(
    labels: np.ndarray, recordings: list[FsddRecording], test_takes: bool, rng: np.random.Generator
) -> np.ndarray:
    """Give each image a recording of its own digit from the matching FSDD split.

    Recordings are dealt out of reshuffled decks per digit, so every recording is used
    about equally often (uniform draws would leave some unused and repeat others).
    """
    digits = np.array([r.digit for r in recordings])
    in_split = np.array([(r.take in FSDD_TEST_TAKES) == test_takes for r in recordings])
    source = np.empty(len(labels), dtype=np.int64)
    for digit in range(10):
        wanted = np.flatnonzero(labels == digit)
        if len(wanted) == 0:
            continue
        deck = np.flatnonzero((digits == digit) & in_split)
        if len(deck) == 0:
            raise DataError(
                f"No FSDD recording of digit {digit} with takes "
                f"{'0-4' if test_takes else '5 and above'}; expected the full FSDD release."
            )
        rounds = -(-len(wanted) // len(deck))
        dealt = np.concatenate([rng.permutation(deck) for _ in range(rounds)])
        source[wanted] = dealt[: len(wanted)]
    return source


def _pca_images(images: dict[str, np.ndarray], energy: float) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Project images onto the top principal components of the training images.

    Keeps the smallest number ``k`` of components whose cumulative share of the training
    variance first reaches ``energy`` and reconstructs each image from them (plus the
    training mean), which removes the fine detail held by the tail of the spectrum.
    """
    train = images["train"].reshape(len(images["train"]), -1).astype(np.float32) / 255.0
    mean = train.mean(axis=0, dtype=np.float64)
    centred = train - mean.astype(np.float32)
    if len(train) >= centred.shape[1]:
        covariance = (centred.T @ centred).astype(np.float64) / len(train)
        eigenvalues, eigenvectors = np.linalg.eigh(covariance)
        eigenvalues, eigenvectors = eigenvalues[::-1].clip(min=0.0), eigenvectors[:, ::-1]
    else:  # fewer images than pixels (subset builds): the thin SVD is far cheaper
        _, singular, rows = np.linalg.svd(centred.astype(np.float64), full_matrices=False)
        eigenvalues, eigenvectors = singular**2 / len(train), rows.T
    share = np.cumsum(eigenvalues) / eigenvalues.sum()
    k = min(int(np.searchsorted(share, energy - 1e-12)) + 1, len(share))
    basis = eigenvectors[:, :k].astype(np.float32)
    mean32 = mean.astype(np.float32)
    projected = {}
    for split, array in images.items():
        x = array.reshape(len(array), -1).astype(np.float32) / 255.0 - mean32
        projected[split] = (x @ basis) @ basis.T + mean32
    return projected, {"components": k, "energy_kept": float(share[k - 1])}


def _audio_features(
    source: np.ndarray,
    clips: np.ndarray,
    lengths: np.ndarray,
    recipe: AVDigitsRecipe,
    rng: np.random.Generator,
) -> np.ndarray:
    """Log-mel spectrograms of each pair's recording mixed with a fresh noise draw."""
    out = np.empty((len(source), recipe.n_mels, recipe.frames), dtype=np.float32)
    for start in range(0, len(source), _CHUNK):
        rows = source[start : start + _CHUNK]
        noise = coloured_noise((len(rows), recipe.clip_samples), recipe.noise, rng)
        mixed = mix_at_snr(torch.from_numpy(clips[rows]), noise, recipe.snr_db, torch.from_numpy(lengths[rows]))
        spectrogram = log_mel_spectrogram(mixed, recipe.sample_rate, recipe.n_fft, recipe.hop_length, recipe.n_mels)
        out[start : start + len(rows)] = spectrogram.numpy()
    return out


def _standardise_bands(
    audio: dict[str, np.ndarray],
) -> tuple[dict[str, np.ndarray], dict[str, list[float]]]:
    """Per-mel-band standardisation with training statistics (bands differ a lot in level)."""
    mean = audio["train"].mean(axis=(0, 2), dtype=np.float64)
    std = audio["train"].std(axis=(0, 2), dtype=np.float64).clip(min=1e-6)
    scaled = {s: (a - mean[:, None].astype(np.float32)) / std[:, None].astype(np.float32) for s, a in audio.items()}
    return scaled, {"audio_mean": mean.tolist(), "audio_std": std.tolist()}


def _standardise_scalar(
    images: dict[str, np.ndarray],
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """One mean and std over all training pixels (per-pixel scaling would blow up the border)."""
    mean = float(images["train"].mean(dtype=np.float64))
    std = float(images["train"].std(dtype=np.float64))
    return {s: (x - mean) / std for s, x in images.items()}, {"image_mean": mean, "image_std": std}


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
