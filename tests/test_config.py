"""Config validation: strict keys with suggestions, dotted overrides, readable errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fusebench.config import ConfigError, apply_overrides, dump_config, load_config, validate_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        pytest.param(
            {"training": {"epoch": 3}},
            r"unknown key `training.epoch` \(did you mean `training.epochs`\?\)",
            id="typo-nested",
        ),
        pytest.param({"modle": {}}, r"unknown key `modle` \(did you mean `model`\?\)", id="typo-section"),
        pytest.param(
            {"model": {"encoders": {"audio": {"knd": "cnn"}}}},
            r"did you mean `model.encoders.audio.kind`",
            id="typo-in-dict-value",
        ),
        pytest.param(
            {"data": {"missing_rate": {"audio": 1.5}}}, r"missing_rate for `audio` must be in \[0, 1\)", id="rate-range"
        ),
        pytest.param(
            {"data": {"missing_rate": {"video": 0.1}}}, r"`data.missing_rate` names \['video'\]", id="unknown-modality"
        ),
        pytest.param({"model": {"freeze": {"text": True}}}, r"`model.freeze` names \['text'\]", id="freeze-unknown"),
        pytest.param({"training": {"optimizer": {"name": "adamax"}}}, r"training.optimizer.name", id="bad-literal"),
        pytest.param({"pretrain": {"modality": "text"}}, r"`pretrain.modality` is `text`", id="pretrain-modality"),
        pytest.param(
            {"data": {"dataset": "avdigit"}},
            r"`data.dataset` is `avdigit`, which is not registered "
            r"\(did you mean `avdigits`\?\)",
            id="unknown-dataset",
        ),
        pytest.param(
            {"data": {"rooot": "x"}},
            r"unknown key `data.rooot` \(did you mean `data.root`\?\)",
            id="dataset-option-typo",
        ),
        pytest.param(
            {"data": {"recipe": {"snr": 0}}},
            r"unknown key `data.recipe.snr` \(did you mean "
            r"`data.recipe.snr_db`\?\)",
            id="recipe-typo",
        ),
        pytest.param(
            {"data": {"recipe": {"image_energy_kept": 2}}},
            r"`data.recipe`: Expected image_energy_kept",
            id="recipe-range",
        ),
        pytest.param(
            {"model": {"encoders": {"audio": {"kind": "grux"}}}},
            r"`model.encoders.audio.kind` is `grux`, "
            r"which is not registered \(did you mean `gru`\?\)",
            id="unknown-encoder-kind",
        ),
        pytest.param(
            {"model": {"encoders": {"audio": {"kind": "gru", "widths": [8]}}}},
            r"unknown key `model.encoders.audio.widths`",
            id="option-of-another-kind",
        ),
        pytest.param(
            {"metrics": {"names": ["acuracy"]}},
            r"Unknown metric `acuracy` \(did you mean `accuracy`\?\)",
            id="metric-typo",
        ),
        pytest.param(
            {"data": {"modalities": ["text"]}},
            r"`data.modalities` names \['text'\], which have no encoder",
            id="subset-without-encoder",
        ),
        pytest.param(
            {"data": {"modalities": ["image"], "missing_rate": {"audio": 0.2}}},
            r"`data.missing_rate` names \['audio'\], which are not among the run's modalities",
            id="rate-outside-subset",
        ),
        pytest.param({"task": {"threshold": 1.5}}, r"`task.threshold`", id="threshold"),
    ],
)
def test_invalid_configs_name_the_key(raw: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        validate_config(raw, "`x.yaml`")
    assert "`x.yaml`" in str(info.value)


def test_overrides_set_nested_values_and_parse_yaml_types() -> None:
    raw = apply_overrides(
        {"training": {"epochs": 1}},
        [
            "training.epochs=5",
            "model.pretrained.audio=a.safetensors",
            "data.missing_rate={audio: 0.2}",
            "training.optimizer.lr=1e-4",
        ],
    )
    config = validate_config(raw)
    assert config.training.epochs == 5
    assert config.model.pretrained == {"audio": "a.safetensors"}
    assert config.data.missing_rate == {"audio": 0.2}
    assert config.training.optimizer.lr == pytest.approx(1e-4)


def test_override_without_equals_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"Override `training.epochs` is not of the form"):
        apply_overrides({}, ["training.epochs"])


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"does not exist"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("training: [1, 2\n")
    with pytest.raises(ConfigError, match=r"bad.yaml` is not valid YAML"):
        load_config(bad)


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("avdigits/*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_validate_and_round_trip(path: Path, tmp_path: Path) -> None:
    config = load_config(path)
    dumped = tmp_path / "resolved.yaml"
    dumped.write_text(dump_config(config))
    assert load_config(dumped) == config
    assert yaml.safe_load(dump_config(config))["experiment"]["name"] == config.experiment.name
