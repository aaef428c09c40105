"""A condition that names which pre-training it loads (`pretrain_configs`), and `analysis.sensitivity` checks."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from tests.study.test_spec import CONFIGS, ROOT, TINY, write_spec

from fusebench.config import ConfigError
from fusebench.study.graph import build_graph
from fusebench.study.spec import dump_spec, load_spec

SPEAKERS = ROOT / "configs" / "fsdd_speakers" / "pretrain_audio.yaml"
ENCODER_8_16 = {"kind": "cnn", "out_dim": 64, "widths": [8, 16]}


def _conditions(config: Path | str) -> dict[str, object]:
    return {
        "scratch": {},
        "task_specific": {"pretrained": ["audio"]},
        "related_task": {"pretrained": ["audio"], "pretrain_configs": {"audio": str(config)}},
    }


def _speaker_config(folder: Path) -> Path:
    """The shipped speaker pre-training with TINY's audio encoder (8/16 channels, out_dim 64 as the base)."""
    raw = yaml.safe_load(SPEAKERS.read_text())
    raw["model"]["encoders"]["audio"] = dict(ENCODER_8_16)
    path = folder / "speakers.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_a_condition_loads_its_own_pretraining_as_a_separate_shared_node(tmp_path: Path) -> None:
    config = _speaker_config(tmp_path)
    spec = write_spec(
        tmp_path,
        conditions=_conditions(config),
        pretrain={"overrides": ["training.epochs=1"]},
        shared_overrides=["monitoring.enabled=false", "model.encoders.audio.widths=[8,16]"],
        overrides=["training.epochs=1", "data.recipe={subset: 1200}"],
    )
    study = load_spec(spec)
    assert study.condition_pretrain == {"related_task": {"audio": config.resolve()}}
    assert study.derived == {"audio"}  # task_specific's audio is still derived from the base
    related = study.pretrain_config("audio", {}, seed=1, condition="related_task")
    assert related.data.dataset == "fsdd_speakers" and related.training.epochs == 1 and related.experiment.seed == 1
    assert study.pretrain_config("audio", {}, seed=1, condition="task_specific").data.dataset == "avdigits"
    graph = build_graph(study, tmp_path / "study")
    for seed in (0, 1):
        pretraining = {
            n.config.data.dataset: n.id for n in graph.nodes.values() if n.kind == "pretrain" and n.seed == seed
        }
        assert set(pretraining) == {"avdigits", "fsdd_speakers"}
        assert graph.nodes[f"related_task-s{seed}"].depends_on == (pretraining["fsdd_speakers"],)
        assert graph.nodes[f"task_specific-s{seed}"].depends_on == (pretraining["avdigits"],)
        weights = graph.nodes[f"related_task-s{seed}"].config.model.pretrained["audio"]
        assert weights.endswith(f"runs/{pretraining['fsdd_speakers']}/encoders/audio.safetensors")
    dumped = yaml.safe_load(dump_spec(study))["study"]["conditions"]["related_task"]
    assert dumped["pretrain_configs"] == {"audio": str(config.resolve())}  # absolute: the copy re-runs anywhere


def test_the_shipped_transfer_study_compares_three_audio_encoders() -> None:
    study = load_spec(ROOT / "configs" / "studies" / "transfer_speakers.yaml")
    assert list(study.spec.conditions) == ["scratch", "task_specific", "related_task"]
    assert study.pretrain_config("audio", {}, 0, "related_task").data.dataset == "fsdd_speakers"
    assert study.pretrain_config("audio", {}, 0, "task_specific").data.dataset == "avdigits"


@pytest.mark.parametrize(
    ("conditions", "match"),
    [
        pytest.param(
            {"a": {"pretrained": ["audio"], "pretrain_configs": {"image": str(CONFIGS / "pretrain_image.yaml")}}},
            r"names `pretrain_configs` for \['image'\], which it does not pre-train",
            id="not-pretrained",
        ),
        pytest.param(
            {"a": {"pretrained": ["audio"], "pretrain_configs": {"audio": "nowhere.yaml"}}},
            r"`study.conditions.a.pretrain_configs.audio` is `nowhere.yaml`.*does not exist",
            id="missing",
        ),
        pytest.param(
            {"a": {"pretrained": ["audio"], "pretrain_configs": {"audio": str(CONFIGS / "late_fusion.yaml")}}},
            r"`study.conditions.a.pretrain_configs.audio`.*not a pre-training config for `audio`",
            id="not-a-pretraining",
        ),
        pytest.param(
            {"a": {"pretrained": ["audio"], "pretrain_configs": {"audio": str(SPEAKERS)}}},
            r"for condition `a`\): unknown key `data.recipe`",
            id="shared-override-it-lacks",
        ),
    ],
)
def test_bad_condition_pretraining_is_named(tmp_path: Path, conditions: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_spec(write_spec(tmp_path, conditions=conditions, analysis={}, pretrain=None))


def test_templates_fill_the_condition_pretraining(tmp_path: Path) -> None:
    conditions = {
        "scratch": {},
        "{modality}_own": {
            "pretrained": ["{modality}"],
            "pretrain_configs": {"{modality}": str(CONFIGS / "pretrain_{modality}.yaml")},
        },
    }
    study = load_spec(write_spec(tmp_path, conditions=conditions, pretrain=None, analysis={"baseline": "scratch"}))
    assert study.condition_pretrain == {
        "audio_own": {"audio": CONFIGS / "pretrain_audio.yaml"},
        "image_own": {"image": CONFIGS / "pretrain_image.yaml"},
    }
    assert study.derived == frozenset()


@pytest.mark.parametrize("names", [["lr", "nope"], [], ["lr", "lr"]], ids=["unknown", "empty", "repeated"])
def test_sensitivity_must_name_axes(tmp_path: Path, names: list[str]) -> None:
    axes = {"lr": {"key": "training.optimizer.lr", "values": [0.001, 0.003]}}
    with pytest.raises(ConfigError, match="`analysis.sensitivity` names the axes"):
        load_spec(write_spec(tmp_path, axes=axes, analysis={**TINY["analysis"], "sensitivity": names}))


def test_the_shipped_sensitivity_study_spans_lr_by_batch_size() -> None:
    study = load_spec(ROOT / "configs" / "studies" / "hyperparameter_sensitivity.yaml")
    assert study.spec.analysis.sensitivity == ["lr", "batch_size"]
    assert len(list(study.axis_combinations())) == 6 and study.derived == {"audio", "image"}
    config = study.fusion_config("pretrained", {"lr": 0.003, "batch_size": 32}, 0)
    assert config.training.optimizer.lr == 0.003 and config.data.batch_size == 32
    pretraining = study.pretrain_config("audio", {}, 0)  # fusion axes leave the pre-training alone
    assert pretraining.training.optimizer.lr == 0.001 and pretraining.data.batch_size == 128


def test_a_condition_pretraining_with_another_encoder_is_refused(tmp_path: Path) -> None:
    conditions = {"scratch": {}, "related_task": _conditions(SPEAKERS)["related_task"]}
    spec = write_spec(
        tmp_path,
        conditions=conditions,
        pretrain=None,
        analysis={},
        shared_overrides=["monitoring.enabled=false"],
        overrides=["model.encoders.audio.out_dim=16"],
    )
    with pytest.raises(ConfigError, match="condition `related_task` loads a pre-trained `audio` encoder"):
        load_spec(spec)
