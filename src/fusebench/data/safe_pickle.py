"""Loading pickles that come from outside: numpy arrays and builtin containers only.

A pickle is a small program: loading one calls whatever callables it names (``os.system``,
``builtins.exec``, a class whose ``__setstate__`` writes files). The CMU-MOSI/MOSEI feature
files that MultiBench and MMSA distribute are pickles, and a user's copy may come from
anywhere, so fusebench never gives them to :func:`pickle.load`. :class:`RestrictedUnpickler`
resolves a global only if it is on a short allow-list of numpy array reconstruction
functions (for every pickle protocol and for files written with numpy 1.x or 2.x); anything
else stops the load with a :class:`UnsafePickleError` naming the file and the refused
global, before that global is ever called. Dicts, lists, tuples, strings, bytes, numbers,
``None`` and booleans need no globals and load as usual.
"""

from __future__ import annotations

import _compat_pickle
import codecs
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from fusebench.errors import UnsafePickleError

_CODEC_NAMES = frozenset({"latin1", "latin-1", "latin_1", "iso-8859-1", "iso8859-1", "l1"})


class _RefusedCall(Exception):
    """An admitted global was called with arguments outside what array pickles pass."""


def _latin1_encode(text: str, encoding: str = "latin1", errors: str = "strict") -> bytes:
    """``_codecs.encode`` as protocol-2/3 pickles use it to rebuild ``bytes``: latin-1 only."""
    if not isinstance(encoding, str) or encoding.lower() not in _CODEC_NAMES:
        raise _RefusedCall(f"it calls `_codecs.encode` with the codec {encoding!r} (only latin-1 rebuilds bytes)")
    return codecs.encode(text, "latin1", errors)


def _numpy_globals() -> dict[tuple[str, str], Callable[..., Any]]:
    """The numpy callables that ``ndarray``/``dtype``/scalar pickles name, under both module paths."""
    try:
        from numpy._core import multiarray, numeric  # numpy >= 2; numpy.core is its deprecated alias
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray, numeric  # type: ignore[no-redef]

    found: dict[tuple[str, str], Callable[..., Any]] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }
    for package in ("numpy.core", "numpy._core"):
        found[(f"{package}.multiarray", "_reconstruct")] = multiarray._reconstruct
        found[(f"{package}.multiarray", "scalar")] = multiarray.scalar
        found[(f"{package}.numeric", "_frombuffer")] = numeric._frombuffer  # type: ignore[attr-defined]
    return found


_ALLOWED: dict[tuple[str, str], Callable[..., Any]] = {
    **_numpy_globals(),
    ("_codecs", "encode"): _latin1_encode,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "bytearray"): bytearray,
    ("builtins", "complex"): complex,
}
#: ``module.name`` of every global a pickle may reference.
ALLOWED_GLOBALS: tuple[str, ...] = tuple(sorted(f"{m}.{n}" for m, n in _ALLOWED))


class RestrictedUnpickler(pickle.Unpickler):
    """A :class:`pickle.Unpickler` whose ``find_class`` admits only :data:`ALLOWED_GLOBALS`.

    Every route by which a pickle obtains a callable (``GLOBAL``, ``STACK_GLOBAL``, ``INST``,
    ``OBJ``, the ``EXT`` registry codes) goes through ``find_class``, so a refused name is
    never imported, let alone called.
    """

    def __init__(self, file: BinaryIO, source: str) -> None:
        super().__init__(file)
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        # protocol 0-2 pickles name Python 2 modules (`__builtin__.set`); map them as pickle itself does
        module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        found = _ALLOWED.get((module, name))
        if found is None:
            raise UnsafePickleError(
                f"Refusing to load `{self.source}`: it references the global `{module}.{name}`, and only numpy "
                "arrays (`numpy.ndarray`, `numpy.dtype` and numpy's array reconstruction functions) and builtin "
                "containers/scalars are admitted. A pickle can run any code it names when loaded, so fusebench "
                "never loads other objects; re-save the file as plain dicts of numpy arrays."
            )
        return found

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(
            f"Refusing to load `{self.source}`: it uses a persistent id ({pid!r}); only self-contained pickles of "
            "numpy arrays and builtin containers are admitted."
        )


def load_pickle(path: str | Path) -> Any:
    """The object in the pickle at ``path``, admitting only numpy arrays and builtin containers.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        UnsafePickleError: if the pickle references any other global (nothing it names runs).
        ValueError: if the file is not a readable pickle (truncated, another format).
    """
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"Expected a pickle file at `{file}`, found nothing there.")
    with file.open("rb") as handle:
        try:
            return RestrictedUnpickler(handle, str(file)).load()
        except UnsafePickleError:
            raise
        except _RefusedCall as error:
            raise UnsafePickleError(f"Refusing to load `{file}`: {error}.") from None
        except (
            pickle.UnpicklingError,
            EOFError,
            AttributeError,
            ImportError,
            IndexError,
            TypeError,
            ValueError,
            UnicodeDecodeError,
            MemoryError,
        ) as error:
            raise ValueError(
                f"Expected `{file}` to be a pickle of numpy arrays, but it could not be read: "
                f"{type(error).__name__}: {error}"
            ) from None
