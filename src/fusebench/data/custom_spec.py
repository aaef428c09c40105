"""``dataset.yaml``: what a user's own dataset folder holds (see :mod:`fusebench.data.custom`).

A small YAML file next to the arrays names each modality (its kind, per-sample shape and
whether it is a variable-length sequence) and the task, so that fusebench can check every
array file against it and build the model without guessing from the data. It is validated
as strictly as a run config: an unknown key is an error naming the file, the key and the
closest valid key. Example::

    name: my-sensors
    modalities:
      image: {kind: image, shape: [1, 28, 28]}
      sensor: {kind: vector, shape: [64]}
      speech: {kind: sequence, shape: [200, 40], variable_length: true}
    task: {kind: multiclass, classes: 3, label_names: [low, mid, high]}
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PositiveInt,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from fusebench.data.registry import ModalityInfo, ModalityKind
from fusebench.tasks import Task

SPEC_FILE = "dataset.yaml"
#: Modality names are file names and config keys: lowercase full names (DESIGN.md, "Data contract").
MODALITY_NAME = r"^[a-z][a-z0-9_]*$"
#: File stems a split folder reserves for itself.
RESERVED_NAMES = ("labels",)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModalitySpec(_Strict):
    """One modality: ``<split>/<name>.npy`` holds ``[N, *shape]``."""

    kind: ModalityKind = Field(description="image, audio, sequence, vector or text")
    shape: list[PositiveInt] = Field(min_length=1, description="per-sample shape; a sequence's (padded) length first")
    variable_length: bool = Field(
        default=False, description="samples have their own lengths in `<split>/<name>.lengths.npy`"
    )
    scale: float = Field(default=1.0, gt=0.0, description="inputs are multiplied by this (e.g. 1/255 for uint8 images)")


def _check_names(names: list[str] | None, size: int, what: str) -> None:
    if names is not None and len(names) != size:
        raise ValueError(f"`label_names` must hold one name per {what} ({size}), got {len(names)}")


class MulticlassSpec(_Strict):
    kind: Literal["multiclass"] = "multiclass"
    classes: int = Field(ge=2, description="number of classes; labels are integers 0..classes-1")
    label_names: list[str] | None = Field(default=None, description="one name per class")

    @model_validator(mode="after")
    def _named(self) -> MulticlassSpec:
        _check_names(self.label_names, self.classes, "class")
        return self


class MultilabelSpec(_Strict):
    kind: Literal["multilabel"] = "multilabel"
    labels: PositiveInt = Field(description="number of labels; targets are [N, labels] multi-hot 0/1")
    label_names: list[str] | None = Field(default=None, description="one name per label")

    @model_validator(mode="after")
    def _named(self) -> MultilabelSpec:
        _check_names(self.label_names, self.labels, "label")
        return self


class RegressionSpec(_Strict):
    kind: Literal["regression"] = "regression"
    range: tuple[float, float] | None = Field(default=None, description="closed range every target must lie in")

    @model_validator(mode="after")
    def _ordered(self) -> RegressionSpec:
        if self.range is not None and not self.range[0] < self.range[1]:
            raise ValueError(f"`range` must be [low, high] with low < high, got {list(self.range)}")
        return self


def _task_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        kind = value.get("kind")
        return None if kind is None else str(kind)
    return str(getattr(value, "kind", None))


TaskSpec = Annotated[
    Union[  # noqa: UP007 - tagged members need the typing form
        Annotated[MulticlassSpec, Tag("multiclass")],
        Annotated[MultilabelSpec, Tag("multilabel")],
        Annotated[RegressionSpec, Tag("regression")],
    ],
    Discriminator(_task_kind),
]


class DatasetSpec(_Strict):
    """The whole ``dataset.yaml``."""

    name: str | None = Field(default=None, description="free text for people reading the folder (not used)")
    description: str = Field(default="", description="free text for people reading the folder (not used)")
    modalities: dict[str, ModalitySpec] = Field(min_length=1)
    task: TaskSpec

    @field_validator("task", mode="before")
    @classmethod
    def _task_has_kind(cls, value: Any) -> Any:
        if isinstance(value, dict) and "kind" not in value:
            raise ValueError("needs a `kind`: one of multiclass, multilabel, regression")
        return value

    @field_validator("modalities")
    @classmethod
    def _names(cls, value: dict[str, ModalitySpec]) -> dict[str, ModalitySpec]:
        bad = [m for m in value if not re.fullmatch(MODALITY_NAME, m) or m in RESERVED_NAMES]
        if bad:
            raise ValueError(
                f"modality names are file names: lowercase letters, digits and `_`, starting with a "
                f"letter, and not {list(RESERVED_NAMES)}; got {bad}"
            )
        return value

    @property
    def output_size(self) -> int:
        if isinstance(self.task, MulticlassSpec):
            return self.task.classes
        if isinstance(self.task, MultilabelSpec):
            return self.task.labels
        return 1

    def build_task(self) -> Task:
        names = getattr(self.task, "label_names", None)
        target_range = self.task.range if isinstance(self.task, RegressionSpec) else None
        return Task(
            self.task.kind,
            self.output_size,
            label_names=tuple(names) if names is not None else None,
            target_range=target_range,
        )

    def modality_info(self) -> dict[str, ModalityInfo]:
        return {m: ModalityInfo(s.kind, tuple(s.shape), s.variable_length) for m, s in sorted(self.modalities.items())}


def read_spec(root: Path) -> DatasetSpec:
    """``root/dataset.yaml``, validated.

    Raises:
        FileNotFoundError: the folder or its dataset.yaml does not exist.
        ConfigError: the file is not YAML or does not fit :class:`DatasetSpec`.
    """
    from fusebench.config import ConfigError, explain_validation_error  # config imports the registry

    file = root / SPEC_FILE
    if not file.is_file():
        where = f"the folder `{root}` does not exist" if not root.is_dir() else f"`{file}` does not exist"
        raise FileNotFoundError(
            f"Expected a dataset folder with a `{SPEC_FILE}` (dataset `folder`), but {where}. {LAYOUT}"
        )
    try:
        raw = yaml.safe_load(file.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"`{file}` is not valid YAML: {error}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"`{file}` must hold a mapping with `modalities` and `task`, got {type(raw).__name__}.")
    try:
        return DatasetSpec.model_validate(raw)
    except ValidationError as error:
        raise explain_validation_error(error, f"`{file}`", root=DatasetSpec, kind="dataset description") from None


LAYOUT = (
    "Expected layout: `<root>/dataset.yaml` (modalities with kind and shape, and the task) and one folder per "
    "split, `<root>/train/`, `<root>/test/` and optionally `<root>/validation/`, each holding `<modality>.npy` "
    "(or `.npz`) of shape [N, *shape] per modality, `labels.npy`, and `<modality>.lengths.npy` for each "
    "variable-length modality (see docs/datasets/custom.md)."
)
