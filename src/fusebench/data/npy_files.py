"""Reading user-supplied ``.npy`` files: memory-mapped, checked, one clear error per bad file.

Readers of on-disk benchmark layouts (AV-MNIST, custom folders) open each file as a
read-only memory map, so checking shapes and dtypes costs nothing and only the rows a run
uses are ever read. Every problem is one ``ValueError`` (or ``FileNotFoundError``) that names
the file, what was expected and what was found. ``allow_pickle`` stays off: a ``.npy`` that
holds Python objects is refused, never unpickled.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fusebench.errors import DataError

#: Rows converted per step when copying out of a memory map (bounds the float32 temporaries).
CHUNK_ROWS = 4096


def open_npy(path: Path) -> np.ndarray:
    """The array in ``path`` as a read-only memory map (a plain array if it cannot be mapped).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: it is not a ``.npy`` file numpy can read without unpickling.
    """
    if not path.is_file():
        raise FileNotFoundError(f"Expected the file `{path}`, but it does not exist.")
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as error:  # object arrays (would need pickle) and malformed headers
        raise DataError(
            f"`{path}` is not a plain numeric .npy array ({error}); expected a file written by "
            f"`numpy.save` from a numeric array."
        ) from None
    except OSError as error:
        raise DataError(f"`{path}` could not be read as a .npy file ({error}).") from None
    if not isinstance(array, np.ndarray):  # an .npz archive loads as NpzFile
        raise DataError(f"`{path}` holds a {type(array).__name__}, expected a single .npy array.")
    return array


def check_dtype(path: Path, array: np.ndarray, allowed: Sequence[str]) -> None:
    """Raise unless ``array``'s dtype is one of ``allowed`` (numpy names such as ``"uint8"``)."""
    if array.dtype.name not in allowed:
        raise DataError(f"`{path}` has dtype {array.dtype.name}; expected one of {', '.join(allowed)}.")


def read_rows_float32(path: Path, array: np.ndarray, start: int, stop: int, low: float, high: float) -> np.ndarray:
    """Rows ``start:stop`` of ``array`` as a float32 copy, checked to lie within ``[low, high]``.

    Raises:
        ValueError: a value is NaN, infinite or outside the range; the message gives the
            count and the extremes found.
    """
    out = np.empty((stop - start, *array.shape[1:]), dtype=np.float32)
    for begin in range(start, stop, CHUNK_ROWS):
        end = min(begin + CHUNK_ROWS, stop)
        out[begin - start : end - start] = array[begin:end]
    if out.size == 0:
        return out
    finite = np.isfinite(out)
    if not finite.all():
        raise DataError(
            f"`{path}` holds {int((~finite).sum())} NaN or infinite values in rows {start}:{stop}; "
            f"expected finite values in [{low:g}, {high:g}]."
        )
    found_low, found_high = float(out.min()), float(out.max())
    if found_low < low or found_high > high:
        outside = int(((out < low) | (out > high)).sum())
        raise DataError(
            f"`{path}` holds values in [{found_low:g}, {found_high:g}] ({outside} outside the range); "
            f"expected values in [{low:g}, {high:g}]."
        )
    return out


def read_labels(path: Path, array: np.ndarray, start: int, stop: int, classes: int) -> np.ndarray:
    """Rows ``start:stop`` of a 1-D label file as int64 class indices in ``[0, classes)``.

    Float labels are accepted when every value is a whole number (MultiBench casts its
    labels with ``astype(int)``); a fractional label is an error, never truncated.
    """
    values = np.asarray(array[start:stop])
    if values.dtype.kind == "f":
        if not np.isfinite(values).all() or not np.equal(np.mod(values, 1), 0).all():
            bad = values[~np.isfinite(values) | (np.mod(values, 1) != 0)]
            raise DataError(
                f"`{path}` holds {len(bad)} labels that are not whole numbers (e.g. {bad[0]!r}); "
                f"expected class indices 0-{classes - 1}."
            )
    elif values.dtype.kind not in "iu":
        raise DataError(f"`{path}` has dtype {values.dtype.name}; expected integer class indices 0-{classes - 1}.")
    labels = values.astype(np.int64)
    outside = (labels < 0) | (labels >= classes)
    if outside.any():
        raise DataError(
            f"`{path}` holds {int(outside.sum())} labels outside 0-{classes - 1} (found "
            f"{sorted(set(labels[outside].tolist()))[:5]}); expected class indices 0-{classes - 1}."
        )
    return labels
