"""The AV-digits source files themselves: what MNIST and FSDD must contain, reading and checking them.

:mod:`fusebench.data.sources` finds (or downloads) the files; this module reads one
MNIST IDX file or FSDD recording and checks it against the pinned release (magic
numbers, counts, SHA-256 digests), so a cache is only ever built from the originals.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import struct
import wave
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np

from fusebench.errors import DataError


@dataclass(frozen=True)
class MnistFile:
    """What one MNIST file must contain."""

    name: str
    magic: int
    count: int
    content_sha256: str


#: Keyed by role. ``content_sha256`` is the digest of the decompressed IDX bytes.
MNIST_FILES: dict[str, MnistFile] = {
    "train_images": MnistFile(
        "train-images-idx3-ubyte.gz",
        2051,
        60_000,
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    ),
    "train_labels": MnistFile(
        "train-labels-idx1-ubyte.gz",
        2049,
        60_000,
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    ),
    "test_images": MnistFile(
        "t10k-images-idx3-ubyte.gz",
        2051,
        10_000,
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    ),
    "test_labels": MnistFile(
        "t10k-labels-idx1-ubyte.gz",
        2049,
        10_000,
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    ),
}

FSDD_SAMPLE_RATE = 8000
_FSDD_NAME = re.compile(r"^(\d)_([a-z]+)_(\d+)\.wav$")
_IDX_MAGIC = {2049: 1, 2051: 3}  # magic -> number of dimensions (labels, images)


class FsddRecording(NamedTuple):
    """One FSDD file and what its name says about it."""

    path: Path
    digit: int
    speaker: str
    take: int


# --------------------------------------------------------------------------- readers


def _gunzip(path: Path) -> bytes:
    if not path.is_file():
        raise FileNotFoundError(f"MNIST file {path} does not exist.")
    try:
        with gzip.open(path, "rb") as handle:
            return handle.read()
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"{path} is not a readable gzip file (expected a gzip-compressed IDX file): {error}") from error


def _parse_idx(raw: bytes, path: Path) -> np.ndarray:
    if len(raw) < 8:
        raise DataError(f"{path} is too short for an IDX header: got {len(raw)} bytes.")
    magic, count = struct.unpack(">II", raw[:8])
    if magic not in _IDX_MAGIC:
        raise DataError(f"{path} has IDX magic number {magic}, expected 2051 (images) or 2049 (labels).")
    ndim = _IDX_MAGIC[magic]
    header = 4 + 4 * ndim
    shape = (count, *struct.unpack(f">{ndim - 1}I", raw[8:header])) if ndim > 1 else (count,)
    expected = int(np.prod(shape))
    if len(raw) - header != expected:
        raise DataError(f"{path} header says shape {shape} ({expected} bytes of data), got {len(raw) - header} bytes.")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def read_mnist_file(path: str | Path, role: str) -> np.ndarray:
    """Read one MNIST file and check it is exactly the pinned release.

    Args:
        path: the ``.gz`` file.
        role: a key of :data:`MNIST_FILES` (``"train_images"``, ...).

    Raises:
        ValueError: wrong magic, wrong count, or content that differs from the pinned digest.
    """
    path = Path(path)
    spec = MNIST_FILES[role]
    raw = _gunzip(path)
    array = _parse_idx(raw, path)
    magic = struct.unpack(">I", raw[:4])[0]
    if magic != spec.magic:
        raise DataError(f"{path} has IDX magic {magic}, expected {spec.magic} for {role}.")
    if len(array) != spec.count:
        raise DataError(f"{path} holds {len(array)} items, expected {spec.count} for {role}.")
    digest = hashlib.sha256(raw).hexdigest()
    if digest != spec.content_sha256:
        raise DataError(
            f"{path}: decompressed content has sha256 {digest}, "
            f"expected {spec.content_sha256} (the original MNIST release)."
        )
    return array


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """Read a 16-bit mono PCM WAV file.

    Returns:
        The samples as float32 in ``[-1, 1]`` and the sample rate.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: not a WAV file, or not 16-bit mono.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"WAV file {path} does not exist.")
    try:
        with wave.open(str(path), "rb") as handle:
            channels, width = handle.getnchannels(), handle.getsampwidth()
            rate, frames = handle.getframerate(), handle.readframes(handle.getnframes())
    except (wave.Error, EOFError) as error:
        raise DataError(f"{path} is not a readable WAV file: {error}") from error
    if channels != 1 or width != 2:
        raise DataError(f"{path} must be 16-bit mono PCM, got {channels} channel(s) of {8 * width}-bit samples.")
    samples = np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32768.0
    return samples, rate


