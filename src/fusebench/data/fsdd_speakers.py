"""FSDD speaker identification: a related task for pre-training AV-digits' audio encoder.

The Free Spoken Digit Dataset names its recordings ``{digit}_{speaker}_{take}.wav`` (six
speakers, 50 takes of each digit). This dataset asks *who* speaks instead of *which digit*,
on exactly the audio AV-digits feeds its audio encoder: the same clip length, the same
noise (``snr_db``, ``noise``) and the same log-mel spectrogram (``n_fft``, ``hop_length``,
``n_mels``, ``frames``; the defaults are AV-digits' recipe), standardised per mel band with
this training split's statistics. An audio encoder pre-trained here therefore has the input
shape AV-digits' fusion model expects, and "related-task pre-training" can be compared with
task-specific pre-training and scratch (configs/studies/transfer_speakers.yaml).

Splits by take, so no recording that AV-digits tests on is ever pre-trained on:

- ``test``: takes 0-4 of every speaker and digit (AV-digits' test audio, the FSDD authors'
  convention);
- ``validation``: the next ``validation_takes`` takes (5-9 by default);
- ``train``: the remaining takes, each mixed with ``noise_draws`` independent noise draws
  (the noise is what makes the task hard, as in AV-digits, so fresh draws are new samples).

Recordings of speakers not in ``speakers`` are left out (the option says which classes
exist, so the task is known without reading any file). Randomness: one
``numpy.random.SeedSequence(seed)`` stream per split for the noise.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import Field, field_validator

from fusebench.data.audio import coloured_noise, fix_length, log_mel_spectrogram, mix_at_snr
from fusebench.data.options import SPLITS, DataOptions
from fusebench.data.registry import DatasetEntry, DatasetInfo, LoadedDataset, ModalityInfo, Split, register_dataset
from fusebench.data.source_files import FsddRecording, fsdd_index, read_wav
from fusebench.data.sources import DATA_ENV_VAR, locate_sources
from fusebench.errors import DataError
from fusebench.tasks import Task

#: The six speakers of the FSDD release AV-digits is built from.
FSDD_SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")
TEST_TAKES = 5  # takes 0-4: the FSDD test convention, AV-digits' test audio
_CHUNK = 512


class FsddSpeakersOptions(DataOptions):
    """``data:`` for speaker identification on FSDD recordings (see the module docstring)."""

    dataset: Literal["fsdd_speakers"] = "fsdd_speakers"
    root: str | None = Field(
        default=None,
        description="data folder holding fsdd/recordings/; else FUSEBENCH_DATA, ../shared/data, the user cache",
    )
    speakers: list[str] = Field(
        default_factory=lambda: list(FSDD_SPEAKERS),
        min_length=2,
        description="the speakers to tell apart (the classes, in this order)",
    )
    validation_takes: int = Field(default=5, ge=1, description="takes after the test takes that form validation")
    noise_draws: int = Field(default=2, ge=1, description="noisy copies of each training recording")
    seed: int = Field(default=0, description="seeds the noise")
    snr_db: float = Field(default=-8.0, description="as AV-digits' recipe.snr_db")
    noise: Literal["pink", "white"] = "pink"
    sample_rate: int = Field(default=8000, ge=1)
    n_fft: int = Field(default=400, ge=1)
    hop_length: int = Field(default=200, ge=1)
    n_mels: int = Field(default=40, ge=1)
    frames: int = Field(default=40, ge=2)

    @field_validator("speakers")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"`speakers` must not repeat a name, got {value}")
        return value

    def content_options(self) -> dict[str, object]:
        skip = set(DataOptions.model_fields) - {"dataset", "limit"} | {"root"}
        return {k: v for k, v in self.model_dump(mode="json").items() if k not in skip}


def recordings_folder(options: FsddSpeakersOptions) -> Path:
    """``<root>/fsdd/recordings``: from ``data.root``, ``$FUSEBENCH_DATA``, or where AV-digits finds FSDD.

    Raises:
        FileNotFoundError: a given root without recordings, or none found; names the layout.
    """
    layout = "fsdd/recordings/ with the FSDD files named {digit}_{speaker}_{take}.wav"
    for given, what in ((options.root, "`data.root`"), (os.environ.get(DATA_ENV_VAR), f"${DATA_ENV_VAR}")):
        if given:
            folder = Path(given).expanduser() / "fsdd" / "recordings"
            if not folder.is_dir() or not any(folder.glob("*.wav")):
                raise FileNotFoundError(
                    f"{what} is `{given}`, which holds no FSDD recordings; expected {layout} inside it."
                )
            return folder
    try:
        return locate_sources(None, allow_download=False).fsdd
    except FileNotFoundError as error:
        raise FileNotFoundError(
            f"FSDD recordings not found for `fsdd_speakers`: put {layout} under a data root "
            f"and set `data.root` (or ${DATA_ENV_VAR}). ({error})"
        ) from None


def split_recordings(recordings: list[FsddRecording], options: FsddSpeakersOptions) -> dict[str, list[FsddRecording]]:
    """The recordings of each split, by take (module docstring); others' speakers left out.

    Raises:
        DataError: a speaker without a recording in some split.
    """
    wanted = [r for r in recordings if r.speaker in options.speakers]
    last_validation = TEST_TAKES + options.validation_takes
    splits = {
        "test": [r for r in wanted if r.take < TEST_TAKES],
        "validation": [r for r in wanted if TEST_TAKES <= r.take < last_validation],
        "train": [r for r in wanted if r.take >= last_validation],
    }
    for split, members in splits.items():
        missing = sorted(set(options.speakers) - {r.speaker for r in members})
        if missing:
            takes = {
                "test": f"takes 0-{TEST_TAKES - 1}",
                "validation": f"takes {TEST_TAKES}-{last_validation - 1}",
                "train": f"takes {last_validation} and above",
            }[split]
            raise DataError(
                f"`fsdd_speakers`: no {split} recording ({takes}) of speakers {missing}; expected "
                f"recordings of every speaker in `data.speakers` ({options.speakers})."
            )
    return splits


def _features(
    recordings: list[FsddRecording], options: FsddSpeakersOptions, draws: int, rng: np.random.Generator
) -> np.ndarray:
    """``[len * draws, n_mels, frames]`` log-mel spectrograms of the noisy clips (draw-major order)."""
    clip_samples = (options.frames - 1) * options.hop_length  # centred STFT frames then number exactly `frames`
    waves = []
    for recording in recordings:
        samples, rate = read_wav(recording.path)
        if rate != options.sample_rate:
            raise DataError(
                f"{recording.path} is sampled at {rate} Hz, expected `data.sample_rate` "
                f"{options.sample_rate} (no resampling is done)."
            )
        waves.append(samples)
    clips, lengths = fix_length(waves, clip_samples)
    clips, lengths = np.tile(clips, (draws, 1)), np.tile(lengths, draws)
    out = np.empty((len(clips), options.n_mels, options.frames), dtype=np.float32)
    for start in range(0, len(clips), _CHUNK):
        rows = slice(start, start + _CHUNK)
        noise = coloured_noise((len(clips[rows]), clip_samples), options.noise, rng)
        mixed = mix_at_snr(torch.from_numpy(clips[rows]), noise, options.snr_db, torch.from_numpy(lengths[rows]))
        out[rows] = log_mel_spectrogram(
            mixed, options.sample_rate, options.n_fft, options.hop_length, options.n_mels
        ).numpy()
    return out


def info(options: FsddSpeakersOptions) -> DatasetInfo:
    return DatasetInfo(
        modalities={"audio": ModalityInfo("audio", (1, options.n_mels, options.frames))},
        task=Task("multiclass", len(options.speakers), label_names=tuple(options.speakers)),
    )


def load(options: FsddSpeakersOptions) -> LoadedDataset:
    """Read the recordings, mix the noise, compute and standardise the spectrograms."""
    by_split = split_recordings(fsdd_index(recordings_folder(options)), options)
    streams = np.random.SeedSequence(options.seed).spawn(len(SPLITS))
    label = {name: index for index, name in enumerate(options.speakers)}
    features, targets = {}, {}
    for split, stream in zip(SPLITS, streams, strict=True):
        draws = options.noise_draws if split == "train" else 1
        features[split] = _features(by_split[split], options, draws, np.random.default_rng(stream))
        targets[split] = torch.tensor([label[r.speaker] for r in by_split[split]] * draws, dtype=torch.long)
    mean = features["train"].mean(axis=(0, 2), dtype=np.float64)[:, None]  # per mel band, training split only
    std = features["train"].std(axis=(0, 2), dtype=np.float64).clip(min=1e-6)[:, None]
    splits = {
        s: Split({"audio": torch.from_numpy(((x - mean) / std).astype(np.float32)[:, None])}, targets[s])
        for s, x in features.items()
    }
    return LoadedDataset(splits["train"], splits["validation"], splits["test"], info(options))


ENTRY = register_dataset(
    DatasetEntry(
        name="fsdd_speakers",
        options=FsddSpeakersOptions,
        load=load,
        task=lambda options: info(options).task,
        summary=(
            "FSDD speaker identification (6 speakers) on AV-digits' noisy log-mel audio; a related pre-training task"
        ),
    )
)
