"""Reading and checking the array files of a dataset folder (:mod:`fusebench.data.custom`).

Each function checks one file and raises one error that names it, says what was
expected and what was found. Files are read with ``allow_pickle=False``: an ``.npy``
holding Python objects is refused, never unpickled.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from fusebench.data.custom_spec import ModalitySpec
from fusebench.errors import DataError
from fusebench.tasks import Task

SUFFIXES = (".npy", ".npz")
#: Rows per chunk when scanning a memory-mapped array for NaN/Inf (bounded memory).
FINITE_CHUNK = 65536


def read_array(file: Path, memory_map: bool) -> np.ndarray:
    """The array in ``file``: a ``.npy`` (memory-mapped copy-on-write if asked) or a ``.npz`` holding one array."""
    try:
        if file.suffix == ".npy":
            array = np.load(file, mmap_mode="c" if memory_map else None, allow_pickle=False)
        else:
            with np.load(file, allow_pickle=False) as archive:
                keys = list(archive.files)
                if len(keys) != 1:
                    raise DataError(f"`{file}`: expected an .npz holding exactly one array, got {len(keys)}: {keys}.")
                array = archive[keys[0]]
    except ValueError as error:
        if str(error).startswith(f"`{file}`"):
            raise
        if "pickle" in str(error) or "Python objects" in str(error):
            raise DataError(
                f"`{file}`: expected a numeric array saved with numpy.save/savez, got a file numpy "
                f"refuses to read without unpickling ({error})."
            ) from None
        raise DataError(
            f"`{file}`: expected a {file.suffix} file written by numpy, but it cannot be read ({error})."
        ) from None
    except (OSError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(
            f"`{file}`: expected a {file.suffix} file written by numpy, but it cannot be read "
            f"({type(error).__name__}: {error})."
        ) from None
    if not isinstance(array, np.ndarray) or array.ndim == 0:
        raise DataError(f"`{file}`: expected an array with one row per sample, got a scalar.")
    return array


def _numeric(array: np.ndarray, file: Path, allowed: str, expected: str) -> None:
    if array.dtype.kind not in allowed:
        raise DataError(f"`{file}`: expected {expected}, got dtype {array.dtype}.")


def to_input(array: np.ndarray, spec: ModalitySpec, file: Path, modality: str, described: Path) -> Tensor:
    """Inputs ``[N, *shape]``: float32, or int64 token ids for a ``text`` modality stored as integers.

    Arrays already in that dtype stay memory-mapped; others are converted in memory.
    """
    _numeric(array, file, "fiub", "a numeric array (float, integer or bool)")
    if tuple(array.shape[1:]) != tuple(spec.shape):
        raise DataError(
            f"`{file}`: expected [N, {', '.join(map(str, spec.shape))}] (modality `{modality}` has "
            f"shape {spec.shape} in `{described}`), got {list(array.shape)}."
        )
    if spec.kind == "text" and array.dtype.kind in "iu":
        if spec.scale != 1.0:
            raise DataError(
                f"`{described}`: modality `{modality}` holds integer token ids in `{file}`, which are "
                f"never scaled; remove `scale: {spec.scale}`."
            )
        return torch.from_numpy(array if array.dtype == np.int64 else array.astype(np.int64))
    values = torch.from_numpy(array if array.dtype == np.float32 else array.astype(np.float32))
    return values if spec.scale == 1.0 else values * spec.scale


def check_finite(values: Tensor, file: Path) -> None:
    """Refuse NaN and Inf, counting them; scanned in chunks so a memory map is never read whole at once."""
    if not values.is_floating_point():
        return
    bad, first = 0, None
    for start in range(0, len(values), FINITE_CHUNK):
        part = values[start : start + FINITE_CHUNK]
        wrong = ~torch.isfinite(part.reshape(len(part), -1))  # [rows, values per sample]
        count = int(wrong.sum())
        if count and first is None:
            first = start + int(wrong.any(dim=1).nonzero()[0])
        bad += count
    if bad:
        raise DataError(
            f"`{file}`: expected finite values, got {bad} NaN or infinite value(s) (first in sample "
            f"{first}); fusebench does not guess replacements, so fix the file (e.g. numpy.nan_to_num) "
            "or set `data.check_finite=false` if your model handles them."
        )


def to_lengths(array: np.ndarray, steps: int, file: Path) -> Tensor:
    """Valid steps per sample ``[N]`` (int64), each in ``1..steps`` (the padded length)."""
    _numeric(array, file, "iu", "integer sequence lengths")
    if array.ndim != 1:
        raise DataError(f"`{file}`: expected one length per sample, shape [N], got {list(array.shape)}.")
    lengths = torch.from_numpy(np.asarray(array, dtype=np.int64))
    if len(lengths) and (int(lengths.min()) < 1 or int(lengths.max()) > steps):
        raise DataError(
            f"`{file}`: expected lengths in 1..{steps} (the padded length declared in dataset.yaml), "
            f"got values from {int(lengths.min())} to {int(lengths.max())}."
        )
    return lengths


_LABEL_DTYPES = {
    "multiclass": ("iu", "integer class ids 0..C-1, shape [N]"),
    "multilabel": ("biuf", "multi-hot labels 0/1 (bool, integer or float), shape [N, L]"),
    "regression": ("iuf", "numeric scores, shape [N]"),
}


def to_target(array: np.ndarray, task: Task, file: Path) -> Tensor:
    """Labels in the task's convention (:mod:`fusebench.tasks.task`), checked by :meth:`Task.check_target`."""
    allowed, expected = _LABEL_DTYPES[task.kind]
    _numeric(array, file, allowed, f"{expected} for a {task.kind} task")
    dtype = np.int64 if task.kind == "multiclass" else np.float32
    target = torch.from_numpy(np.asarray(array, dtype=dtype))
    task.check_target(target, f"`{file}`")
    return target
