"""Study spec validation: every mistake is caught at load time, naming the file, key and fix."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from fusebench.config import ConfigError
from fusebench.study.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs" / "avdigits"
SHIPPED = sorted((ROOT / "configs" / "studies").glob("*.yaml"))

TINY: dict[str, Any] = {
    "name": "tiny",
    "question": "Does pre-training help on a tiny AV-digits subset?",
    "base": str(CONFIGS / "late_fusion.yaml"),
    "overrides": ["training.epochs=1"],
    "pretrain": {
        "configs": {"audio": str(CONFIGS / "pretrain_audio.yaml"), "image": str(CONFIGS / "pretrain_image.yaml")},
        "overrides": ["training.epochs=1"],
    },
    "shared_overrides": [
        "data.recipe={subset: 1200}",
        "data.limit={train: 300, validation: 100, test: 100}",
        "data.batch_size=50",
        "model.encoders.audio.widths=[8,16]",
        "model.encoders.image.widths=[8,16]",
        "monitoring.enabled=false",
    ],
    "seeds": [0, 1],
    "conditions": {
        "scratch": {},
        "pretrained": {"pretrained": ["audio", "image"]},
        "audio_scratch": {"pretrained": ["image"]},
    },
    "analysis": {"threshold": 0.3, "baseline": "scratch"},
}


def write_spec(folder: Path, name: str = "tiny", **changes: Any) -> Path:
    """A tiny study spec (300 training samples, 1 epoch, 2 seeds) with top-level ``changes``."""
    study = copy.deepcopy(TINY)
    study["name"] = name
    for key, value in changes.items():
        if value is None:
            study.pop(key, None)
        else:
            study[key] = value
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"study": study}, sort_keys=False))
    return path


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_studies_load_and_validate(path: Path) -> None:
    study = load_spec(path)
    assert study.spec.name == path.stem
    assert study.modalities == ["audio", "image"]
    assert study.spec.analysis.baseline in study.spec.conditions


def test_shipped_studies_are_all_there() -> None:
    assert {p.stem for p in SHIPPED} >= {"pretrain_vs_scratch", "fusion_methods", "missing_rates", "pretrain_fraction"}


def test_tiny_spec_resolves_seed_threads_and_overrides(tmp_path: Path) -> None:
    study = load_spec(write_spec(tmp_path, threads_per_run=2))
    config = study.fusion_config("pretrained", {}, seed=1)
    assert (config.experiment.seed, config.experiment.threads, config.logging.progress_bar) == (1, 2, False)
    assert config.training.epochs == 1 and config.model.encoders["audio"].widths == [8, 16]
    assert set(config.model.pretrained) == {"audio", "image"}
    pretrain = study.pretrain_config("audio", {}, seed=1)
    assert list(pretrain.model.encoders) == ["audio"]  # other modalities' shared overrides are dropped
    assert pretrain.pretrain is not None and pretrain.pretrain.modality == "audio"


def _spec_error(tmp_path: Path, **changes: Any) -> str:
    with pytest.raises(ConfigError) as error:
        load_spec(write_spec(tmp_path, **changes))
    return str(error.value)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param(
            {"conditons": {"a": {}}},
            r"unknown key `study.conditons` \(did you mean `study.conditions`",
            id="unknown-top-key",
        ),
        pytest.param(
            {"conditions": {"scratch": {"pretrianed": ["audio"]}}},
            r"unknown key `study.conditions.scratch.pretrianed` \(did you mean "
            r"`study.conditions.scratch.pretrained`",
            id="unknown-condition-key",
        ),
        pytest.param({"conditions": {}}, r"`study.conditions`: .*at least 1", id="no-conditions"),
        pytest.param({"seeds": [0, 1, 0]}, r"`seeds` must be unique, got \[0, 1, 0\]", id="duplicate-seeds"),
        pytest.param({"analysis": {"baseline": "scrach"}}, r"names conditions `scrach`", id="unknown-baseline"),
        pytest.param({"conditions": {"a__b": {}}}, r"no `__`, got `a__b`", id="bad-condition-name"),
        pytest.param(
            {"axes": {"fusion": {"key": "model.fusion.method", "values": ["sum", "sum"]}}},
            r"axis values must be distinct",
            id="duplicate-axis-values",
        ),
        pytest.param(
            {"threads_per_run": 0}, r"`study.threads_per_run`: Input should be greater than or equal to 1", id="threads"
        ),
        pytest.param(
            {"analysis": {"primary": [["scratch", "pretraind"]]}}, r"names conditions `pretraind`", id="unknown-primary"
        ),
        pytest.param(
            {"analysis": {"primary": [["scratch", "scratch"]]}},
            r"compares a condition with itself: \[\['scratch', 'scratch'\]\]",
            id="primary-self",
        ),
        pytest.param(
            {"analysis": {"interval": "percentile"}}, r"`study.analysis.interval`.*'t', 'bca' or 'auto'", id="interval"
        ),
    ],
)
def test_spec_mistakes_name_the_key(tmp_path: Path, changes: dict[str, Any], expected: str) -> None:
    message = _spec_error(tmp_path, **changes)
    assert "tiny.yaml" in message
    assert re.search(expected, message), message


def test_override_with_unknown_key_names_condition_and_suggests(tmp_path: Path) -> None:
    conditions = {**TINY["conditions"], "slow": {"overrides": ["training.epoch=3"]}}
    message = _spec_error(tmp_path, conditions=conditions)
    assert "condition `slow`" in message and "did you mean `training.epochs`" in message


def test_axis_override_is_resolved_at_load_time(tmp_path: Path) -> None:
    axes = {"lr": {"key": "training.optimizer.lr", "values": [0.001, -1.0]}}
    message = _spec_error(tmp_path, axes=axes)
    assert "lr=-1.0" in message and "training.optimizer.lr" in message


def test_malformed_override(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"Override `training.epochs` is not of the form `dotted.key=value`"):
        load_spec(write_spec(tmp_path, overrides=["training.epochs"]))


def test_missing_base_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"`study.base` is `nowhere.yaml`, but .*nowhere.yaml` does not exist"):
        load_spec(write_spec(tmp_path, base="nowhere.yaml"))


def test_pretrained_modality_must_have_a_fusion_encoder(tmp_path: Path) -> None:
    shared = [*TINY["shared_overrides"], "model.encoders={image: {kind: cnn, widths: [8, 16]}}", "data.missing_rate={}"]
    conditions = {"scratch": {}, "pretrained": {"pretrained": ["audio"]}}
    message = _spec_error(tmp_path, shared_overrides=shared, conditions=conditions)
    assert "condition `pretrained` names modalities ['audio'], which the base config does not have" in message
    assert "it has ['image']" in message


def test_pretrained_encoder_must_fit_the_fusion_encoder(tmp_path: Path) -> None:
    message = _spec_error(tmp_path, overrides=["training.epochs=1", "model.encoders.audio.out_dim=16"])
    assert "loads a pre-trained `audio` encoder" in message and "make them equal" in message


def test_pretrain_config_must_be_a_pretraining_config(tmp_path: Path) -> None:
    pretrain = {"configs": {"audio": str(CONFIGS / "late_fusion.yaml"), "image": str(CONFIGS / "pretrain_image.yaml")}}
    message = _spec_error(tmp_path, pretrain=pretrain)
    assert "not a pre-training config for `audio`" in message


def test_analysis_patterns_are_checked(tmp_path: Path) -> None:
    message = _spec_error(tmp_path, analysis={"patterns": ["audio+text"]})
    assert "`study.analysis.patterns`" in message and "audio+text" in message


def test_templates_and_pretrained_all_expand_for_the_base_configs_modalities(tmp_path: Path) -> None:
    """One spec fits any dataset: conditions named `{modality}_...` expand per modality of the base."""
    conditions = {
        "scratch": {},
        "pretrained": {"pretrained": "all"},
        "{modality}_scratch": {"pretrained": "all", "scratch": ["{modality}"]},
        "only_{modality}": {"pretrained": ["{modality}"]},
    }
    spec = write_spec(
        tmp_path,
        conditions=conditions,
        pretrain=None,
        analysis={"baseline": "scratch", "comparisons": [["scratch", "audio_scratch"]]},
    )
    study = load_spec(spec)
    assert {name: c.pretrained for name, c in study.spec.conditions.items()} == {
        "scratch": [],
        "pretrained": ["audio", "image"],
        "audio_scratch": ["image"],
        "image_scratch": ["audio"],
        "only_audio": ["audio"],
        "only_image": ["image"],
    }
    assert study.derived == {"audio", "image"}  # no `pretrain.configs`: each encoder from the base config


def test_pretraining_derived_from_the_base_config_keeps_one_encoder_and_no_fusion_settings(tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path,
        pretrain={"overrides": ["training.epochs=2"]},
        shared_overrides=[
            *TINY["shared_overrides"],
            "data.missing_rate={audio: 0.3}",
            "training.strategy.modality_dropout=0.2",
            "training.strategy.modality_dropout_of=any",
        ],
    )
    study = load_spec(spec)
    config = study.pretrain_config("audio", {}, seed=1)
    assert config.pretrain is not None and config.pretrain.modality == "audio"
    assert list(config.model.encoders) == ["audio"] and config.model.encoders["audio"].widths == [8, 16]
    assert config.training.epochs == 2 and config.experiment.seed == 1
    assert config.data.missing_rate == {} and config.training.strategy.modality_dropout == 0.0  # fusion-only
    assert config.experiment.name.endswith("_pretrain_audio")


def test_spec_runs_on_another_base_name_and_settings(tmp_path: Path) -> None:
    from tests._helpers.folder_data import user_config, write_folder

    folder = write_folder(tmp_path / "data", "multiclass", {"train": 40, "validation": 20, "test": 20})
    other = user_config(folder, "late_fusion.yaml", tmp_path / "three.yaml", tmp_path / "runs")
    conditions = {"scratch": {}, "{modality}_scratch": {"pretrained": "all", "scratch": ["{modality}"]}}
    spec = write_spec(tmp_path, conditions=conditions, pretrain=None, shared_overrides=[])
    study = load_spec(spec, base=other, name="renamed", overrides=["analysis.threshold=0.5", "seeds=[3]"])
    assert study.base == other.resolve() and study.spec.name == "renamed"
    assert list(study.spec.conditions) == ["scratch", "image_scratch", "sensor_scratch", "series_scratch"]
    assert study.spec.analysis.threshold == 0.5 and study.spec.seeds == [3]


@pytest.mark.parametrize(
    ("conditions", "match"),
    [
        pytest.param(
            {"a": {"pretrained": ["image"], "scratch": ["audio"]}},
            "`scratch`.*goes with `pretrained: all`",
            id="scratch-without-all",
        ),
        pytest.param({"a": {"pretrained": ["text"]}}, r"condition `a` names modalities \['text'\]", id="unknown"),
        pytest.param(
            {"{modality}_x": {"pretrained": "all", "scratch": ["{modality}", "video"]}},
            r"condition `audio_x` names modalities \['video'\]",
            id="template-unknown",
        ),
    ],
)
def test_bad_conditions_are_named(tmp_path: Path, conditions: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_spec(write_spec(tmp_path, conditions=conditions, analysis={}))


def test_a_modality_without_a_pretraining_config_is_pretrained_from_the_base(tmp_path: Path) -> None:
    study = load_spec(write_spec(tmp_path, pretrain={"configs": {"image": str(CONFIGS / "pretrain_image.yaml")}}))
    assert study.derived == {"audio"} and study.pretrain_configs["image"] == CONFIGS / "pretrain_image.yaml"
    assert study.pretrain_configs["audio"] == CONFIGS / "late_fusion.yaml"


def test_mmimdb_three_way_pretraining_study_validates_or_names_the_missing_extras() -> None:
    """Scratch / task-specific / general pre-training; the general encoders need the optional extras."""
    import importlib.util

    path = ROOT / "configs" / "mmimdb" / "pretraining_study.yaml"
    installed = all(importlib.util.find_spec(name) for name in ("sentence_transformers", "efficientnet_lite_pytorch"))
    if installed:
        try:  # the study builds its models on the data's shapes, so it needs the data too
            study = load_spec(path)
        except FileNotFoundError as error:
            assert "MM-IMDB is not on disk here" in str(error)
            return
        assert list(study.spec.conditions) == ["scratch", "task_pretrained", "general_pretrained"]
        assert study.derived == {"image", "text"} and study.primary_metric == "f1_samples"
    else:
        with pytest.raises(ConfigError, match=r"condition `general_pretrained`.*pip install 'fusebench\[text\]'"):
            load_spec(path)
