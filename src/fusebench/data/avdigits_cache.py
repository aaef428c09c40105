"""The AV-digits cache folder and its checks: where a recipe's build lives, its manifest, its integrity.

A built cache is a folder of ``.npy`` files named by the recipe's digest, with a
``manifest.json`` recording the recipe, the source checksums, the statistics and each
file's size and SHA-256. This module answers whether a folder is a current build, whether
its files are intact (naming the rebuild command when not) and serialises builders with a
file lock; it reads no array data, which is :mod:`fusebench.data.avdigits`' job, and builds
nothing, which is :mod:`fusebench.data.avdigits_build`'s.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from fusebench.data.avdigits_recipe import FORMAT_VERSION, MODALITIES, AVDigitsRecipe
from fusebench.data.sources import DATA_ENV_VAR, locate_sources, source_checksums, user_cache_root
from fusebench.errors import CacheCorruptedError
from fusebench.io import atomic_write

_log = logging.getLogger("fusebench.data.avdigits")  # the name these warnings had before the cache was split off


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


def cache_file_names(split: str) -> dict[str, str]:
    """Array name -> the ``.npy`` file of ``split`` that holds it in the cache folder."""
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


def corrupted_error(folder: Path, name: str, what: str, recipe: AVDigitsRecipe) -> CacheCorruptedError:
    """The error for a damaged cache file: which file, what is wrong, and the command that rebuilds it."""
    return CacheCorruptedError(
        f"AV-digits cache file `{folder / name}` is corrupted ({what}); it will not be trained on. Rebuild the "
        f"cache with `{_rebuild_command(folder, recipe)}`."
    )


def cache_sha256(path: Path) -> str:
    """The SHA-256 of a cache file, read in chunks (the manifest records it; integrity checks compare it)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


#: (path, inode, size, mtime) of files whose checksum this process already matched against the manifest.
_VERIFIED: set[tuple[str, int, int, int]] = set()


def verify_cache_files(folder: Path, recipe: AVDigitsRecipe) -> None:
    """Every cache file has the size and SHA-256 its manifest records (about 0.2 s per 300 MB, once per process).

    A cache built before checksums were recorded gets them now, from its files as they are.

    Raises:
        CacheCorruptedError: a file is missing, has another size or other bytes; names it and the fix.
    """
    manifest = read_manifest(folder)
    checksums = manifest.get("checksums")
    if not isinstance(checksums, dict):
        with cache_lock(folder):
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
            raise corrupted_error(folder, name, "the file is missing", recipe) from None
        key = (str(path), stat.st_ino, stat.st_size, stat.st_mtime_ns)
        if key in _VERIFIED:
            continue
        if stat.st_size != expected.get("bytes"):
            raise corrupted_error(
                folder, name, f"{stat.st_size} bytes, the manifest says {expected.get('bytes')}", recipe
            )
        if cache_sha256(path) != expected.get("sha256"):
            raise corrupted_error(folder, name, "its SHA-256 differs from the manifest's", recipe)
        _VERIFIED.add(key)


def cache_is_current(folder: Path, recipe: AVDigitsRecipe, source_root: str | Path | None) -> bool:
    """Whether ``folder`` holds a complete build of ``recipe`` from the sources found now (see ``prepare_avdigits``)."""
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
def cache_lock(folder: Path) -> Iterator[None]:
    """Hold ``folder/.lock`` exclusively (POSIX ``flock``), so concurrent builders wait for each other."""
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
