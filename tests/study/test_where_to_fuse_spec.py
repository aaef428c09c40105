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
FUSION_LAYERS, POOLED_TOKENS, DECODER_LAYERS, SEEDS = (0, 1, 2, 3), (8, 40), (1, 2), (0, 1)


@pytest.fixture(scope="module")
def graph(tmp_path_factory: pytest.TempPathFactory) -> StudyGraph:
    return build_graph(load_spec(SPEC), tmp_path_factory.mktemp("studies") / "where_to_fuse")


def test_spec_sweeps_fusion_layer_pooled_tokens_and_decoder_size_from_scratch() -> None:
    spec = load_spec(SPEC).spec
    assert spec.base.endswith("mid_where_to_fuse.yaml") and spec.pretrain is None
    assert list(spec.conditions) == ["scratch"] and spec.conditions["scratch"].pretrained == []
    assert {name: (axis.key, tuple(axis.values)) for name, axis in spec.axes.items()} == {
        "fusion_layer": ("model.fusion.params.fusion_layer", FUSION_LAYERS),
        "pooled_tokens": ("model.fusion.params.pooled_tokens", POOLED_TOKENS),
        "decoder_layers": ("model.fusion.params.decoder_layers", DECODER_LAYERS),
    }
    assert tuple(spec.seeds) == SEEDS


def test_graph_has_one_fusion_node_per_combination_and_seed(graph: StudyGraph) -> None:
    expected = [
        f"scratch__fusion_layer={layer}__pooled_tokens={tokens}__decoder_layers={decoder}-s{seed}"
        for seed, layer, tokens, decoder in itertools.product(SEEDS, FUSION_LAYERS, POOLED_TOKENS, DECODER_LAYERS)
    ]
    assert len(graph.nodes) == 4 * 2 * 2 * 2 == 32
    assert list(graph.nodes) == expected
    assert all(n.kind == "fusion" and not n.depends_on and n.same_as is None for n in graph.nodes.values())


def test_each_node_sets_its_axes_in_the_fusion_params(graph: StudyGraph) -> None:
    for node in graph.nodes.values():
        params = node.config.model.fusion.params
        assert (node.config.model.fusion.type, node.config.model.fusion.method) == ("mid", "where_to_fuse")
        assert {k: getattr(params, k) for k in node.axes} == dict(node.axes), node.id
        assert node.config.experiment.seed == node.seed and node.config.experiment.threads == 1


def test_every_run_builds_and_later_fusion_costs_less_on_the_default(graph: StudyGraph) -> None:
    """002 Sec. 3.2.5 / Fig. 17: with direct injection (the default) fusing later is cheaper."""
    macs: dict[tuple[int, int, int], int] = {}
    for node in graph.nodes.values():
        if node.seed != SEEDS[0]:
            continue
        model = build_model(node.config, INPUT_SHAPES, 10)
        assert isinstance(model, WhereToFuseModel) and model.injection == "direct" and not model.side_blocks
        assert model.fusion_layer == node.axes["fusion_layer"] or node.axes["fusion_layer"] == 0
        assert model.pooled == {"audio": node.axes["pooled_tokens"]}
        assert len(model.decoder) == node.axes["decoder_layers"]
        key = (node.axes["fusion_layer"], node.axes["pooled_tokens"], node.axes["decoder_layers"])
        macs[key] = model.cost().total_macs
    assert len(macs) == 16
    for tokens, decoder in itertools.product(POOLED_TOKENS, DECODER_LAYERS):
        by_layer = [macs[layer, tokens, decoder] for layer in FUSION_LAYERS]
        assert by_layer == sorted(by_layer, reverse=True) and len(set(by_layer)) == len(by_layer), by_layer
    for layer, decoder in itertools.product(FUSION_LAYERS, DECODER_LAYERS):
        assert macs[layer, 40, decoder] > macs[layer, 8, decoder]  # more audio tokens, longer sequences
