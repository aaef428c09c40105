"""The shape of ``results.json`` (docs/study_results.md), checked before the analysis reads it.

``results.json`` is rebuilt from the run folders after every node, but it is also a file a
user can edit, copy or truncate; the analysis indexes into it everywhere, so a wrong type
(``runs`` not a list, ``seed: null``) would surface as a ``TypeError`` deep inside a
statistic. This schema names the first wrong keys instead. Extra keys are allowed (the
file is a contract for what the report needs, not a closed format).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

Number = float | None  # JSON numbers; NaN is written as null


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class Curves(_Open):
    train_loss: list[Number] = Field(default_factory=list)
    validation_loss: list[Number] = Field(default_factory=list)
    validation: dict[str, dict[str, list[Number]]] = Field(default_factory=dict)


class RunRecord(_Open):
    node: str
    kind: Literal["pretrain", "fusion"] = "fusion"
    condition: str | None = None
    group: str | None = None
    axes: dict[str, bool | int | float | str] = Field(default_factory=dict)
    seed: int
    status: Literal["completed", "failed", "skipped", "pending", "interrupted"]
    error: str | None = None
    run_dir: str | None = None
    depends_on: list[str] = Field(default_factory=list)
    modality: str | None = None
    test: dict[str, dict[str, Number]] = Field(default_factory=dict)
    curves: Curves = Field(default_factory=Curves)
    timing: dict[str, Number | dict[str, Number] | bool] = Field(default_factory=dict)
    model: dict[str, Any] = Field(default_factory=dict)


class AnalysisSettings(_Open):
    primary_metric: str | None = None
    threshold: Number = None
    patterns: list[str] | None = None
    baseline: str | None = None
    comparisons: list[tuple[str, str]] | None = None
    chance: Number = None


class ResultsFile(_Open):
    study: str | None = None
    question: str | None = None
    modalities: list[str] = Field(min_length=1)
    patterns: list[str] | None = None
    seeds: list[int] | None = None
    conditions: list[str] | None = None
    axes: dict[str, list[bool | int | float | str]] | None = None
    analysis: AnalysisSettings | None = None
    runs: list[RunRecord]


def check_results(results: Any, file: Path) -> None:
    """Raise one paragraph naming ``file`` and each malformed key, with the way to get a good file back.

    Raises:
        ValueError: ``results`` does not follow docs/study_results.md.
    """
    if not isinstance(results, dict):
        raise ValueError(f"Results file `{file}` must hold a JSON object, got {type(results).__name__}; "
                         "delete it and `fusebench report` rebuilds it from the run folders.")
    try:
        ResultsFile.model_validate(results)
    except ValidationError as error:
        problems = [f"`{'.'.join(str(p) for p in item['loc']) or '(top level)'}`: {item['msg']} "
                    f"(got {item.get('input')!r:.60})" for item in error.errors()[:5]]
        more = f" and {error.error_count() - 5} more" if error.error_count() > 5 else ""
        raise ValueError(f"Results file `{file}` does not follow docs/study_results.md: " + "; ".join(problems)
                         + f"{more}. Delete it and `fusebench report` rebuilds it from the run folders.") from None


class PlanNode(_Open):
    node: str
    kind: Literal["pretrain", "fusion"]
    condition: str | None = None
    axes: dict[str, bool | int | float | str] = Field(default_factory=dict)
    seed: int
    modality: str | None = None
    depends_on: list[str] = Field(default_factory=list)
    same_as: str | None = None
    config_digest: str
    config_overrides: list[str] = Field(default_factory=list)


class PlanFile(_Open):
    modalities: list[str] = Field(min_length=1)
    patterns: list[str]
    nodes: list[PlanNode]


def check_plan(plan: Any, file: Path) -> None:
    """Raise one paragraph naming ``file`` and its malformed keys; the study's next run rewrites it.

    Raises:
        ValueError: ``plan`` is not the plan ``fusebench study`` writes.
    """
    try:
        PlanFile.model_validate(plan)
    except ValidationError as error:
        problems = [f"`{'.'.join(str(p) for p in item['loc']) or '(top level)'}`: {item['msg']}"
                    for item in error.errors()[:5]]
        raise ValueError(f"Plan file `{file}` is damaged: " + "; ".join(problems) + ". `fusebench study SPEC "
                         "--resume` writes it again.") from None
