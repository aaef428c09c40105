"""The study spec's schema: conditions, pre-training, experts, axes and analysis options.

Strict pydantic models (unknown keys are errors with the closest key suggested, as for run
configs); :mod:`fusebench.study.spec` reads a spec file into them and resolves the runs.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from fusebench.errors import quoted

if TYPE_CHECKING:
    pass

SAFE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
AxisValue = bool | int | float | str


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


MODALITY_TEMPLATE = "{modality}"


class ConditionSpec(_Strict):
    """One arm of the study.

    ``pretrained`` lists the modalities whose encoder is pre-trained, or ``all`` for every
    modality of the base config except those in ``scratch``. ``pretrain_configs`` names,
    for some of them, *which* pre-training this condition loads (e.g. the audio encoder
    pre-trained on a related task: ``{audio: ../fsdd_speakers/pretrain_audio.yaml}``); the
    others use the study's pre-training (``study.pretrain``). Each distinct pre-training
    config is its own node per seed, shared by every condition that names it. A condition whose name holds
    ``{modality}`` is a template, expanded once per modality of the base config (its lists
    and overrides may use ``{modality}`` too): ``{modality}_scratch: {pretrained: all,
    scratch: ["{modality}"]}`` gives ``audio_scratch`` and ``image_scratch`` on AV-digits and
    ``audio_scratch``, ``text_scratch``, ``vision_scratch`` on MOSI, so one spec fits any dataset.
    """

    pretrained: list[str] | Literal["all"] = Field(
        default_factory=list, description="modalities whose encoder is pre-trained, or `all`"
    )
    scratch: list[str] = Field(default_factory=list, description="with `pretrained: all`: trained from scratch")
    overrides: list[str] = Field(default_factory=list)
    pretrain_configs: dict[str, str] = Field(
        default_factory=dict,
        description="modality -> the pre-training run config this condition's encoder comes "
        "from (relative to the spec), instead of `study.pretrain.configs` or the one derived from the base",
    )

    @model_validator(mode="after")
    def _scratch_needs_all(self) -> ConditionSpec:
        if self.scratch and self.pretrained != "all":
            raise ValueError(
                f"`scratch` ({self.scratch}) goes with `pretrained: all`, got `pretrained` "
                f"{self.pretrained}; with a list of pre-trained modalities the others are trained "
                "from scratch already"
            )
        return self

    def modalities(self, available: Sequence[str]) -> list[str]:
        """The pre-trained modalities among ``available`` (the base config's)."""
        if self.pretrained == "all":
            return [m for m in available if m not in self.scratch]
        return list(self.pretrained)


class PretrainSpec(_Strict):
    """Pre-training of the encoders that conditions load.

    A modality without an entry in ``configs`` is pre-trained with the base config itself,
    restricted to that modality's encoder plus a linear head (its fusion, train-time
    missingness and strategies dropped), so a spec need not name per-dataset files.
    """

    configs: dict[str, str] = Field(default_factory=dict, description="modality -> pre-training run config")
    overrides: list[str] = Field(default_factory=list)


class ExpertSpec(_Strict):
    """Unimodal experts kept for the analysis: pre-training runs (one encoder + a linear head).

    The MMPT paper's unimodal baseline is "a model trained on T_train without m_i"
    (``../shared/papers/004_d6fb5191247edfc1.txt``, section 4.1); its mixture-of-models grid
    (Appendix B) mixes a multimodal model trained on ``1 - p_train`` of the pairs with an
    expert trained on ``1 - p_train`` (or all) of one modality's data, and Best-Fusion
    (section 4.5) takes the best expert for each unimodal pattern. One pre-training node per
    modality, seed and ``data_fractions`` entry (``pretrain.data_fraction``, the same seeded
    subset as ``data.train_fraction`` of that value); a node that a condition loads anyway
    is the same node. No fusion run loads them.
    """

    data_fractions: list[float] = Field(
        default_factory=lambda: [1.0], min_length=1, description="pretrain.data_fraction of each expert, in (0, 1]"
    )
    modalities: list[str] | Literal["all"] = Field(default="all", description="modalities that get experts")

    @field_validator("data_fractions")
    @classmethod
    def _fractions(cls, values: list[float]) -> list[float]:
        bad = [v for v in values if not 0.0 < v <= 1.0]
        if bad:
            raise ValueError(f"expert data fractions must be in (0, 1], got {bad}")
        if len(set(values)) != len(values):
            raise ValueError(f"expert data fractions must be distinct, got {values}")
        return values


class AxisSpec(_Strict):
    key: str = Field(min_length=1, description="dotted run-config key the axis varies")
    values: list[AxisValue] = Field(min_length=1)
    target: Literal["fusion", "pretrain"] = "fusion"

    @field_validator("values")
    @classmethod
    def _distinct_safe_values(cls, values: list[AxisValue]) -> list[AxisValue]:
        labels = [format_value(v) for v in values]
        if len(set(labels)) != len(labels):
            raise ValueError(f"axis values must be distinct, got {labels}")
        bad = [label for label in labels if "/" in label or "__" in label or not label.strip() or " " in label]
        if bad:
            raise ValueError(f"axis values become folder names and may not hold `/`, `__` or spaces, got {bad}")
        return values


class AnalysisSpec(_Strict):
    """What the report tests and how.

    ``primary`` names the confirmatory comparisons: condition pairs compared on the test
    ``primary_metric`` on the first of ``patterns`` (the full pattern by default), which
    form the primary Holm family. Default: the compared condition pairs (``comparisons``,
    else each condition vs ``baseline``); in a single-condition study, each axis value vs
    the axis' first value. Everything else tested is secondary (its own Holm family);
    wall time is described, not tested. ``interval`` is the interval of a mean paired
    difference: ``t`` (paired t-interval, default), ``bca`` or ``auto`` (t below 10 seed
    pairs, BCa from there); see fusebench.study.intervals for the coverage measured.
    """

    primary_metric: str | None = Field(default=None, description="default: the dataset task's primary metric")
    threshold: float | None = Field(default=None, description="epochs-to-threshold on validation, full pattern")
    patterns: list[str] | None = None
    baseline: str | None = Field(default=None, description="default: the first condition")
    comparisons: list[tuple[str, str]] | None = Field(default=None, description="default: each vs baseline")
    primary: list[tuple[str, str]] | None = Field(default=None, description="default: the compared condition pairs")
    interval: Literal["t", "bca", "auto"] = "t"
    chance: float | None = None
    best_of: dict[str, list[str] | str] = Field(
        default_factory=dict,
        description="name -> conditions (or one `{modality}` template) reported as the "
        "better of them per pattern, e.g. the MMPT paper's dropout rule (004 Sec. 4.1)",
    )
    sensitivity: list[str] | None = Field(
        default=None, description="axes whose grid the hyperparameter-sensitivity section spans (default: none)"
    )


class StudySpec(_Strict):
    name: str = Field(pattern=SAFE_NAME)
    question: str = ""
    base: str
    overrides: list[str] = Field(default_factory=list)
    pretrain: PretrainSpec | None = None
    shared_overrides: list[str] = Field(default_factory=list)
    seeds: list[int] = Field(min_length=1)
    threads_per_run: int = Field(default=1, ge=1)
    conditions: dict[str, ConditionSpec] = Field(min_length=1)
    axes: dict[str, AxisSpec] = Field(default_factory=dict)
    experts: ExpertSpec | None = None
    analysis: AnalysisSpec = Field(default_factory=AnalysisSpec)

    @model_validator(mode="after")
    def _consistent(self) -> StudySpec:
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"`seeds` must be unique, got {self.seeds}")
        for kind, names in (("condition", self.conditions), ("axis", self.axes)):
            bad = [n for n in names if "__" in n or not re.fullmatch(SAFE_NAME, n.replace(MODALITY_TEMPLATE, "m"))]
            if bad:
                raise ValueError(
                    f"{kind} names become folder names: use letters, digits, `_`, `-`, `.` "
                    f"and no `__`, got {quoted(bad)}"
                )
        if not any(MODALITY_TEMPLATE in name for name in self.conditions):
            self.check_condition_names()
        sensitivity = self.analysis.sensitivity
        if sensitivity is not None:
            unknown = [a for a in sensitivity if a not in self.axes]
            if not sensitivity or unknown or len(set(sensitivity)) != len(sensitivity):
                raise ValueError(
                    f"`analysis.sensitivity` names the axes whose grid it spans, each once; got "
                    f"{sensitivity}, and the axes are {list(self.axes)}"
                )
        return self

    def check_condition_names(self) -> None:
        """The conditions ``analysis`` names exist (checked again once templates are expanded)."""
        analysis = self.analysis
        names = [
            analysis.baseline or "",
            *itertools.chain.from_iterable(analysis.comparisons or []),
            *itertools.chain.from_iterable(analysis.primary or []),
            *itertools.chain.from_iterable(v for v in analysis.best_of.values() if isinstance(v, list)),
        ]
        unknown = sorted({n for n in names if n and n not in self.conditions})
        if unknown:
            raise ValueError(
                f"`analysis` names conditions {quoted(unknown)}, which `conditions` does not have; "
                f"its conditions are {quoted(self.conditions)}"
            )
        same = [list(p) for p in [*(analysis.comparisons or []), *(analysis.primary or [])] if p[0] == p[1]]
        if same:
            raise ValueError(f"`analysis` compares a condition with itself: {same}; name two different conditions")

    def expanded(self, modalities: Sequence[str]) -> StudySpec:
        """Templates expanded and ``pretrained: all`` resolved for a base config with ``modalities``.

        Raises:
            ValueError: a condition pre-trains or trains from scratch a modality the base lacks.
        """
        conditions: dict[str, ConditionSpec] = {}
        for name, condition in self.conditions.items():
            for m in modalities if MODALITY_TEMPLATE in name else [None]:
                fill = partial(fill_modality, modality=m)
                scratch = [fill(x) for x in condition.scratch]
                chosen = (
                    [x for x in modalities if x not in scratch]
                    if condition.pretrained == "all"
                    else [fill(x) for x in condition.pretrained]
                )
                pretrained = list(chosen)
                unknown = sorted(set(pretrained + scratch) - set(modalities))
                if unknown:
                    raise ValueError(
                        f"condition `{fill(name)}` names modalities {unknown}, which the base config "
                        f"does not have; it has {list(modalities)}"
                    )
                configs = {fill(k): fill(v) for k, v in condition.pretrain_configs.items()}
                stray = sorted(set(configs) - set(pretrained))
                if stray:
                    raise ValueError(
                        f"condition `{fill(name)}` names `pretrain_configs` for {stray}, which it does "
                        f"not pre-train; it pre-trains {pretrained}"
                    )
                conditions[fill(name)] = ConditionSpec(
                    pretrained=pretrained, pretrain_configs=configs, overrides=[fill(o) for o in condition.overrides]
                )
        best_of = {}
        for name, members in self.analysis.best_of.items():
            if isinstance(members, str):  # one condition template: the conditions it expands to
                if MODALITY_TEMPLATE not in members or members not in self.conditions:
                    raise ValueError(
                        f"`analysis.best_of.{name}` is `{members}`; a single entry must be a condition "
                        f"template with `{MODALITY_TEMPLATE}` among the conditions "
                        f"{list(self.conditions)}, else give a list of conditions"
                    )
                members = [members.replace(MODALITY_TEMPLATE, m) for m in modalities]
            if len(members) < 2:
                raise ValueError(
                    f"`analysis.best_of.{name}` needs at least two conditions to choose from, got {members}"
                )
            best_of[name] = members
        analysis = self.analysis.model_copy(update={"best_of": best_of})
        spec = self.model_copy(update={"conditions": conditions, "analysis": analysis})
        spec.check_condition_names()
        return spec


class StudyFile(_Strict):
    study: StudySpec


def fill_modality(text: str, modality: str | None) -> str:
    """``text`` with ``{modality}`` replaced (unchanged for a condition that is no template)."""
    return text if modality is None else text.replace(MODALITY_TEMPLATE, modality)


def format_value(value: AxisValue) -> str:
    """How an axis value is written in node ids and groups: ``0.1``, ``gated``, ``true``."""
    return str(value).lower() if isinstance(value, bool) else str(value)
