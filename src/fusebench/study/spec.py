"""The study spec: conditions x seeds (x axes) over one base run config, validated up front.

A study is only worth running if every run it implies is valid, so :func:`load_spec`
resolves the run config of every condition and axis combination (with pre-trained paths
as placeholders) and checks that each pre-trained encoder fits the fusion model that loads
it, before any training starts. Unknown keys are errors with the closest key suggested,
exactly as for run configs.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import ValidationError

from fusebench.config import (
    RunConfig,
    apply_overrides,
    explain_validation_error,
    read_yaml,
    validate_config,
)
from fusebench.data.patterns import parse_pattern, pattern_names
from fusebench.data.registry import get_dataset
from fusebench.errors import FusebenchError, SpecError
from fusebench.tasks import Task

if TYPE_CHECKING:
    from fusebench.engine.preflight import DataCache

from fusebench.study.spec_models import (
    AxisValue,
    StudyFile,
    StudySpec,
    format_value,
)


@dataclass(frozen=True)
class Study:
    """A validated study spec with its config files resolved against the spec's folder.

    Attributes:
        spec: the parsed spec, its condition templates expanded.
        source: the spec file.
        base: the base fusion run config file.
        pretrain_configs: modality -> pre-training run config file (the base file for a
            modality pre-trained from the base config).
        derived: the modalities pre-trained from the base config (see :class:`PretrainSpec`).
        condition_pretrain: condition -> modality -> the pre-training config file that
            condition names itself (``ConditionSpec.pretrain_configs``).
    """

    spec: StudySpec
    source: Path
    base: Path
    pretrain_configs: dict[str, Path]
    derived: frozenset[str] = frozenset()
    condition_pretrain: dict[str, dict[str, Path]] = field(default_factory=dict)

    @cached_property
    def modalities(self) -> list[str]:
        return list(self.fusion_config(next(iter(self.spec.conditions)), {}, self.spec.seeds[0]).modalities())

    @cached_property
    def task(self) -> Task:
        """The base config's dataset task (read from the dataset's options, no data loaded)."""
        from fusebench.engine.datasets import with_task_settings

        config = self.fusion_config(next(iter(self.spec.conditions)), {}, self.spec.seeds[0])
        return with_task_settings(get_dataset(config.data.dataset).task(config.data), config.task)

    @property
    def primary_metric(self) -> str:
        return self.spec.analysis.primary_metric or self.task.primary_metric

    @property
    def patterns(self) -> list[str]:
        return pattern_names(self.modalities)

    def axis_combinations(self) -> Iterator[dict[str, AxisValue]]:
        """Every combination of axis values (one dict per combination; ``{}`` without axes)."""
        names = list(self.spec.axes)
        for values in itertools.product(*(self.spec.axes[n].values for n in names)):
            yield dict(zip(names, values, strict=True))

    def study_overrides(self, seed: int) -> list[str]:
        """Set by the study on every run: the seed, fixed threads (same numbers on any executor), no bars."""
        return [
            f"experiment.seed={seed}",
            f"experiment.threads={self.spec.threads_per_run}",
            "logging.progress_bar=false",
        ]

    def axis_overrides(self, values: dict[str, AxisValue], target: str) -> list[str]:
        axes = self.spec.axes
        return [f"{axes[n].key}={json.dumps(v)}" for n, v in values.items() if axes[n].target == target]

    def fusion_overrides(
        self, condition: str, values: dict[str, AxisValue], seed: int, weights: dict[str, str]
    ) -> list[str]:
        """Every override of a fusion run, in the order applied (later ones win)."""
        spec = self.spec
        return [
            *spec.shared_overrides,
            *spec.overrides,
            *spec.conditions[condition].overrides,
            *self.axis_overrides(values, "fusion"),
            *self.study_overrides(seed),
            *(f"model.pretrained.{m}={json.dumps(weights[m])}" for m in spec.conditions[condition].pretrained),
        ]

    def pretrain_overrides(self, values: dict[str, AxisValue], seed: int) -> list[str]:
        extra = self.spec.pretrain.overrides if self.spec.pretrain is not None else []
        return [
            *self.spec.shared_overrides,
            *extra,
            *self.axis_overrides(values, "pretrain"),
            *self.study_overrides(seed),
        ]

    def fusion_config(
        self, condition: str, values: dict[str, AxisValue], seed: int, weights: dict[str, str] | None = None
    ) -> RunConfig:
        # before the pre-training nodes exist (validation), a stand-in path: configs do not check files
        weights = weights or {m: f"pretrain-{m}.safetensors" for m in self.spec.conditions[condition].pretrained}
        overrides = self.fusion_overrides(condition, values, seed, weights)
        where = f"(condition `{condition}`{_axes_text(values)} of study `{self.source}`)"
        return _resolve(self.base, overrides, where, prune_to=None)

    def pretrain_config(
        self, modality: str, values: dict[str, AxisValue], seed: int, condition: str | None = None
    ) -> RunConfig:
        """The pre-training run of ``modality`` that ``condition`` loads (the study's by default)."""
        own = self.condition_pretrain.get(condition or "", {}).get(modality)
        where = f"(pre-training `{modality}`{_axes_text(values)} of study `{self.source}`)"
        if own is not None:
            return _resolve(
                own, self.pretrain_overrides(values, seed), f"{where[:-1]}, for condition `{condition}`)", modality
            )
        return _resolve(
            self.pretrain_configs[modality],
            self.pretrain_overrides(values, seed),
            where,
            modality,
            derive=modality in self.derived,
        )

    @property
    def expert_modalities(self) -> list[str]:
        """The modalities that get unimodal experts (``experts.modalities``); none without ``experts``."""
        experts = self.spec.experts
        if experts is None:
            return []
        return list(self.modalities) if experts.modalities == "all" else list(experts.modalities)

    def expert_overrides(self, fraction: float, seed: int) -> list[str]:
        return [*self.pretrain_overrides({}, seed), f"pretrain.data_fraction={json.dumps(fraction)}"]

    def expert_config(self, modality: str, fraction: float, seed: int) -> RunConfig:
        """The pre-training config of ``modality``'s expert on ``fraction`` of the training split."""
        where = f"(unimodal expert `{modality}` on data fraction {fraction} of study `{self.source}`)"
        return _resolve(
            self.pretrain_configs[modality],
            self.expert_overrides(fraction, seed),
            where,
            modality,
            derive=modality in self.derived,
        )


def _axes_text(values: dict[str, AxisValue]) -> str:
    return "".join(f", {k}={format_value(v)}" for k, v in values.items())


@cache
def _read(path: Path, mtime_ns: int) -> dict[str, Any]:
    return read_yaml(path)  # apply_overrides copies it, so sharing the cached dict is safe


#: Sections of a fusion config that a pre-training run derived from it leaves out.
_FUSION_ONLY = {
    "data": ("missing_rate", "missing_patterns", "missing_resample", "modalities"),
    "model": ("pretrained", "freeze", "fusion", "missing_strategy"),
    "training": ("strategy",),
    "probe": (),
}


def derive_pretraining(raw: dict[str, Any], modality: str) -> dict[str, Any]:
    """A fusion config's raw dict made into the pre-training config of ``modality``'s encoder."""
    derived = {section: dict(values) if isinstance(values, dict) else values for section, values in raw.items()}
    for section, keys in _FUSION_ONLY.items():
        if not keys:
            derived.pop(section, None)
        elif isinstance(derived.get(section), dict):
            derived[section] = {k: v for k, v in derived[section].items() if k not in keys}
    experiment = dict(derived.get("experiment") or {})
    experiment["name"] = f"{experiment.get('name', 'experiment')}_pretrain_{modality}"
    derived["experiment"] = experiment
    derived["pretrain"] = {**(raw.get("pretrain") or {}), "modality": modality}  # keeps e.g. a data_fraction axis
    return derived


def _resolve(path: Path, overrides: Sequence[str], where: str, prune_to: str | None, derive: bool = False) -> RunConfig:
    raw = apply_overrides(_read(path, path.stat().st_mtime_ns), overrides)
    if derive and prune_to is not None:  # after the overrides: shared ones may set fusion-only keys
        raw = derive_pretraining(raw, prune_to)
        where = f"{where} (derived from the base config)"
    if prune_to is not None:
        # A pre-training run builds one encoder; shared overrides of the others' widths do not concern it.
        encoders = raw.get("model", {}).get("encoders", {})
        raw.setdefault("model", {})["encoders"] = {m: e for m, e in encoders.items() if m == prune_to}
    return validate_config(raw, f"`{path}` with overrides {list(overrides)} {where}")


def load_spec(
    path: str | Path,
    *,
    base: str | Path | None = None,
    name: str | None = None,
    overrides: Sequence[str] = (),
    data_cache: DataCache | None = None,
) -> Study:
    """Read, validate and resolve a study spec; every error names the file and the key.

    Args:
        path: the spec file.
        base: run the spec on this base config instead of its own ``base`` (a path as
            given, e.g. on the command line): one spec, any dataset.
        name: the study's name instead of the spec's (its folder under the study root).
        overrides: dotted ``key=value`` changes of the spec's own keys (``analysis.threshold=0.5``).
        data_cache: the datasets already loaded for checking runs (a caller that loads many
            specs on the same data); a new one by default.

    Raises:
        SpecError: the spec, a config it names, or a run it implies is invalid.
    """
    source = Path(path)
    raw = read_yaml(source)
    if overrides or name is not None:
        changes = [f"study.{item}" for item in overrides] + ([f"study.name={json.dumps(name)}"] if name else [])
        raw = apply_overrides(raw, changes)
    try:
        spec = StudyFile.model_validate(raw).study
    except ValidationError as error:
        raise _explain(error, source) from None
    folder = source.resolve().parent
    if base is not None:
        base_file = Path(base).resolve()
        if not base_file.is_file():
            raise SpecError(f"Study `{source}`: `--base {base}` does not exist; expected a run config file.")
    else:
        base_file = _config_path(folder, spec.base, source, "study.base")
    where = f"(the base of study `{source}`)"
    modalities = _resolve(base_file, [*spec.shared_overrides, *spec.overrides], where, None).modalities()
    try:
        spec = spec.expanded(modalities)
    except ValueError as error:
        raise SpecError(f"Study `{source}`: {error}.") from None
    explicit = {
        m: _config_path(folder, p, source, f"study.pretrain.configs.{m}")
        for m, p in (spec.pretrain.configs.items() if spec.pretrain else [])
    }
    own = {
        name: {
            m: _config_path(folder, p, source, f"study.conditions.{name}.pretrain_configs.{m}")
            for m, p in c.pretrain_configs.items()
        }
        for name, c in spec.conditions.items()
        if c.pretrain_configs
    }
    wanted = {m for c in spec.conditions.values() for m in c.modalities(modalities) if m not in c.pretrain_configs}
    if any(a.target == "pretrain" for a in spec.axes.values()):
        wanted |= set(explicit) or set(modalities)
    if spec.experts is not None:
        chosen = list(modalities) if spec.experts.modalities == "all" else spec.experts.modalities
        unknown = sorted(set(chosen) - set(modalities))
        if unknown:
            raise SpecError(
                f"Study `{source}`: `study.experts.modalities` names {unknown}, which the base config "
                f"does not have; it has {list(modalities)}."
            )
        wanted |= set(chosen)
    derived = frozenset(sorted(wanted - set(explicit)))
    study = Study(spec, source, base_file, {**explicit, **dict.fromkeys(derived, base_file)}, derived, own)
    _check_runs(study, data_cache)
    return study


def _config_path(folder: Path, relative: str, source: Path, key: str) -> Path:
    file = (folder / relative).resolve()
    if not file.is_file():
        raise SpecError(
            f"Study `{source}`: `{key}` is `{relative}`, but `{file}` does not exist; "
            "paths are relative to the spec file."
        )
    return file


def _check_runs(study: Study, data_cache: DataCache | None = None) -> None:
    """Resolve every run the study implies (first seed), so mistakes surface before training."""
    spec, seed = study.spec, study.spec.seeds[0]
    named = [(f"study.pretrain.configs.{m}", m, f) for m, f in study.pretrain_configs.items() if m not in study.derived]
    named += [
        (f"study.conditions.{c}.pretrain_configs.{m}", m, f)
        for c, files in study.condition_pretrain.items()
        for m, f in files.items()
    ]
    for key, modality, file in named:
        section = read_yaml(file).get("pretrain")
        if not isinstance(section, dict) or section.get("modality") != modality:
            raise SpecError(
                f"Study `{study.source}`: `{key}` is `{file}`, which is "
                f"not a pre-training config for `{modality}` (expected `pretrain: {{modality: "
                f"{modality}}}`)."
            )
    built = _Preflight(study, data_cache)
    for modality in study.expert_modalities:
        for fraction in spec.experts.data_fractions if spec.experts else []:
            built.check(
                study.expert_config(modality, fraction, seed),
                f"unimodal expert `{modality}` on data fraction {fraction}",
            )
    for condition, values in itertools.product(spec.conditions, study.axis_combinations()):
        fusion = built.check(
            study.fusion_config(condition, values, seed), f"condition `{condition}`{_axes_text(values)}"
        )
        pre_values = {k: v for k, v in values.items() if spec.axes[k].target == "pretrain"}
        for modality in spec.conditions[condition].pretrained:
            own = f" for condition `{condition}`" if modality in spec.conditions[condition].pretrain_configs else ""
            built.check(
                study.pretrain_config(modality, pre_values, seed, condition),
                f"pre-training `{modality}`{own}{_axes_text(pre_values)}",
            )
        for modality in spec.conditions[condition].pretrained:
            encoder = study.pretrain_config(modality, values, seed, condition).model.encoders[modality]
            if encoder != fusion.model.encoders[modality]:
                raise SpecError(
                    f"Study `{study.source}`: condition `{condition}`{_axes_text(values)} loads a pre-trained "
                    f"`{modality}` encoder {encoder.model_dump()} into a fusion model whose `{modality}` encoder "
                    f"is {fusion.model.encoders[modality].model_dump()}; make them equal (e.g. with "
                    "`shared_overrides`)."
                )
    built.build()
    try:
        study.task.check_metrics([study.primary_metric], where="`study.analysis.primary_metric`")
    except ValueError as error:
        raise SpecError(f"Study `{study.source}`: {error}") from None
    for name in spec.analysis.patterns or []:
        try:
            parse_pattern(name, study.modalities)
        except ValueError as error:
            raise SpecError(f"Study `{study.source}`: `study.analysis.patterns`: {error}") from None


class _Preflight:
    """Builds each distinct run config of a study once (model and strategies, on its data's shapes).

    :meth:`check` only collects the (already validated) configs and :meth:`build` builds
    them, so every config mistake of the spec is reported before any dataset is loaded.
    """

    def __init__(self, study: Study, data: DataCache | None = None) -> None:
        from fusebench.engine.preflight import DataCache

        self.study, self.data = study, data if data is not None else DataCache()
        self.pending: dict[str, tuple[RunConfig, str]] = {}

    def check(self, config: RunConfig, what: str) -> RunConfig:
        """``config``, to be built by :meth:`build` (once per distinct config; ``what`` names it in errors)."""
        self.pending.setdefault(config.model_dump_json(), (config, what))
        return config

    def build(self) -> None:
        """Build every collected config; an error is one paragraph naming its condition or pre-training."""
        from fusebench.engine.preflight import preflight

        for config, what in self.pending.values():
            try:
                preflight(config, self.data.inputs(config), load_files=False)
            except FusebenchError as error:
                raise SpecError(f"Study `{self.study.source}`: {what} cannot run: {error}") from None


def _explain(error: ValidationError, source: Path) -> SpecError:
    """Pydantic's report as one paragraph naming the spec file, each key and the fix."""
    return explain_validation_error(error, f"`{source}`", root=StudyFile, kind="study spec", as_type=SpecError)


def dump_spec(study: Study) -> str:
    """The spec as it ran, with config paths made absolute so the copy can be re-run from anywhere."""
    spec = study.spec.model_dump(mode="json")
    spec["base"] = str(study.base)
    if spec.get("pretrain"):
        spec["pretrain"]["configs"] = {m: str(p) for m, p in study.pretrain_configs.items() if m not in study.derived}
    for condition, files in study.condition_pretrain.items():
        spec["conditions"][condition]["pretrain_configs"] = {m: str(p) for m, p in files.items()}
    return yaml.safe_dump({"study": spec}, sort_keys=False)
