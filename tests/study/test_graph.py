"""The run graph: shared pre-training nodes, stable ids, axes, completeness (no training here)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.study.test_spec import TINY, write_spec

from fusebench.config import dump_config
from fusebench.io import atomic_write_json, atomic_write_text
from fusebench.study.graph import blocked_by, build_graph, read_plan, write_plan
from fusebench.study.spec import load_spec

PRETRAIN_ID = re.compile(r"^pretrain-(audio|image)-s(\d+)-[0-9a-f]{8}$")
THREE_USERS = {
    "pretrained": {"pretrained": ["audio", "image"]},
    "image_scratch": {"pretrained": ["audio"]},
    "frozen": {"pretrained": ["audio", "image"], "overrides": ["model.freeze.audio=true", "model.freeze.image=true"]},
    "scratch": {},
}


def test_pretraining_node_shared_by_three_conditions_appears_once(tmp_path: Path) -> None:
    graph = build_graph(load_spec(write_spec(tmp_path, conditions=THREE_USERS)), tmp_path / "study")
    for seed in (0, 1):
        audio = [n for n in graph.nodes if n.startswith(f"pretrain-audio-s{seed}-")]
        image = [n for n in graph.nodes if n.startswith(f"pretrain-image-s{seed}-")]
        assert len(audio) == 1 and len(image) == 1
        assert graph.users(audio[0]) == 3 and graph.users(image[0]) == 2
        assert graph.nodes[f"image_scratch-s{seed}"].depends_on == (audio[0],)
        assert graph.nodes[f"frozen-s{seed}"].depends_on == (audio[0], image[0])
    assert len(graph.nodes) == 2 * (2 + len(THREE_USERS))


def test_ids_are_stable_and_follow_the_scheme(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    first = build_graph(load_spec(spec), tmp_path / "a" / "tiny")
    second = build_graph(load_spec(spec), tmp_path / "b" / "tiny")
    assert list(first.nodes) == list(second.nodes)
    pretrain = [n for n in first.nodes if n.startswith("pretrain-")]
    assert len(pretrain) == 4 and all(PRETRAIN_ID.match(n) for n in pretrain)
    fusion = [n for n in first.nodes if not n.startswith("pretrain-")]
    assert fusion == [
        "scratch-s0",
        "pretrained-s0",
        "audio_scratch-s0",
        "scratch-s1",
        "pretrained-s1",
        "audio_scratch-s1",
    ]
    # run order: each seed's pre-training comes before the fusion runs that load it
    order = list(first.nodes)
    for node in first.nodes.values():
        assert all(order.index(d) < order.index(node.id) for d in node.depends_on)


def test_pretrain_id_digest_changes_with_the_pretraining_config(tmp_path: Path) -> None:
    before = build_graph(load_spec(write_spec(tmp_path)), tmp_path / "tiny")
    pretrain = {**TINY["pretrain"], "overrides": ["training.epochs=2"]}
    after = build_graph(load_spec(write_spec(tmp_path, pretrain=pretrain)), tmp_path / "tiny")
    old = {n for n in before.nodes if n.startswith("pretrain-")}
    new = {n for n in after.nodes if n.startswith("pretrain-")}
    assert old.isdisjoint(new) and len(new) == 4


def test_fusion_config_loads_the_pretraining_nodes_encoders(tmp_path: Path) -> None:
    study_dir = tmp_path / "studies" / "tiny"
    graph = build_graph(load_spec(write_spec(tmp_path, threads_per_run=2)), study_dir)
    node = graph.nodes["audio_scratch-s1"]
    (image,) = node.depends_on
    assert node.config.model.pretrained == {"image": str(study_dir / "runs" / image / "encoders" / "image.safetensors")}
    assert node.config.experiment.seed == 1 and node.config.experiment.threads == 2
    assert node.config.logging.progress_bar is False
    assert node.config.experiment.name == "tiny" and node.config.experiment.runs_dir == str(study_dir.parent)
    assert graph.nodes[image].config.experiment.seed == 1
    assert graph.run_dir("audio_scratch-s1") == study_dir / "runs" / "audio_scratch-s1"
    assert node.overrides[-1].startswith("model.pretrained.image=")


def test_pretrain_axis_gives_distinct_pretraining_nodes(tmp_path: Path) -> None:
    axes = {
        "pretrain_fraction": {"key": "pretrain.data_fraction", "values": [0.5, 1.0], "target": "pretrain"},
        "fusion": {"key": "model.fusion.method", "values": ["concat", "sum"]},
    }
    graph = build_graph(load_spec(write_spec(tmp_path, axes=axes, seeds=[0])), tmp_path / "tiny")
    pretrain = [graph.nodes[n] for n in graph.nodes if n.startswith("pretrain-")]
    assert len(pretrain) == 4  # 2 modalities x 2 fractions; the fusion axis adds none
    fractions = sorted(
        (n.modality, n.config.pretrain.data_fraction, n.axes["pretrain_fraction"])  # type: ignore[union-attr]
        for n in pretrain
    )
    assert fractions == [("audio", 0.5, 0.5), ("audio", 1.0, 1.0), ("image", 0.5, 0.5), ("image", 1.0, 1.0)]
    node = graph.nodes["pretrained__pretrain_fraction=0.5__fusion=sum-s0"]
    assert node.axes == {"pretrain_fraction": 0.5, "fusion": "sum"} and node.config.model.fusion.method == "sum"
    assert {graph.nodes[d].config.pretrain.data_fraction for d in node.depends_on} == {0.5}  # type: ignore[union-attr]
    # scratch runs do not depend on the pre-training fraction: one run per fusion method, aliased
    twin = graph.nodes["scratch__pretrain_fraction=1.0__fusion=sum-s0"]
    assert twin.same_as == "scratch__pretrain_fraction=0.5__fusion=sum-s0"
    assert graph.run_dir(twin.id).name == twin.same_as
    assert sum(n.same_as is None for n in graph.nodes.values()) == 4 + 2 + 2 * 2 + 2 * 2  # pre, scratch, 2 conds


def test_completeness_needs_completed_status_and_the_same_config(tmp_path: Path) -> None:
    graph = build_graph(load_spec(write_spec(tmp_path)), tmp_path / "tiny")
    run_dir = graph.run_dir("scratch-s0")
    assert not graph.is_complete("scratch-s0")
    atomic_write_text(run_dir / "config.yaml", dump_config(graph.nodes["scratch-s0"].config))
    atomic_write_json(run_dir / "status.json", {"state": "failed"})
    assert not graph.is_complete("scratch-s0")
    atomic_write_json(run_dir / "status.json", {"state": "completed"})
    assert graph.is_complete("scratch-s0")
    atomic_write_text(run_dir / "config.yaml", dump_config(graph.nodes["scratch-s1"].config))
    assert not graph.is_complete("scratch-s0")


def test_blocked_by_names_the_failed_dependency(tmp_path: Path) -> None:
    graph = build_graph(load_spec(write_spec(tmp_path)), tmp_path / "tiny")
    node = graph.nodes["pretrained-s0"]
    assert blocked_by(graph, node.id, {d: "completed" for d in node.depends_on}) is None
    assert blocked_by(graph, node.id, {node.depends_on[1]: "failed"}) == node.depends_on[1]


def test_plan_round_trips_without_configs(tmp_path: Path) -> None:
    graph = build_graph(load_spec(write_spec(tmp_path)), tmp_path / "tiny")
    write_plan(graph)
    plan = read_plan(graph.study_dir)
    assert plan["modalities"] == ["audio", "image"] and plan["patterns"] == ["audio+image", "audio", "image"]
    assert [n["node"] for n in plan["nodes"]] == list(graph.nodes)
    assert plan["nodes"][0]["config_digest"] == graph.nodes[plan["nodes"][0]["node"]].config_digest


def test_a_completed_run_on_other_data_is_stale(tmp_path: Path) -> None:
    import hashlib
    import json

    from fusebench.study.graph import run_state

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text("experiment: {name: x}\n")
    (run_dir / "status.json").write_text(json.dumps({"state": "completed"}))
    (run_dir / "data.json").write_text(json.dumps({"recipe_digest": "avdigits:old"}))
    digest = hashlib.sha256((run_dir / "config.yaml").read_bytes()).hexdigest()
    assert run_state(run_dir, digest) == "completed"
    assert run_state(run_dir, digest, "avdigits:old") == "completed"
    assert run_state(run_dir, digest, "avdigits:new") == "stale"
