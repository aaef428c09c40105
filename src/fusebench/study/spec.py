"""The study spec: conditions x seeds (x axes) over one base run config, validated up front.

A study is only worth running if every run it implies is valid, so :func:`load_spec`
resolves the run config of every condition and axis combination (with pre-trained paths
as placeholders) and checks that each pre-trained encoder fits the fusion model that loads
it, before any training starts (:mod:`fusebench.study.spec_check`). Unknown keys are errors
with the closest key suggested, exactly as for run configs. How one run's config is made
from a file and the study's overrides is :mod:`fusebench.study.spec_resolve`.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from pydantic import ValidationError

from fusebench.config import RunConfig, apply_overrides, explain_validation_error, read_yaml
from fusebench.data.patterns import pattern_names
from fusebench.data.registry import get_dataset
from fusebench.errors import SpecError
from fusebench.study.spec_check import check_runs
from fusebench.study.spec_models import AxisValue, StudyFile, StudySpec
from fusebench.study.spec_resolve import axes_text, resolve_config
from fusebench.tasks import Task

if TYPE_CHECKING:
    from fusebench.engine.preflight import DataCache


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
        where = f"(condition `{condition}`{axes_text(values)} of study `{self.source}`)"
        return resolve_config(self.base, overrides, where, prune_to=None)

    def pretrain_config(
        self, modality: str, values: dict[str, AxisValue], seed: int, condition: str | None = None
    ) -> RunConfig:
        """The pre-training run of ``modality`` that ``condition`` loads (the study's by default)."""
        own = self.condition_pretrain.get(condition or "", {}).get(modality)
        where = f"(pre-training `{modality}`{axes_text(values)} of study `{self.source}`)"
        if own is not None:
            return resolve_config(
                own, self.pretrain_overrides(values, seed), f"{where[:-1]}, for condition `{condition}`)", modality
            )
        return resolve_config(
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
        return resolve_config(
            self.pretrain_configs[modality],
            self.expert_overrides(fraction, seed),
            where,
            modality,
            derive=modality in self.derived,
        )


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
        raise explain_spec_error(error, source) from None
    folder = source.resolve().parent
    if base is not None:
        base_file = Path(base).resolve()
        if not base_file.is_file():
            raise SpecError(f"Study `{source}`: `--base {base}` does not exist; expected a run config file.")
    else:
        base_file = _config_path(folder, spec.base, source, "study.base")
    where = f"(the base of study `{source}`)"
    modalities = resolve_config(base_file, [*spec.shared_overrides, *spec.overrides], where, None).modalities()
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
    check_runs(study, data_cache)
    return study


def _config_path(folder: Path, relative: str, source: Path, key: str) -> Path:
    file = (folder / relative).resolve()
    if not file.is_file():
        raise SpecError(
            f"Study `{source}`: `{key}` is `{relative}`, but `{file}` does not exist; "
            "paths are relative to the spec file."
        )
    return file


def explain_spec_error(error: ValidationError, source: Path) -> SpecError:
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
