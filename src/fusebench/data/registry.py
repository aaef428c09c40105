"""The dataset registry: a name, a typed options model, and a loader returning three splits.

Adding a dataset is one module that calls :func:`register_dataset`; the built-in readers
are listed in :data:`BUILTIN_MODULES`, and third-party packages register through the
``fusebench.datasets`` entry point group, whose each entry names a :class:`DatasetEntry`
(or a function returning one)::

    [project.entry-points."fusebench.datasets"]
    mydata = "mypackage.fusebench_dataset:ENTRY"

so nobody edits fusebench to add a dataset. The entry point's name must be the dataset's
name. The run config's ``data:`` section is the discriminated union of every registered
options model (:func:`options_union`).

A plugin that fails to load (import error, wrong object, name clash) does not take the
other datasets down with it: it is reported in a warning and by ``fusebench data list``,
and using its name is an error that names the entry point and what went wrong.
"""

from __future__ import annotations

import difflib
import importlib
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Annotated, Any, Literal, Union, get_args

from pydantic import Discriminator, Tag
from torch import Tensor

from fusebench.data.options import DataOptions
from fusebench.errors import ConfigError
from fusebench.tasks import Task

ENTRY_POINT_GROUP = "fusebench.datasets"
BUILTIN_MODULES: tuple[str, ...] = (
    "fusebench.data.avdigits_dataset",
    "fusebench.data.avmnist",
    "fusebench.data.custom",
    "fusebench.data.fsdd_speakers",
    "fusebench.data.mmimdb",
    "fusebench.data.mmimdb_raw",
    "fusebench.data.mosi",
)
ModalityKind = Literal["image", "audio", "sequence", "vector", "text"]
MODALITY_KINDS: tuple[str, ...] = get_args(ModalityKind)
DEFAULT_DATASET = "avdigits"


@dataclass(frozen=True)
class ModalityInfo:
    """One modality of a dataset.

    Attributes:
        kind: ``image``, ``audio``, ``sequence``, ``vector`` or ``text``.
        shape: per-sample shape (no batch dimension); for a variable-length sequence the
            padded length comes first.
        variable_length: whether samples have their own lengths (``Split.lengths``), the
            rest of the first dimension being padding that models must ignore.
    """

    kind: ModalityKind
    shape: tuple[int, ...]
    variable_length: bool = False

    def __post_init__(self) -> None:
        if self.kind not in MODALITY_KINDS:
            raise ValueError(f"Expected a modality kind in {list(MODALITY_KINDS)}, got `{self.kind}`.")


@dataclass(frozen=True)
class Split:
    """One split as whole tensors: modality -> ``[N, ...]``, the target, optional lengths."""

    inputs: dict[str, Tensor]
    target: Tensor
    lengths: dict[str, Tensor] | None = None

    def __len__(self) -> int:
        return len(self.target)

    def rows(self, index: Tensor) -> Split:
        """The samples at ``index`` of every tensor."""
        return Split(
            inputs={m: x[index] for m, x in self.inputs.items()},
            target=self.target[index],
            lengths=None if self.lengths is None else {m: v[index] for m, v in self.lengths.items()},
        )

    def only(self, modalities: tuple[str, ...]) -> Split:
        """The same samples with only ``modalities`` (sorted)."""
        return Split(
            inputs={m: self.inputs[m] for m in modalities},
            target=self.target,
            lengths=None if self.lengths is None else _subset(self.lengths, modalities),
        )


def _subset(lengths: dict[str, Tensor], modalities: tuple[str, ...]) -> dict[str, Tensor] | None:
    kept = {m: v for m, v in lengths.items() if m in modalities}
    return kept or None


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset holds: its modalities (sorted by name) and its task."""

    modalities: dict[str, ModalityInfo]
    task: Task

    def describe(self) -> dict[str, Any]:
        return {
            "modalities": {
                m: {"kind": i.kind, "shape": list(i.shape), "variable_length": i.variable_length}
                for m, i in sorted(self.modalities.items())
            },
            "task": self.task.describe(),
        }


@dataclass(frozen=True)
class LoadedDataset:
    """A reader's result: the three splits with every modality, and their description."""

    train: Split
    validation: Split
    test: Split
    info: DatasetInfo

    def split(self, name: str) -> Split:
        return {"train": self.train, "validation": self.validation, "test": self.test}[name]


