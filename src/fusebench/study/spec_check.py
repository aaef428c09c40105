"""Every run a study implies, resolved and built before any training starts.

:func:`~fusebench.study.spec.load_spec` reads the spec; this module is the check it ends
with. It is separate because it is a different job: it resolves every condition and axis
combination (first seed), checks that each pre-trained encoder fits the fusion model that
loads it, and builds each distinct config's model on its data's shapes, so a study that
would fail after an hour of pre-training fails at load time instead.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from fusebench.config import RunConfig, read_yaml
from fusebench.data.patterns import parse_pattern
from fusebench.errors import FusebenchError, SpecError
from fusebench.study.spec_resolve import axes_text

if TYPE_CHECKING:
    from fusebench.engine.preflight import DataCache
    from fusebench.study.spec import Study


def check_runs(study: Study, data_cache: DataCache | None = None) -> None:
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
            study.fusion_config(condition, values, seed), f"condition `{condition}`{axes_text(values)}"
        )
        pre_values = {k: v for k, v in values.items() if spec.axes[k].target == "pretrain"}
        for modality in spec.conditions[condition].pretrained:
            own = f" for condition `{condition}`" if modality in spec.conditions[condition].pretrain_configs else ""
            built.check(
                study.pretrain_config(modality, pre_values, seed, condition),
                f"pre-training `{modality}`{own}{axes_text(pre_values)}",
            )
        for modality in spec.conditions[condition].pretrained:
            encoder = study.pretrain_config(modality, values, seed, condition).model.encoders[modality]
            if encoder != fusion.model.encoders[modality]:
                raise SpecError(
                    f"Study `{study.source}`: condition `{condition}`{axes_text(values)} loads a pre-trained "
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
