"""Finding, verifying, downloading and reading the AV-digits source files (MNIST + FSDD).

The sources are looked up in the order the design notes fix (see ``DESIGN.md``, "Data
contract"): an explicit path, ``$FUSEBENCH_DATA``, ``../shared/data`` beside the project
root, the user cache, and only then a download from the public sources. Every location
uses the same layout::

    <root>/mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz
    <root>/fsdd/recordings/{digit}_{speaker}_{take}.wav

Checksums: the MNIST pins are SHA-256 digests of the *decompressed* IDX files. They equal
the widely published digests of the original release (the MD5s of the decompressed files
match the official ones too), and they do not depend on how a copy was gzip-compressed:
this team's shared copy was recompressed, so its ``.gz`` bytes differ from the official
``.gz`` files while the content is identical. FSDD recordings are pinned one by one in
``fsdd_sha256.txt`` beside this module.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import shutil
import struct
import tempfile
import urllib.request
import wave
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np

DATA_ENV_VAR = "FUSEBENCH_DATA"
CACHE_ENV_VAR = "FUSEBENCH_CACHE"

#: Base URLs tried in order for the four MNIST files (the original site is often down).
MNIST_BASE_URLS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
#: The GitHub archive of the Free Spoken Digit Dataset repository.
FSDD_ARCHIVE_URL = "https://github.com/Jakobovski/free-spoken-digit-dataset/archive/refs/heads/master.zip"


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


@dataclass(frozen=True)
class SourcePaths:
    """Where the MNIST and FSDD files were found.

    Attributes:
        mnist: folder holding the four MNIST ``.gz`` files.
        fsdd: the FSDD ``recordings`` folder.
        origin: which lookup step found them, e.g. ``"explicit"``, ``"shared"``, ``"download"``.
    """

    mnist: Path
    fsdd: Path
    origin: str


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
        raise ValueError(
            f"{path} is not a readable gzip file (expected a gzip-compressed IDX file): {error}"
        ) from error


def _parse_idx(raw: bytes, path: Path) -> np.ndarray:
    if len(raw) < 8:
        raise ValueError(f"{path} is too short for an IDX header: got {len(raw)} bytes.")
    magic, count = struct.unpack(">II", raw[:8])
    if magic not in _IDX_MAGIC:
        raise ValueError(f"{path} has IDX magic number {magic}, expected 2051 (images) or 2049 (labels).")
    ndim = _IDX_MAGIC[magic]
    header = 4 + 4 * ndim
    shape = (count, *struct.unpack(f">{ndim - 1}I", raw[8:header])) if ndim > 1 else (count,)
    expected = int(np.prod(shape))
    if len(raw) - header != expected:
        raise ValueError(f"{path} header says shape {shape} ({expected} bytes of data), got {len(raw) - header} bytes.")
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
        raise ValueError(f"{path} has IDX magic {magic}, expected {spec.magic} for {role}.")
    if len(array) != spec.count:
        raise ValueError(f"{path} holds {len(array)} items, expected {spec.count} for {role}.")
    digest = hashlib.sha256(raw).hexdigest()
    if digest != spec.content_sha256:
        raise ValueError(
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
        raise ValueError(f"{path} is not a readable WAV file: {error}") from error
    if channels != 1 or width != 2:
        raise ValueError(f"{path} must be 16-bit mono PCM, got {channels} channel(s) of {8 * width}-bit samples.")
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
            raise ValueError(f"FSDD file {path} is not named '{{digit}}_{{speaker}}_{{take}}.wav'.")
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
        raise ValueError(
            f"{directory} holds {len(extra)} recordings that are not in the pinned FSDD "
            f"release, e.g. {extra[:3]}; expected exactly the {len(pins)} listed in "
            "fsdd_sha256.txt."
        )
    for name, expected in pins.items():
        got = file_sha256(directory / name)
        if got != expected:
            raise ValueError(f"{directory / name} has sha256 {got}, expected {expected}.")
    return combined_digest(pins)


def source_checksums(paths: SourcePaths) -> dict[str, str]:
    """Checksums that identify the sources a cache was built from.

    The sha256 of each MNIST ``.gz`` file and one combined digest of the FSDD folder.
    """
    sums = {spec.name: file_sha256(paths.mnist / spec.name) for spec in MNIST_FILES.values()}
    recordings = {path.name: file_sha256(path) for path in sorted(paths.fsdd.glob("*.wav"))}
    sums["fsdd/recordings"] = combined_digest(recordings)
    return sums


# --------------------------------------------------------------------------- lookup


def user_cache_root() -> Path:
    """``$FUSEBENCH_CACHE`` if set, else ``~/.cache/fusebench``."""
    env = os.environ.get(CACHE_ENV_VAR)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "fusebench"


def _has_mnist(folder: Path) -> bool:
    return all((folder / spec.name).is_file() for spec in MNIST_FILES.values())


def _has_fsdd(folder: Path) -> bool:
    return folder.is_dir() and any(folder.glob("*.wav"))


def _shared_candidates() -> list[Path]:
    roots = []
    for start in (Path.cwd(), *Path.cwd().parents):
        if (start / "pyproject.toml").is_file():
            roots.append(start)
            break
    package_root = Path(__file__).resolve().parents[3]
    if (package_root / "pyproject.toml").is_file():
        roots.append(package_root)
    candidates = []
    for root in roots:
        candidate = (root.parent / "shared" / "data").resolve()
        if candidate not in candidates:
            candidates.append(candidate)
    return candidates


def _expected_layout(root: Path | str) -> str:
    return (
        f"{root}/mnist/ with {', '.join(spec.name for spec in MNIST_FILES.values())}, and "
        f"{root}/fsdd/recordings/ with the 3,000 FSDD files named "
        "{digit}_{speaker}_{take}.wav"
    )


def _check_given_root(root: Path, what: str) -> SourcePaths:
    mnist, fsdd = root / "mnist", root / "fsdd" / "recordings"
    if not (_has_mnist(mnist) and _has_fsdd(fsdd)):
        raise FileNotFoundError(
            f"{what} {root} does not hold the AV-digits sources; expected {_expected_layout(root)}."
        )
    return SourcePaths(mnist, fsdd, "explicit" if what.startswith("explicit") else "env")


def locate_sources(
    explicit: str | Path | None = None,
    *,
    allow_download: bool = True,
    cache_root: str | Path | None = None,
    mnist_base_urls: Sequence[str] = MNIST_BASE_URLS,
    fsdd_archive_url: str = FSDD_ARCHIVE_URL,
) -> SourcePaths:
    """Find the MNIST and FSDD sources, downloading them only as the last resort.

    Order: ``explicit`` (a config value) -> ``$FUSEBENCH_DATA`` -> ``../shared/data`` beside
    the project root (the nearest ancestor of the working directory holding
    ``pyproject.toml``, and the repository this package was installed from in editable
    mode) -> the user cache ``<cache_root>/sources`` -> download into that user cache.
    A path given explicitly (argument or environment variable) must hold the data: falling
    through to another copy would silently ignore the user's setting.

    Args:
        explicit: a data root with ``mnist/`` and ``fsdd/recordings/`` inside.
        allow_download: whether the last step may download (tests pass ``False``).
        cache_root: the fusebench cache folder; ``$FUSEBENCH_CACHE`` or ``~/.cache/fusebench``.
        mnist_base_urls: mirrors tried in order for each MNIST file.
        fsdd_archive_url: the FSDD repository archive (zip).

    Raises:
        FileNotFoundError: nothing found and no download possible; says where to put what.
        ValueError: a downloaded file failed its checksum.
    """
    if explicit is not None:
        return _check_given_root(Path(explicit).expanduser(), "explicit data path")
    env = os.environ.get(DATA_ENV_VAR)
    if env:
        return _check_given_root(Path(env).expanduser(), f"${DATA_ENV_VAR}")
    for candidate in _shared_candidates():
        mnist, fsdd = candidate / "mnist", candidate / "fsdd" / "recordings"
        if _has_mnist(mnist) and _has_fsdd(fsdd):
            return SourcePaths(mnist, fsdd, "shared")
    cache = (Path(cache_root) if cache_root is not None else user_cache_root()) / "sources"
    mnist, fsdd = cache / "mnist", cache / "fsdd" / "recordings"
    if _has_mnist(mnist) and _has_fsdd(fsdd):
        return SourcePaths(mnist, fsdd, "cache")
    looked = [f"${DATA_ENV_VAR} (unset)", *map(str, _shared_candidates()), str(cache)]
    if allow_download:
        try:
            if not _has_mnist(mnist):
                download_mnist(mnist, mnist_base_urls)
            if not _has_fsdd(fsdd):
                download_fsdd(fsdd, fsdd_archive_url)
        except OSError as error:
            raise FileNotFoundError(
                f"AV-digits sources not found (looked in {', '.join(looked)}) and the download "
                f"failed ({error}). Put {_expected_layout('<data root>')}, and pass the data root "
                f"as the dataset's source path or set ${DATA_ENV_VAR}."
            ) from error
        return SourcePaths(mnist, fsdd, "download")
    raise FileNotFoundError(
        f"AV-digits sources not found (looked in {', '.join(looked)}; downloading is disabled). "
        f"Put {_expected_layout('<data root>')}, then pass the data root as the dataset's "
        f"source path or set ${DATA_ENV_VAR}; {cache} with the same layout is also searched."
    )


# --------------------------------------------------------------------------- download


def _fetch(url: str, destination: Path) -> None:
    """Download ``url`` to ``destination`` (urllib also handles ``file://``)."""
    with urllib.request.urlopen(url, timeout=60) as response, open(destination, "wb") as out:
        shutil.copyfileobj(response, out, length=1 << 20)


def download_mnist(folder: str | Path, base_urls: Sequence[str] = MNIST_BASE_URLS) -> None:
    """Download the four MNIST files into ``folder``, verifying each before it appears.

    Each file goes to a temporary name in ``folder``, is checked against its pinned
    content digest, and only then renamed into place, so an interrupted download never
    leaves a file that looks complete.

    Raises:
        OSError: no mirror could deliver a file.
        ValueError: a delivered file is not the pinned MNIST release.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for role, spec in MNIST_FILES.items():
        target = folder / spec.name
        if target.is_file():
            continue
        errors, mismatches = [], []
        for base in base_urls:
            url = base.rstrip("/") + "/" + spec.name
            handle, tmp_name = tempfile.mkstemp(prefix=f".{spec.name}.", dir=folder)
            os.close(handle)
            tmp = Path(tmp_name)
            try:
                _fetch(url, tmp)
                read_mnist_file(tmp, role)
                os.replace(tmp, target)
                break
            except OSError as error:  # includes urllib.error.URLError
                errors.append(f"{url}: {error}")
            except ValueError as error:  # a mirror served something else: try the next one
                mismatches.append(f"{url} failed verification: {error}")
            finally:
                tmp.unlink(missing_ok=True)
        else:
            if mismatches:
                raise ValueError(f"Downloaded {spec.name} is not the MNIST release: {mismatches[0]}")
            raise OSError(f"could not download {spec.name} ({'; '.join(errors)})")


def download_fsdd(recordings: str | Path, archive_url: str = FSDD_ARCHIVE_URL) -> None:
    """Download the FSDD archive and extract the pinned recordings into ``recordings``.

    Every recording is checked against ``fsdd_sha256.txt``; they are extracted into a
    temporary sibling folder that is renamed to ``recordings`` only once all are verified.

    Raises:
        OSError: the archive could not be downloaded.
        ValueError: the archive is not a zip, lacks recordings, or a recording fails its pin.
    """
    recordings = Path(recordings)
    recordings.parent.mkdir(parents=True, exist_ok=True)
    pins = expected_fsdd_checksums()
    staging = Path(tempfile.mkdtemp(prefix=".recordings.", dir=recordings.parent))
    archive = staging / "archive.zip"
    try:
        _fetch(archive_url, archive)
        extracted = staging / "recordings"
        extracted.mkdir()
        try:
            with zipfile.ZipFile(archive) as bundle:
                for member in bundle.namelist():
                    parts = member.split("/")
                    if len(parts) < 2 or parts[-2] != "recordings" or parts[-1] not in pins:
                        continue
                    data = bundle.read(member)
                    digest = hashlib.sha256(data).hexdigest()
                    if digest != pins[parts[-1]]:
                        raise ValueError(
                            f"{parts[-1]} in {archive_url} has sha256 {digest}, expected {pins[parts[-1]]}."
                        )
                    (extracted / parts[-1]).write_bytes(data)
        except zipfile.BadZipFile as error:
            raise ValueError(f"{archive_url} is not a zip archive: {error}") from error
        missing = sorted(set(pins) - {path.name for path in extracted.iterdir()})
        if missing:
            raise ValueError(
                f"{archive_url} lacks {len(missing)} of the {len(pins)} FSDD recordings, e.g. {missing[:3]}."
            )
        if recordings.exists():
            shutil.rmtree(recordings)
        os.replace(extracted, recordings)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