@dataclass(frozen=True)
class DatasetEntry:
    """A registered dataset.

    Attributes:
        name: the value of ``data.dataset``.
        options: its pydantic options model (a :class:`DataOptions` subclass whose
            ``dataset`` field is ``Literal[name]``).
        load: options -> :class:`LoadedDataset`; raises a one-paragraph error when the
            files are missing or malformed.
        task: options -> the dataset's :class:`~fusebench.tasks.Task` without loading any
            array (cheap: study specs and config checks use it before anything runs).
        summary: one line for ``fusebench data list`` and the README table.
    """

    name: str
    options: type[DataOptions]
    load: Callable[[Any], LoadedDataset]
    task: Callable[[Any], Task]
    summary: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


_REGISTRY: dict[str, DatasetEntry] = {}
#: entry-point name -> why it could not be registered
_BROKEN: dict[str, str] = {}
_loaded = False


def register_dataset(entry: DatasetEntry) -> DatasetEntry:
    """Add a dataset; its options model must name it in ``dataset: Literal[...]``."""
    annotation = entry.options.model_fields["dataset"].annotation
    if get_args(annotation) != (entry.name,):
        raise TypeError(
            f"Expected `{entry.options.__name__}.dataset` annotated `Literal[{entry.name!r}]`, got {annotation}."
        )
    if entry.name in _REGISTRY and _REGISTRY[entry.name] is not entry:
        raise ValueError(f"A dataset named `{entry.name}` is already registered ({_REGISTRY[entry.name].options}).")
    _REGISTRY[entry.name] = entry
    return entry


def _ensure_loaded() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in BUILTIN_MODULES:
        importlib.import_module(module)
    refresh_entry_points()


def refresh_entry_points() -> list[str]:
    """Read the ``fusebench.datasets`` entry points (again) and register what they name.

    Runs once on first use of the registry; call it after installing a plugin into a
    running interpreter (tests do). The run-config schema (``fusebench.config.RunConfig``)
    is built from the registry when it is first imported, so configs naming a dataset
    registered later validate only in a new process.

    Returns:
        The names of the entry points that are broken (see :func:`broken_entry_points`).
    """
    _BROKEN.clear()
    for point in entry_points(group=ENTRY_POINT_GROUP):
        where = f"The dataset entry point `{point.name} = {point.value}` (group `{ENTRY_POINT_GROUP}`)"
        try:
            found = point.load()
            entry = found() if callable(found) and not isinstance(found, DatasetEntry) else found
            if not isinstance(entry, DatasetEntry):
                raise TypeError(
                    f"expected it to name a DatasetEntry or a function returning one, got {type(entry).__name__}"
                )
            if entry.name != point.name:
                raise ValueError(f"expected the entry point to be named like its dataset, `{entry.name}`")
            register_dataset(entry)
        except Exception as error:  # a broken plugin must not hide which one broke, nor break the others
            _BROKEN[point.name] = f"{where} is broken: {type(error).__name__}: {error}"
            warnings.warn(
                f"{_BROKEN[point.name]}; dataset `{point.name}` is unavailable.", RuntimeWarning, stacklevel=2
            )
    return sorted(_BROKEN)


def broken_entry_points() -> dict[str, str]:
    """Entry-point name -> why it could not be registered."""
    _ensure_loaded()
    return dict(_BROKEN)


def dataset_names() -> list[str]:
    _ensure_loaded()
    return sorted(_REGISTRY)


def get_dataset(name: str) -> DatasetEntry:
    _ensure_loaded()
    if name in _BROKEN and name not in _REGISTRY:
        raise ConfigError(f"Dataset `{name}` cannot be used. {_BROKEN[name]}.")
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=1, cutoff=0.5)
        hint = f"did you mean `{close[0]}`?" if close else f"registered datasets: {sorted(_REGISTRY)}"
        raise ConfigError(f"Unknown dataset `{name}` ({hint}).")
    return _REGISTRY[name]


def _tag(value: Any) -> str:
    if isinstance(value, Mapping):
        return str(value.get("dataset", DEFAULT_DATASET))
    return str(getattr(value, "dataset", DEFAULT_DATASET))


def options_union() -> Any:
    """``data:`` as a discriminated union of every registered options model, keyed by ``dataset``.

    A section without ``dataset`` is the default dataset (AV-digits).
    """
    _ensure_loaded()
    members = tuple(Annotated[entry.options, Tag(name)] for name, entry in sorted(_REGISTRY.items()))
    return Annotated[Union[members], Discriminator(_tag)]  # noqa: UP007 - a runtime-built union
