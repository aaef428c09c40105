"""The run graph of a study: shared pre-training nodes, fusion nodes, and which are done.

Pre-training is the expensive shared step, so there is exactly one pre-training node per
(modality, seed, resolved config), whichever conditions use it; its id carries a digest of
its config so a changed recipe can never be mistaken for a finished node. A node counts as
done only if its run directory says ``completed`` *and* holds the very config the study
would run now — anything else is run again on ``--resume``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import yaml

from fusebench.config import RunConfig, dump_config
from fusebench.engine.datasets import recipe_digest
from fusebench.engine.run_folder import RunState, live_state
from fusebench.io import atomic_write_json, read_json
from fusebench.study.spec import Study
from fusebench.study.spec_models import AxisValue, format_value

PLAN_FILE = "plan.json"


@dataclass(frozen=True)
class Node:
    """One run of the study.

    Attributes:
        id: folder name under ``runs/`` (see docs/study_results.md for the scheme).
        kind: ``"pretrain"`` (one encoder + linear head) or ``"fusion"``.
        config: the fully resolved run config, location included.
        seed: the run's seed.
        depends_on: ids of the pre-training nodes whose encoders this run loads.
        condition: the condition of a fusion node; ``None`` for pre-training.
        axes: axis name -> value this node was built for.
        modality: the modality a pre-training node trains; ``None`` for fusion.
        overrides: every override applied to the base config file, in order.
        same_as: id of an earlier node with an identical config (not run twice; e.g. scratch
            runs under a pre-training axis).
    """

    id: str
    kind: Literal["pretrain", "fusion"]
    config: RunConfig
    seed: int
    depends_on: tuple[str, ...] = ()
    condition: str | None = None
    axes: Mapping[str, AxisValue] = field(default_factory=dict)
    modality: str | None = None
    overrides: tuple[str, ...] = ()
    same_as: str | None = None

    @property
    def config_digest(self) -> str:
        """Digest of the config with the study folder's location taken out (see :func:`portable_digest`)."""
        return portable_digest(self.config.model_dump(mode="json"))


@dataclass(frozen=True)
class StudyGraph:
    """All nodes of a study in run order (each seed's pre-training first, then its fusion runs)."""

    study: Study
    study_dir: Path
    nodes: dict[str, Node]

    def run_dir(self, node_id: str) -> Path:
        """Where a node's results live (an alias reads its twin's folder)."""
        return self.study_dir / "runs" / (self.nodes[node_id].same_as or node_id)

    def users(self, node_id: str) -> int:
        """How many fusion runs load this pre-training node's encoder (for amortised cost)."""
        return sum(node_id in n.depends_on for n in self.nodes.values())

    def canonical(self, node_id: str) -> Node:
        """The node that actually runs for ``node_id`` (itself, or the twin it aliases)."""
        return self.nodes[self.nodes[node_id].same_as or node_id]

    def is_complete(self, node_id: str) -> bool:
        node = self.canonical(node_id)
        try:
            data = recipe_digest(node.config.data)
        except ValueError:  # a bad recipe fails when the node runs, where the error is recorded
            data = None
        return run_state(self.run_dir(node_id), node.config_digest, data) == RunState.COMPLETED


def config_digest(config: RunConfig) -> str:
    """Digest of the whole resolved config; names pre-training nodes, whose configs hold no study path."""
    return hashlib.sha256(dump_config(config).encode("utf-8")).hexdigest()


STUDY_PLACEHOLDER = "<study>"


