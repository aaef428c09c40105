"""Atomic result files: a killed run leaves either the old file or the new one, never half of one."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from fusebench.errors import DamagedFileError


def current_umask() -> int:
    """The process umask, read without changing it where Linux allows (``/proc/self/status``)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: read it by setting it, and put it back at once
    os.umask(mask)
    return mask


def atomic_write(path: str | Path, write: Callable[[BinaryIO], object]) -> Path:
    """Write through ``write(file)`` to a temporary file in the same folder, fsync it, then rename over ``path``.

    The file gets the permissions of any file the user creates (``0o666`` less the umask),
    not the owner-only ``0o600`` of the temporary file, so collaborators can read results.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    return atomic_write(path, lambda handle: handle.write(data))


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, payload: Any) -> Path:
    return atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=False, default=_jsonable) + "\n")


def read_json(path: str | Path) -> Any:
    file = Path(path)
    try:
        return json.loads(file.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"Expected the results file `{file}`, but it does not exist.") from None
    except json.JSONDecodeError as error:
        raise DamagedFileError(f"`{file}` is not valid JSON ({error}).") from None
    except UnicodeDecodeError:
        raise DamagedFileError(f"`{file}` is not a text file (not UTF-8); expected JSON.") from None


def read_json_object(path: str | Path) -> dict[str, Any]:
    """:func:`read_json` of a file that must hold a JSON object (status, metrics, timing files)."""
    value = read_json(path)
    if not isinstance(value, dict):
        raise DamagedFileError(f"Expected a JSON object in `{path}`, got {type(value).__name__}; the file is damaged.")
    return value


def _jsonable(value: Any) -> Any:
    """numpy and torch scalars as Python numbers, paths as strings; anything else is a bug."""
    import numpy as np
    import torch

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"Cannot write {type(value).__name__} to JSON.")
