"""One run config of a study: a config file, the study's overrides, and (for a pre-training
run taken from the base fusion config) the fusion-only keys left out.

Kept apart from :mod:`fusebench.study.spec` because it is the one step every run of a
study goes through, whether the spec is being validated (:mod:`fusebench.study.spec_check`)
or its graph built: the file is read once per modification time, the overrides applied in
order, and the result validated with an error that says which run of which study it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from fusebench.config import RunConfig, apply_overrides, read_yaml, validate_config
from fusebench.study.spec_models import AxisValue, format_value


def axes_text(values: dict[str, AxisValue]) -> str:
    """``", lr=0.1, width=64"``: the axis values of a run, for the place it is named in an error."""
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


def resolve_config(
    path: Path, overrides: Sequence[str], where: str, prune_to: str | None, derive: bool = False
) -> RunConfig:
    """The validated run config of ``path`` with ``overrides`` applied in order (later ones win).

    Args:
        path: the run config file.
        overrides: dotted ``key=value`` changes.
        where: which run of which study this is, appended to every error.
        prune_to: for a pre-training run, its modality: the other encoders are dropped.
        derive: make the (fusion) config a pre-training one with :func:`derive_pretraining`.

    Raises:
        ConfigError: the result is not a valid run config.
    """
    raw = apply_overrides(_read(path, path.stat().st_mtime_ns), overrides)
    if derive and prune_to is not None:  # after the overrides: shared ones may set fusion-only keys
        raw = derive_pretraining(raw, prune_to)
        where = f"{where} (derived from the base config)"
    if prune_to is not None:
        # A pre-training run builds one encoder; shared overrides of the others' widths do not concern it.
        encoders = raw.get("model", {}).get("encoders", {})
        raw.setdefault("model", {})["encoders"] = {m: e for m, e in encoders.items() if m == prune_to}
    return validate_config(raw, f"`{path}` with overrides {list(overrides)} {where}")
