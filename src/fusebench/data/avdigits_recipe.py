"""The AV-digits recipe: every parameter that changes the built data, and its digest.

It follows the AV-MNIST recipe (Vielzeuf et al., "CentralNet", 2018): each MNIST image is
degraded by projecting it onto the top principal components that together hold 25% of
the energy (variance), and is paired with a spoken recording of its own digit; AV-MNIST
mixes the audio with ESC-50 environmental noise, here coloured Gaussian noise at a fixed
SNR stands in. Both modalities are degraded on purpose so that neither alone is enough and
fusing them matters, which is what the framework studies.

Randomness: ``numpy.random.SeedSequence(pairing_seed)`` is split into independent streams
(one for carving the validation set, one per split for pairing, one per split for the
noise), each consumed by ``numpy.random.default_rng``; the same recipe gives identical
arrays on every build.

The recipe sits below everything else of the dataset: the cache
(:mod:`fusebench.data.avdigits_cache`) is named by its digest, the builder
(:mod:`fusebench.data.avdigits_build`) follows it and the loader
(:mod:`fusebench.data.avdigits`) takes it.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, field

from pydantic import ConfigDict
from pydantic.dataclasses import dataclass as pydantic_dataclass

from fusebench.data.source_files import MNIST_FILES

MODALITIES = ("audio", "image")
SPLITS = ("train", "validation", "test")
#: FSDD authors' convention: takes 0-4 of every speaker and digit are the test recordings.
FSDD_TEST_TAKES = range(0, 5)
#: Bumped whenever the build code changes what it writes; part of the cache digest.
FORMAT_VERSION = 1


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
