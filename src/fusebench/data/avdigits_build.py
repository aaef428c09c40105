"""Building the AV-digits cache: read the sources, carve, pair, degrade, standardise, write.

Split from :mod:`fusebench.data.avdigits` (loading), which calls :func:`build_cache` when a
recipe's folder is missing or stale (:mod:`fusebench.data.avdigits_cache` says which); see
:mod:`fusebench.data.avdigits_recipe` for the recipe (Vielzeuf et al., "CentralNet", 2018)
and the random streams.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from fusebench.data.audio import coloured_noise, fix_length, log_mel_spectrogram, mix_at_snr
from fusebench.data.avdigits_cache import cache_file_names, cache_sha256
from fusebench.data.avdigits_recipe import FORMAT_VERSION, FSDD_TEST_TAKES, SPLITS, AVDigitsRecipe
from fusebench.data.source_files import MNIST_FILES, FsddRecording, fsdd_index, read_mnist_file, read_wav, verify_fsdd
from fusebench.data.sources import SourcePaths, source_checksums
from fusebench.errors import DataError
from fusebench.io import atomic_write

_CHUNK = 512  # pairs per STFT/noise chunk: bounds memory, keeps torch ops large
_STREAMS = ("carve", "pair_train", "pair_validation", "pair_test", "noise_train", "noise_validation", "noise_test")


def _save_npy(out: BinaryIO, array: np.ndarray) -> None:
    np.save(out, array)


class Progress:
    def __init__(self, enabled: bool) -> None:
        self.enabled, self.start = enabled, time.perf_counter()

    def __call__(self, message: str) -> None:
        if self.enabled:
            print(f"[avdigits {time.perf_counter() - self.start:6.1f}s] {message}", file=sys.stderr)


def build_cache(recipe: AVDigitsRecipe, sources: SourcePaths, folder: Path, report: Progress) -> None:
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
        for key, name in cache_file_names(split).items():
            array = arrays[key]
            atomic_write(folder / name, partial(_save_npy, array=array))
            files.append(name)
    checksums = {
        name: {"bytes": (folder / name).stat().st_size, "sha256": cache_sha256(folder / name)} for name in files
    }
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
