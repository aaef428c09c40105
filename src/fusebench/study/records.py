"""Typed study records: ``results.json`` read once into frozen dataclasses, validated as they are built.

``results.json`` is rebuilt from the run folders after every node (``fusebench.study.results``),
but it is also a file a user can edit, copy, truncate or replace with another tool's JSON.
:func:`load_results` reads it into a :class:`StudyRecord` whose fields are checked at
construction (pydantic dataclasses, the docs/study_results.md schema), so a corrupt or
foreign file is one :class:`~fusebench.errors.ResultsError` naming the first wrong keys —
never a ``TypeError`` deep inside a statistic — and the analysis reads attributes, not
nested dicts. Extra keys are ignored (the file is a contract for what the report needs,
not a closed format). Records are frozen: the analysis cannot change what it reports on.

``StudyRecord.to_frame()`` is the long format of ``results.csv`` as a pandas DataFrame
(``pip install 'fusebench[pandas]'``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import ConfigDict, Field, ValidationError
from pydantic.dataclasses import dataclass

from fusebench.engine.run_folder import RunState
from fusebench.errors import DamagedFileError, ResultsError

if TYPE_CHECKING:
    import pandas

__all__ = [
    "AnalysisSettings",
    "Curves",
    "PlanNode",
    "PlanRecord",
    "RunRecord",
    "RunState",
    "StudyRecord",
    "load_results",
]
RESULTS_FILE = "results.json"
Number = float | None  # JSON numbers; NaN is written as null
AxisValue = bool | int | float | str
_OPEN = ConfigDict(extra="ignore")


@dataclass(frozen=True, config=_OPEN)
class Curves:
    """Per-epoch series of one run (index 0 = epoch 1)."""

    train_loss: tuple[Number, ...] = ()
    validation_loss: tuple[Number, ...] = ()
    validation: dict[str, dict[str, tuple[Number, ...]]] = field(default_factory=dict)


@dataclass(frozen=True, config=_OPEN)
class RunRecord:
    """One node of a study as ``results.json`` records it (see docs/study_results.md)."""

    node: str
    seed: int
    status: RunState
    kind: Literal["pretrain", "fusion"] = "fusion"
    condition: str | None = None
    group: str | None = None
    axes: dict[str, AxisValue] = field(default_factory=dict)
    error: str | None = None
    run_dir: str | None = None
    depends_on: tuple[str, ...] = ()
    modality: str | None = None
    test: dict[str, dict[str, Number]] = field(default_factory=dict)
    curves: Curves = field(default_factory=Curves)
    timing: dict[str, Number | dict[str, Number] | bool] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    resources: dict[str, Any] = field(default_factory=dict)
    config_overrides: tuple[str, ...] = ()

    @property
    def completed(self) -> bool:
        return self.status is RunState.COMPLETED

    def seconds(self, key: str) -> float | None:
        """A number of ``timing`` (``training``, ``fit``, ...), None when absent or not a number."""
        value = self.timing.get(key)
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

    def per_modality_seconds(self, key: str) -> dict[str, float | None]:
        """A per-modality entry of ``timing`` (``pretraining``, ``pretraining_amortised``)."""
        value = self.timing.get(key)
        return dict(value) if isinstance(value, dict) else {}


@dataclass(frozen=True, config=_OPEN)
class AnalysisSettings:
    """The spec's ``analysis`` section as the study folder recorded it."""

    primary_metric: str | None = None
    threshold: Number = None
    patterns: tuple[str, ...] | None = None
    baseline: str | None = None
    comparisons: tuple[tuple[str, str], ...] | None = None
    chance: Number = None
    primary: tuple[tuple[str, str], ...] | None = None
    interval: Literal["t", "bca", "auto"] = "t"
    best_of: dict[str, tuple[str, ...]] = field(default_factory=dict)  # name -> conditions (MMPT 004 Sec. 4.1)
    sensitivity: tuple[str, ...] | None = None


