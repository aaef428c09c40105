"""The shipped where-to-fuse study: its axes reach the model's params, and every run it implies builds.

No training here: the spec is loaded, its graph built, and each node's model constructed,
so a fusion layer beyond the stack or too many pooled tokens fails now rather than an hour
into a study.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from fusebench.engine.build import build_model
from fusebench.models.midfusion import WhereToFuseModel
from fusebench.study.graph import StudyGraph, build_graph
from fusebench.study.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "configs" / "studies" / "where_to_fuse.yaml"
INPUT_SHAPES = {"audio": (1, 40, 40), "image": (1, 28, 28)}
FUSION_LAYERS, POOL_KINDS, POOLED_TOKENS, SEEDS = (0, 1, 2), ("mean", "max", "attention"), (1, 8), (0, 1)


@pytest.fixture(scope="module")
def graph(tmp_path_factory: pytest.TempPathFactory) -> StudyGraph:
    return build_graph(load_spec(SPEC), tmp_path_factory.mktemp("studies") / "where_to_fuse")


def test_spec_sweeps_fusion_layer_pool_kind_and_pooled_tokens_from_scratch() -> None:
    spec = load_spec(SPEC).spec
    assert spec.base.endswith("mid_where_to_fuse.yaml") and spec.pretrain is None
    assert list(spec.conditions) == ["scratch"] and spec.conditions["scratch"].pretrained == []
    assert {name: (axis.key, tuple(axis.values)) for name, axis in spec.axes.items()} == {
        "fusion_layer": ("model.fusion.params.fusion_layer", FUSION_LAYERS),
        "pool_kind": ("model.fusion.params.pool_kind", POOL_KINDS),
        "pooled_tokens": ("model.fusion.params.pooled_tokens", POOLED_TOKENS),
    }
    assert tuple(spec.seeds) == SEEDS


def test_graph_has_one_fusion_node_per_combination_and_seed(graph: StudyGraph) -> None:
    expected = [
        f"scratch__fusion_layer={layer}__pool_kind={kind}__pooled_tokens={tokens}-s{seed}"
        for seed, layer, kind, tokens in itertools.product(SEEDS, FUSION_LAYERS, POOL_KINDS, POOLED_TOKENS)
    ]
    assert len(graph.nodes) == 3 * 3 * 2 * 2 == 36
    assert list(graph.nodes) == expected
    assert all(n.kind == "fusion" and not n.depends_on and n.same_as is None for n in graph.nodes.values())


def test_each_node_sets_its_axes_in_the_fusion_params(graph: StudyGraph) -> None:
    for node in graph.nodes.values():
        params = node.config.model.fusion.params
        assert (node.config.model.fusion.type, node.config.model.fusion.method) == ("mid", "where_to_fuse")
        assert {k: getattr(params, k) for k in node.axes} == dict(node.axes), node.id
        assert node.config.experiment.seed == node.seed and node.config.experiment.threads == 1


def test_every_run_builds_and_costs_grow_with_joint_tokens(graph: StudyGraph) -> None:
    macs: dict[tuple[int, str, int], int] = {}
    for node in graph.nodes.values():
        if node.seed != SEEDS[0]:
            continue
        model = build_model(node.config, INPUT_SHAPES, 10)
        assert isinstance(model, WhereToFuseModel)
        assert (model.fusion_layer, model.pooled_tokens) == (node.axes["fusion_layer"], node.axes["pooled_tokens"])
        macs[node.axes["fusion_layer"], node.axes["pool_kind"], node.axes["pooled_tokens"]] = model.cost().total_macs
    assert len(macs) == 18
    for layer, kind in itertools.product(FUSION_LAYERS, POOL_KINDS):
        # more pooled audio tokens lengthen the joint blocks, unless there are none (late fusion)
        more, fewer = macs[layer, kind, 8], macs[layer, kind, 1]
        assert more > fewer if layer < max(FUSION_LAYERS) else more == fewer, (layer, kind)