def portable_digest(raw: Mapping[str, Any]) -> str:
    """Digest of a resolved run config (as a dict) that does not depend on where the study folder lives.

    A study node's config names its study folder (``experiment.runs_dir`` and ``name``) and
    the pre-trained encoders inside it by absolute path; those paths are replaced by
    ``<study>`` first, so a study folder that was moved or copied is still recognised.
    """
    found = raw.get("experiment")
    experiment: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    root = str(Path(str(experiment.get("runs_dir", ""))) / str(experiment.get("name", "")))

    def relocate(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: relocate(v) for k, v in value.items()}
        if isinstance(value, list):
            return [relocate(v) for v in value]
        if isinstance(value, str) and (value == root or value.startswith(root + "/")):
            return STUDY_PLACEHOLDER + value[len(root) :]
        return value

    portable = relocate(raw)
    portable["experiment"] = {**portable.get("experiment", {}), "runs_dir": STUDY_PLACEHOLDER, "name": ""}
    return hashlib.sha256(json.dumps(portable, sort_keys=True).encode("utf-8")).hexdigest()


def _config_matches(config_file: Path, digest: str) -> bool:
    """Whether a run's ``config.yaml`` is the config of ``digest`` — the portable digest, or the byte digest
    that plan files written before portable digests hold."""
    if not config_file.is_file():
        return False
    text = config_file.read_bytes()
    if hashlib.sha256(text).hexdigest() == digest:
        return True
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError:
        return False
    return isinstance(raw, dict) and portable_digest(raw) == digest


def run_state(run_dir: Path, digest: str, data_digest: str | None = None) -> str:
    """``completed`` / ``failed`` / ``interrupted`` / ``running`` / ``missing`` / ``stale`` (finished with
    another config).

    Only the training state counts (``status.json``; a re-evaluation's state is kept apart).
    With ``data_digest``, a run that recorded other data in its ``data.json`` (e.g. a dataset
    recipe default changed since) is stale too: its ``config.yaml`` alone cannot tell.
    """
    state = live_state(run_dir)
    if state == RunState.COMPLETED:
        if not _config_matches(run_dir / "config.yaml", digest):
            return RunState.STALE
        data_file = run_dir / "data.json"
        if data_digest is not None and data_file.is_file():
            recorded = read_json(data_file)
            if not isinstance(recorded, dict) or recorded.get("recipe_digest") != data_digest:
                return RunState.STALE
    return state


def _locate(config: RunConfig, study_dir: Path) -> RunConfig:
    """Name the study as the experiment, so a run's config.yaml says where it belongs."""
    experiment = config.experiment.model_copy(update={"name": study_dir.name, "runs_dir": str(study_dir.parent)})
    return config.model_copy(update={"experiment": experiment})


def _add_pretrain_node(
    nodes: dict[str, Node], config: RunConfig, study_dir: Path, seed: int, modality: str, overrides: Sequence[str]
) -> str:
    """The id of the pre-training node for ``config`` (added to ``nodes`` unless there), named by its config digest.

    One id scheme for the experts and the conditions' pre-training: the same config is one node, run once.
    """
    node_id = f"pretrain-{modality}-s{seed}-{config_digest(config)[:8]}"
    if node_id not in nodes:
        nodes[node_id] = Node(
            node_id, "pretrain", _locate(config, study_dir), seed, modality=modality, overrides=tuple(overrides)
        )
    return node_id


def _fusion_id(condition: str, values: Mapping[str, AxisValue], seed: int) -> str:
    return condition + "".join(f"__{k}={format_value(v)}" for k, v in values.items()) + f"-s{seed}"