@dataclass(frozen=True, config=_OPEN)
class StudyRecord:
    """A study's ``results.json``: its setup, its progress and every run record."""

    modalities: Annotated[tuple[str, ...], Field(min_length=1)]
    runs: tuple[RunRecord, ...]
    study: str | None = None
    question: str | None = None
    patterns: tuple[str, ...] | None = None
    seeds: tuple[int, ...] | None = None
    conditions: tuple[str, ...] | None = None
    axes: dict[str, tuple[AxisValue, ...]] | None = None
    task: dict[str, Any] | None = None
    analysis: AnalysisSettings = field(default_factory=AnalysisSettings)
    progress: dict[str, int] = field(default_factory=dict)
    execution: tuple[dict[str, Any], ...] = ()

    @classmethod
    def from_json(cls, payload: Any, source: str | Path = "<results>") -> StudyRecord:
        """Validate a parsed ``results.json``.

        Raises:
            ResultsError: names ``source`` and each malformed key, and how to get a good file back.
        """
        if not isinstance(payload, dict):
            raise ResultsError(
                f"Results file `{source}` must hold a JSON object, got {type(payload).__name__}; "
                "delete it and `fusebench report` rebuilds it from the run folders."
            )
        try:
            return cls(**payload)
        except (ValidationError, TypeError) as error:
            raise ResultsError(
                _problems(error, f"Results file `{source}` does not follow docs/study_results.md")
                + " Delete it and `fusebench report` rebuilds it from the run folders."
            ) from None

    def to_json(self) -> dict[str, Any]:
        """The record as ``results.json`` holds it (tuples as lists, states as strings)."""
        return json.loads(json.dumps(asdict(self)))  # type: ignore[no-any-return]

    @property
    def primary_metric(self) -> str:
        return self.analysis.primary_metric or (self.task or {}).get("primary_metric") or "accuracy"

    def fusion_runs(self) -> list[RunRecord]:
        return [r for r in self.runs if r.kind == "fusion"]

    def to_frame(self) -> pandas.DataFrame:
        """The long format of ``results.csv``: one row per (node, split, epoch, pattern, metric) value.

        Raises:
            ModuleNotFoundError: pandas is not installed (``pip install 'fusebench[pandas]'``).
        """
        from fusebench.study.long_format import long_rows

        return long_frame(long_rows(self.to_json()))


def long_frame(rows: list[dict[str, Any]]) -> pandas.DataFrame:
    """Long-format rows as a pandas DataFrame (``.to_frame()`` of runs and studies; pandas is an extra)."""
    try:
        import pandas
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            "`to_frame()` needs pandas, an optional extra of fusebench: install it with "
            "`pip install 'fusebench[pandas]'`."
        ) from None
    return pandas.DataFrame(rows)


def _problems(error: ValidationError | TypeError, head: str) -> str:
    if isinstance(error, TypeError):  # a key the record requires is missing, e.g. `modalities`
        return f"{head}: {error}."
    # JSON has no tuples: a record's tuple field is a list in the file
    problems = [
        f"`{'.'.join(str(p) for p in item['loc']) or '(top level)'}`: "
        + str(item["msg"]).replace("a valid tuple", "a valid list")
        + ("" if item["type"] == "missing" else f" (got {item.get('input')!r:.60})")
        for item in error.errors()[:5]
    ]
    more = f" and {error.error_count() - 5} more" if error.error_count() > 5 else ""
    return f"{head}: " + "; ".join(problems) + f"{more}."


@dataclass(frozen=True, config=_OPEN)
class PlanNode:
    """One node of ``plan.json``: the graph without configs (see :func:`fusebench.study.graph.write_plan`)."""

    node: str
    kind: Literal["pretrain", "fusion"]
    seed: int
    config_digest: str
    condition: str | None = None
    axes: dict[str, AxisValue] = field(default_factory=dict)
    modality: str | None = None
    depends_on: tuple[str, ...] = ()
    same_as: str | None = None
    config_overrides: tuple[str, ...] = ()


@dataclass(frozen=True, config=_OPEN)
class PlanRecord:
    """A study folder's ``plan.json``: what ran, so results can be rebuilt from the folder alone."""

    modalities: Annotated[tuple[str, ...], Field(min_length=1)]
    patterns: tuple[str, ...] = ()
    nodes: tuple[PlanNode, ...] = ()
    study: str | None = None
    task: dict[str, Any] | None = None
    primary_metric: str | None = None

    @classmethod
    def from_json(cls, payload: Any, source: str | Path) -> PlanRecord:
        """Validate a parsed ``plan.json``.

        Raises:
            ResultsError: names ``source`` and the malformed keys; the study's next run rewrites it.
        """
        try:
            if not isinstance(payload, dict):
                raise TypeError(f"expected a JSON object, got {type(payload).__name__}")
            return cls(**payload)
        except (ValidationError, TypeError) as error:
            raise ResultsError(
                _problems(error, f"Plan file `{source}` is damaged") + " `fusebench study SPEC "
                "--resume` writes it again."
            ) from None


def load_results(study_dir: str | Path) -> StudyRecord:
    """The study's ``results.json``, rebuilt from its run folders when it is missing, as a :class:`StudyRecord`.

    Raises:
        FileNotFoundError: no results.json and no run folders to rebuild it from.
        ResultsError: results.json is not JSON, or does not follow docs/study_results.md.
    """
    from fusebench.io import atomic_write_json, read_json

    study_dir = Path(study_dir)
    file = study_dir / RESULTS_FILE
    if not file.is_file() and (study_dir / "runs").is_dir():
        from fusebench.study.results import collect_results

        atomic_write_json(file, collect_results(study_dir))
    if not file.is_file():
        raise FileNotFoundError(
            f"Expected `{file}` (written by `fusebench study`), but it does not exist and "
            f"`{study_dir / 'runs'}` holds no runs to rebuild it from; is `{study_dir}` a study directory?"
        )
    try:
        payload = read_json(file)
    except DamagedFileError as error:
        raise ResultsError(f"{error} Delete it and `fusebench report` rebuilds it from the run folders.") from None
    return StudyRecord.from_json(payload, file)
