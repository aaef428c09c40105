"""fusebench's own error types: input fusebench cannot use, explained in one paragraph.

This module imports nothing but the standard library, apart from the config schema (which
builds from the dataset and encoder registries and so imports torch): ``fusebench --help``
and the error boundary of every command need only these classes.

The command line shows a :class:`FusebenchError` (and an ``OSError`` about a file) as one
paragraph with exit code 2, and lets every other exception surface as a traceback: a
``TypeError`` or a library's ``ValueError`` is a bug to report, not a user's mistake to
explain. So fusebench's own checks of user input raise one of these types, never a bare
``ValueError``; argument checks of the plain modules in ``fusebench.models`` (called by
code, not by users) stay ``ValueError``.

Every type subclasses ``ValueError`` so callers that caught ``ValueError`` before these
types existed keep working.

>>> issubclass(SpecError, ConfigError) and issubclass(ConfigError, FusebenchError)
True
>>> isinstance(DataError("Expected `x.npy`, got nothing."), ValueError)
True
"""

from __future__ import annotations

from collections.abc import Iterable


class FusebenchError(ValueError):
    """Input fusebench cannot use: a config, a dataset's files, a run or study folder."""


class ConfigError(FusebenchError):
    """A run config file, an override or a command-line option that cannot be used."""


class SpecError(ConfigError):
    """A study spec, or a run it implies, that cannot be run."""


class DataError(FusebenchError):
    """A dataset's files or arrays that do not have the documented layout, shapes or values."""


class CacheCorruptedError(DataError):
    """A prepared-data cache file that fails its integrity check (it is rebuilt, never trusted)."""


class UnsafePickleError(DataError):
    """A pickle file that would build an object fusebench does not allow (it is never unpickled)."""


class RunFolderError(FusebenchError):
    """A run folder that cannot be used now: in use, already holding a run, or not finished."""


class CheckpointError(FusebenchError):
    """A checkpoint or encoder weights file that cannot be used."""


class DamagedFileError(FusebenchError):
    """A file fusebench wrote (a run's JSON records, a cache) that is no longer what it wrote."""


class ResultsError(DamagedFileError):
    """A study folder's ``plan.json`` / ``results.json`` that is damaged or not fusebench's."""


class TrainingError(FusebenchError):
    """A run that cannot go on for a reason its config or data explain (e.g. a non-finite loss)."""


class NonFiniteLossError(TrainingError):
    """The loss became NaN or infinite: the weights are broken, so the run must fail, not go on."""


def quoted(names: Iterable[str]) -> str:
    """``names`` sorted and each in backticks, for a message that names keys or modalities.

    A modality is a key of the config (``model.encoders.<m>``), so an error about one
    names it the way every other key is named.

    >>> quoted(["image", "audio"])
    '`audio`, `image`'
    """
    return ", ".join(f"`{name}`" for name in sorted(names)) or "none"
