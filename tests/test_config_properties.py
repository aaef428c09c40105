"""Property: a mutated config or study spec builds a model, or is rejected at validation naming the key.

Hypothesis takes the shipped-style configs and specs (late, feature early, token early and
where-to-fuse fusion; a strategy; a study with pre-training, templates and an axis) and
renames, drops or retypes one key at any depth. Each mutant must either validate *and*
build (the preflight of ``fusebench train --dry-run`` and of a study: model, strategies,
metrics on the data's shapes) or be rejected with a :class:`~fusebench.errors.FusebenchError`
whose message names the key — never a traceback (any other exception fails the test), never
a failure after work started (the preflight is what a run or a study does before it starts).
Examples are drawn deterministically; the data is loaded once per distinct ``data:`` section.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests._helpers.runs import tiny_raw
from tests.study.test_spec import TINY

from fusebench.config import validate_config
from fusebench.engine.preflight import DataCache, preflight
from fusebench.errors import FusebenchError
from fusebench.study.spec import load_spec

SCALE = int(os.environ.get("FUSEBENCH_FUZZ_EXAMPLES", "1"))
SETTINGS = {
    "deadline": None,
    "database": None,
    "derandomize": True,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
}
#: Mutating these builds new dataset caches or writes elsewhere: slow, and not what is tested here.
PROTECTED = {("data", "recipe"), ("data", "root"), ("data", "cache_dir"), ("experiment", "runs_dir")}
DATA = DataCache()  # one load per distinct `data:` section for the whole module


def _configs() -> list[dict[str, Any]]:
    late = tiny_raw(Path("/tmp/fusebench-properties"), name="late")
    late["data"]["limit"] = {"train": 60, "validation": 30, "test": 30}
    feature = copy.deepcopy(late)
    feature["model"]["fusion"] = {
        "type": "early",
        "method": "feature",
        "hidden_dim": 32,
        "params": {"missing": "learned", "projectors": ["audio"], "projector_dim": 32},
    }
    feature["training"]["strategy"] = {"contrastive": {"anchors": ["image"], "other": "audio", "k": 3}}
    token = copy.deepcopy(late)
    token["model"]["fusion"] = {
        "type": "early",
        "method": "token",
        "params": {"dim": 16, "depth": 1, "heads": 2, "image_patch": [7, 7]},
    }
    mid = copy.deepcopy(late)
    mid["model"]["fusion"] = {
        "type": "mid",
        "method": "where_to_fuse",
        "params": {
            "primary": "image",
            "dim": 16,
            "num_layers": 2,
            "heads": 2,
            "fusion_layer": 1,
            "pool_kind": "attention",
            "pooled_tokens": 2,
            "image_patch": [7, 7],
        },
    }
    strategies = copy.deepcopy(late)
    strategies["model"]["fusion"]["method"] = "sum"
    strategies["training"]["strategy"] = {
        "modality_dropout": 0.2,
        "modality_dropout_of": "any",
        "aux_heads": {"audio": 0.5},
        "ogm_ge": True,
        "ogm_alpha": 0.3,
    }
    return [late, feature, token, mid, strategies]


CONFIGS = _configs()
TYPED_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 300),
    st.floats(-1.0, 2.0),
    st.text(max_size=8),
    st.lists(st.integers(-1, 16), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(0, 2), max_size=2),
)


def _paths(node: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every dict key path (at every depth, not below a protected path)."""
    if isinstance(node, dict):
        for key, value in node.items():
            path = (*prefix, str(key))
            if path not in PROTECTED:
                yield path
                yield from _paths(value, path)


def _parent(raw: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    node = raw
    for key in path[:-1]:
        node = node[key]
    return node


def _typo(key: str, draw: Any) -> str:
    """A realistic misspelling: a letter dropped, doubled or swapped, or a suffix."""
    how = draw(st.sampled_from(["drop", "double", "swap", "suffix"]))
    i = draw(st.integers(0, max(len(key) - 1, 0)))
    if how == "drop" and len(key) > 1:
        return key[:i] + key[i + 1 :]
    if how == "swap" and len(key) > 1:
        j = min(i + 1, len(key) - 1)
        letters = list(key)
        letters[i], letters[j] = letters[j], letters[i]
        return "".join(letters) if "".join(letters) != key else key + "s"
    if how == "double":
        return key[:i] + key[i] + key[i:]
    return key + "_x"


@st.composite
def mutated(draw: Any, bases: list[dict[str, Any]]) -> tuple[dict[str, Any], str, str]:
    """``(mutant, operation, the key it names)``: one key renamed, dropped or retyped."""
    raw = copy.deepcopy(draw(st.sampled_from(bases)))
    path = draw(st.sampled_from(list(_paths(raw))))
    parent, key = _parent(raw, path), path[-1]
    operation = draw(st.sampled_from(["rename", "drop", "retype"]))
    if operation == "rename":
        new = _typo(key, draw)
        parent[new] = parent.pop(key)
        return raw, operation, new
    if operation == "drop":
        parent.pop(key)
        return raw, operation, key
    parent[key] = draw(TYPED_VALUES.filter(lambda v: type(v) is not type(parent[key])))
    return raw, operation, key


def _names(message: str, key: str) -> bool:
    """Whether the error names ``key``: as a key of a dotted path, or quoted on its own."""
    return f".{key}`" in message or f"`{key}`" in message or f"`{key}." in message or f".{key}." in message


@settings(max_examples=150 * SCALE, **SETTINGS)
@given(case=mutated(CONFIGS))
def test_a_mutated_config_builds_or_is_rejected_naming_the_key(case: tuple[dict[str, Any], str, str]) -> None:
    raw, operation, key = case
    try:
        config = validate_config(raw, "`mutant.yaml`")
        preflight(config, DATA.inputs(config), load_files=False)
    except FusebenchError as error:
        assert _names(str(error), key), f"{operation} `{key}`: {error}"


@pytest.fixture(scope="module")
def spec_bases(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    study = copy.deepcopy(TINY)
    study["shared_overrides"] = [o for o in study["shared_overrides"] if not o.startswith("data.limit")] + [
        "data.limit={train: 60, validation: 30, test: 30}"
    ]
    study["conditions"] = {
        "scratch": {},
        "{modality}_scratch": {"pretrained": "all", "scratch": ["{modality}"]},
        "pretrained": {"pretrained": ["audio", "image"], "overrides": ["model.fusion.method=sum"]},
    }
    study["axes"] = {"fusion": {"key": "model.fusion.method", "values": ["concat", "gated"]}}
    derived = copy.deepcopy(study)
    derived.pop("pretrain")
    return [{"study": study}, {"study": derived}]


@settings(max_examples=60 * SCALE, **SETTINGS)
@given(data=st.data())
def test_a_mutated_study_spec_loads_and_builds_or_is_rejected_naming_the_key(
    spec_bases: list[dict[str, Any]], tmp_path: Path, data: st.DataObject
) -> None:
    raw, operation, key = data.draw(mutated(spec_bases))
    spec = tmp_path / "mutant.yaml"
    spec.write_text(yaml.safe_dump(raw, sort_keys=False))
    try:
        load_spec(spec, data_cache=DATA)
    except FusebenchError as error:
        assert _names(str(error), key), f"{operation} `{key}`: {error}"
