"""Finding and downloading the AV-digits source files (MNIST + FSDD); reading and checking them is
:mod:`fusebench.data.source_files`.

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

import hashlib
import os
import shutil
import tempfile
import urllib.request
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fusebench.data.source_files import (
    MNIST_FILES,
    combined_digest,
    expected_fsdd_checksums,
    file_sha256,
    read_mnist_file,
)
from fusebench.errors import DataError

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
                raise DataError(f"Downloaded {spec.name} is not the MNIST release: {mismatches[0]}")
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
                        raise DataError(
                            f"{parts[-1]} in {archive_url} has sha256 {digest}, expected {pins[parts[-1]]}."
                        )
                    (extracted / parts[-1]).write_bytes(data)
        except zipfile.BadZipFile as error:
            raise DataError(f"{archive_url} is not a zip archive: {error}") from error
        missing = sorted(set(pins) - {path.name for path in extracted.iterdir()})
        if missing:
            raise DataError(
                f"{archive_url} lacks {len(missing)} of the {len(pins)} FSDD recordings, e.g. {missing[:3]}."
            )
        if recordings.exists():
            shutil.rmtree(recordings)
        os.replace(extracted, recordings)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
