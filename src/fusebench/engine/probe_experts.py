"""Comparing a run's encoders with unimodal experts (``fusebench probe --expert m=RUN``).

An expert is a ``fusebench pretrain`` run of one modality on the same data; its test
metrics are set beside the multimodal run's ``m``-only pattern and beside the linear probe
of the run's ``m`` encoder, which is how a lazy branch shows. Kept apart from
:mod:`fusebench.engine.probe` because it reads other run folders and checks that they fit
(their modality, their data), while the probe module fits probes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fusebench.config import RunConfig, load_config
from fusebench.errors import ConfigError
from fusebench.io import read_json


def read_experts(config: RunConfig, run_dir: Path, experts: Mapping[str, str | Path]) -> dict[str, dict[str, Any]]:
    """Check each expert run and read its test metrics (before any probe is fitted).

    Raises:
        ConfigError: if an expert is not a pre-training run of its modality, or was tested
            on other data than the run at ``run_dir`` (whose config is ``config``).
    """
    out: dict[str, dict[str, Any]] = {}
    modalities = config.modalities()
    for m, expert_dir in sorted(experts.items()):
        if m not in modalities:
            raise ConfigError(f"`--expert {m}=...`: the run has no `{m}` encoder; it has {list(modalities)}.")
        expert_dir = Path(expert_dir)
        expert_config = load_config(expert_dir / "config.yaml")
        got = None if expert_config.pretrain is None else expert_config.pretrain.modality
        if got != m:
            raise ConfigError(
                f"`--expert {m}={expert_dir}` must be a `fusebench pretrain` run of `{m}`, got a run "
                f"with pretrain modality {got!r}."
            )
        theirs, ours = expert_config.data.content_options(), config.data.content_options()
        for key in sorted(set(theirs) | set(ours)):
            if theirs.get(key) != ours.get(key):
                raise ConfigError(
                    f"`--expert {m}={expert_dir}` was tested on other data: `data.{key}` is {theirs.get(key)!r} "
                    f"there and {ours.get(key)!r} in `{run_dir}`."
                )
        tests = expert_dir / "test_metrics.json"
        if not tests.is_file():
            raise FileNotFoundError(f"`--expert {m}`: no `{tests}`; was the expert run tested?")
        out[m] = {"run": str(expert_dir), "test": read_json(tests)[m]}
    return out


def expert_gaps(run_dir: Path, probes: Mapping[str, Any], experts: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """Each expert's test metrics next to the run's unimodal pattern and probe, with the gaps.

    ``gap`` = the multimodal model's ``m``-only pattern minus the expert (negative: the
    fused model is worse with ``m`` alone than a model trained on ``m`` alone, as in
    ``fusebench.engine.mmpt.unimodal_gap``); ``probe_gap`` = the linear probe on the run's
    ``m`` encoder minus the expert (negative: a weaker ``m`` representation).
    """
    run_tests = run_dir / "test_metrics.json"
    pattern_metrics = read_json(run_tests) if run_tests.is_file() else {}
    out: dict[str, Any] = {}
    for m, entry in experts.items():
        expert = entry["test"]
        shared = [k for k in expert if k != "count" and k in probes[m]["test"]]
        result = dict(entry)
        if m in pattern_metrics:
            result["multimodal_pattern"] = pattern_metrics[m]
            result["gap"] = {k: pattern_metrics[m][k] - expert[k] for k in shared if k in pattern_metrics[m]}
        result["probe_gap"] = {k: probes[m]["test"][k] - expert[k] for k in shared}
        out[m] = result
    return out