def build_graph(study: Study, study_dir: str | Path) -> StudyGraph:
    """Every node of ``study``, writing into ``study_dir/runs/<node id>/``.

    >>> from fusebench.study.spec import load_spec  # doctest: +SKIP
    >>> graph = build_graph(load_spec("configs/studies/pretrain_vs_scratch.yaml"), "studies/x")  # doctest: +SKIP
    >>> [n for n in graph.nodes][:3]  # doctest: +SKIP
    ['pretrain-audio-s0-1a2b3c4d', 'pretrain-image-s0-5e6f7a8b', 'scratch-s0']
    """
    study_dir = Path(study_dir).resolve()
    spec = study.spec
    nodes: dict[str, Node] = {}
    pretrain_axes: dict[str, list[dict[str, AxisValue]]] = {}
    by_config: dict[str, str] = {}
    for seed in spec.seeds:
        for modality in study.expert_modalities:  # unimodal experts (MMPT 004 Sec. 4.1, App. B), loaded by no run
            for fraction in spec.experts.data_fractions if spec.experts else []:
                config = study.expert_config(modality, fraction, seed)
                _add_pretrain_node(nodes, config, study_dir, seed, modality, study.expert_overrides(fraction, seed))
        fusion: list[Node] = []
        for condition, values in ((c, v) for c in spec.conditions for v in study.axis_combinations()):
            pre_values = {k: v for k, v in values.items() if spec.axes[k].target == "pretrain"}
            deps: dict[str, str] = {}
            for modality in spec.conditions[condition].pretrained:
                config = study.pretrain_config(modality, pre_values, seed, condition)
                overrides = study.pretrain_overrides(pre_values, seed)
                node_id = _add_pretrain_node(nodes, config, study_dir, seed, modality, overrides)
                pretrain_axes.setdefault(node_id, []).append(pre_values)
                deps[modality] = node_id
            weights = {m: str(study_dir / "runs" / n / "encoders" / f"{m}.safetensors") for m, n in deps.items()}
            config = _locate(study.fusion_config(condition, values, seed, weights), study_dir)
            node_id = _fusion_id(condition, values, seed)
            twin = by_config.setdefault(dump_config(config), node_id)
            fusion.append(
                Node(
                    node_id,
                    "fusion",
                    config,
                    seed,
                    tuple(deps[m] for m in sorted(deps)),
                    condition,
                    dict(values),
                    overrides=tuple(study.fusion_overrides(condition, values, seed, weights)),
                    same_as=None if twin == node_id else twin,
                )
            )
        nodes.update({n.id: n for n in fusion})
    for node_id, assignments in pretrain_axes.items():  # axes a pre-training node was built for, if unambiguous
        common = {k: v for k, v in assignments[0].items() if all(a.get(k) == v for a in assignments)}
        nodes[node_id] = replace(nodes[node_id], axes=common)
    return StudyGraph(study, study_dir, nodes)


def write_plan(graph: StudyGraph) -> Path:
    """``plan.json``: the graph without configs, so results can be rebuilt from the study folder alone."""
    nodes = [
        {
            "node": n.id,
            "kind": n.kind,
            "condition": n.condition,
            "axes": dict(n.axes),
            "seed": n.seed,
            "modality": n.modality,
            "depends_on": list(n.depends_on),
            "same_as": n.same_as,
            "config_digest": n.config_digest,
            "config_overrides": list(n.overrides),
        }
        for n in graph.nodes.values()
    ]
    header = {
        "study": graph.study.spec.name,
        "modalities": graph.study.modalities,
        "patterns": graph.study.patterns,
        "task": graph.study.task.describe(),
        "primary_metric": graph.study.primary_metric,
    }
    return atomic_write_json(graph.study_dir / PLAN_FILE, {**header, "nodes": nodes})


def read_plan(study_dir: str | Path) -> dict[str, Any]:
    """The plan a study folder was last run with: ``{study, modalities, patterns, nodes}``."""
    file = Path(study_dir) / PLAN_FILE
    if not file.is_file():
        raise FileNotFoundError(
            f"`{file}` does not exist; is `{study_dir}` a study folder written by `fusebench study`?"
        )
    from fusebench.study.records import PlanRecord

    plan: dict[str, Any] = read_json(file)
    PlanRecord.from_json(plan, file)  # validated: the results are rebuilt from it
    return plan


def blocked_by(graph: StudyGraph, node_id: str, outcome: Mapping[str, str]) -> str | None:
    """The first dependency of ``node_id`` whose outcome is failed or skipped, if any."""
    for dep in graph.nodes[node_id].depends_on:
        if outcome.get(dep) in (RunState.FAILED, RunState.SKIPPED):
            return dep
    return None