def fsdd_index(directory: str | Path) -> list[FsddRecording]:
    """List the FSDD recordings in a folder, sorted by file name.

    The position of a recording in this list is its "FSDD file index" used by the
    cached AV-digits data (``SplitTensors.audio_source``).

    Raises:
        FileNotFoundError: the folder does not exist or holds no ``.wav`` files.
        ValueError: a ``.wav`` file whose name is not ``{digit}_{speaker}_{take}.wav``.
    """
    directory = Path(directory)
    paths = sorted(directory.glob("*.wav")) if directory.is_dir() else []
    if not paths:
        raise FileNotFoundError(f"No FSDD recordings (*.wav) in {directory}.")
    recordings = []
    for path in paths:
        match = _FSDD_NAME.match(path.name)
        if match is None:
            raise DataError(f"FSDD file {path} is not named '{{digit}}_{{speaker}}_{{take}}.wav'.")
        digit, speaker, take = match.groups()
        recordings.append(FsddRecording(path, int(digit), speaker, int(take)))
    return recordings


# --------------------------------------------------------------------------- checksums


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, memoised on (path, size, mtime) within the process.

    Loading a cache re-checks the sources every time; memoising keeps repeated loads in one
    process (tests, studies) cheap while still noticing a file that changed.
    """
    name = os.path.abspath(path)
    stat = os.stat(name)
    return _file_sha256(name, stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=8192)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def expected_fsdd_checksums() -> dict[str, str]:
    """The shipped per-recording SHA-256 pins: file name -> digest."""
    text = (Path(__file__).with_name("fsdd_sha256.txt")).read_text(encoding="utf-8")
    pins = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            digest, name = line.split()
            pins[name] = digest
    return pins


def combined_digest(checksums: dict[str, str]) -> str:
    """One digest for a folder: SHA-256 over the sorted ``name digest`` lines."""
    lines = "".join(f"{name} {checksums[name]}\n" for name in sorted(checksums))
    return hashlib.sha256(lines.encode()).hexdigest()


def verify_fsdd(directory: str | Path) -> str:
    """Check a recordings folder holds exactly the pinned FSDD recordings.

    Returns:
        The folder's combined digest (see :func:`combined_digest`).

    Raises:
        FileNotFoundError: pinned recordings are missing.
        ValueError: a recording differs from its pin, or the folder holds unknown recordings.
    """
    directory = Path(directory)
    pins = expected_fsdd_checksums()
    present = {path.name for path in directory.glob("*.wav")}
    missing = sorted(set(pins) - present)
    if missing:
        raise FileNotFoundError(
            f"{directory} lacks {len(missing)} of the {len(pins)} FSDD recordings, e.g. {missing[:3]}."
        )
    extra = sorted(present - set(pins))
    if extra:
        raise DataError(
            f"{directory} holds {len(extra)} recordings that are not in the pinned FSDD "
            f"release, e.g. {extra[:3]}; expected exactly the {len(pins)} listed in "
            "fsdd_sha256.txt."
        )
    for name, expected in pins.items():
        got = file_sha256(directory / name)
        if got != expected:
            raise DataError(f"{directory / name} has sha256 {got}, expected {expected}.")
    return combined_digest(pins)
