"""engine/datasets: a run's splits, task settings, metrics and train-time missingness, on the AV-digits subset."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tests._helpers.runs import tiny_config, tiny_raw

from fusebench.config import TaskConfig, apply_overrides, validate_config
from fusebench.data.amputation import MCARAmputer, PatternMixtureAmputer
from fusebench.data.registry import LoadedDataset
from fusebench.engine.datasets import (
    load_dataset,
    run_splits,
    run_task,
    select_splits,
    train_masks,
    with_task_settings,
)
from fusebench.engine.preflight import RunInputs, preflight
from fusebench.errors import ConfigError

LIMITS = ["data.limit={train: 80, validation: 20, test: 20}"]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> LoadedDataset:
    return load_dataset(tiny_config(tmp_path_factory.mktemp("runs"), LIMITS).data)


def test_the_limit_is_applied_and_a_modality_subset_keeps_only_its_inputs(
    loaded: LoadedDataset, tmp_path: Path
) -> None:
    assert (len(loaded.train), len(loaded.validation), len(loaded.test)) == (80, 20, 20)
    config = tiny_config(tmp_path, [*LIMITS, "data.modalities=[image]"])
    splits = run_splits(config, loaded)
    assert splits.modalities == ("image",) and set(splits.train.inputs) == {"image"}
    assert splits.input_shapes == {"image": tuple(loaded.train.inputs["image"].shape[1:])}
    assert torch.equal(splits.test.target, loaded.test.target)


def test_train_fraction_keeps_a_seeded_subset_of_the_training_rows_only(loaded: LoadedDataset, tmp_path: Path) -> None:
    config = tiny_config(tmp_path, [*LIMITS, "data.train_fraction=0.25"])
    picked = [select_splits(loaded, config.data, ["audio", "image"], seed) for seed in (0, 0, 1)]
    assert len(picked[0].train) == 20 and len(picked[0].validation) == 20
    assert torch.equal(picked[0].train.inputs["audio"], picked[1].train.inputs["audio"])
    assert not torch.equal(picked[0].train.inputs["audio"], picked[2].train.inputs["audio"])


def test_a_modality_the_dataset_lacks_is_named_as_its_key(loaded: LoadedDataset, tmp_path: Path) -> None:
    config = tiny_config(tmp_path, LIMITS)
    with pytest.raises(
        ConfigError,
        match=r"`model.encoders.text`: dataset `avdigits` has no such modality; "
        r"it has `audio`, `image`",
    ):
        select_splits(loaded, config.data, ["audio", "text"], seed=0)


def test_task_settings_apply_and_a_loss_of_another_kind_is_a_config_error(loaded: LoadedDataset) -> None:
    task = loaded.info.task
    assert task.kind == "multiclass" and with_task_settings(task, TaskConfig()).loss == task.loss
    with pytest.raises(
        ConfigError,
        match=r"`task.loss`: Expected a `multiclass` loss in \['cross_entropy'\], "
        r"got `bce`",
    ):
        with_task_settings(task, TaskConfig(loss="bce"))


def test_run_task_defaults_to_the_tasks_metrics_and_puts_the_primary_first(
    loaded: LoadedDataset, tmp_path: Path
) -> None:
    task = loaded.info.task
    assert run_task(tiny_config(tmp_path, LIMITS), task) == (task.metric_names, "accuracy")
    chosen = tiny_config(tmp_path, [*LIMITS, "metrics.names=[accuracy]", "metrics.primary=f1_macro"])
    assert run_task(chosen, task) == (["f1_macro", "accuracy"], "f1_macro")
    with pytest.raises(ConfigError, match=r"`metrics.primary` names `mae`, which does not apply to a multiclass"):
        run_task(tiny_config(tmp_path, [*LIMITS, "metrics.primary=mae"]), task)


def test_train_masks_follow_the_config_and_impossible_rates_are_refused_before_a_run(
    loaded: LoadedDataset, tmp_path: Path
) -> None:
    modalities = ["audio", "image"]
    assert train_masks(tiny_config(tmp_path, LIMITS).data, modalities, 0) is None
    rate = tiny_config(tmp_path, [*LIMITS, "data.missing_rate={audio: 0.3}"])
    assert isinstance(train_masks(rate.data, modalities, 0), MCARAmputer)
    mixture = tiny_config(tmp_path, [*LIMITS, "data.missing_patterns={audio+image: 0.5, image: 0.5}"])
    assert isinstance(train_masks(mixture.data, modalities, 0), PatternMixtureAmputer)
    impossible = tiny_config(tmp_path, [*LIMITS, "data.missing_rate={audio: 0.6, image: 0.6}"])
    with pytest.raises(ConfigError, match=r"`data.missing_rate`: Missing rates \[0.6, 0.6\] cannot all hold"):
        train_masks(impossible.data, modalities, 0)
    with pytest.raises(ConfigError, match=r"`data.missing_rate`: Missing rates"):  # what `train --dry-run` runs
        preflight(impossible, RunInputs.of(run_splits(impossible, loaded)))


@pytest.mark.parametrize(
    ("restriction", "advice"),
    [
        (
            ["data.modalities=[image]"],
            r"the dataset also has `audio` \(add `audio` to `data.modalities` to train on it\)",
        ),
        (
            ["data.modalities=[audio]"],
            r"the dataset also has `image` \(add `image` to `data.modalities` to train on it\)",
        ),
        ([], r"the dataset also has `audio` \(configure `model.encoders.audio` to train on it\)"),
    ],
)
def test_a_multimodal_strategy_on_one_modality_names_the_key_that_would_add_another(
    loaded: LoadedDataset, tmp_path: Path, restriction: list[str], advice: str
) -> None:
    strategy = ["training.strategy.modality_dropout=0.3", "training.strategy.modality_dropout_of=any"]
    raw = apply_overrides(tiny_raw(tmp_path), [*LIMITS, *restriction, *strategy])
    if not restriction:  # no `audio` encoder at all
        raw["model"]["encoders"].pop("audio")
    config = validate_config(raw)
    inputs = RunInputs.of(run_splits(config, loaded))
    assert inputs.dataset_modalities == ("audio", "image")  # the dataset's, not the run's
    with pytest.raises(ConfigError, match=advice):
        preflight(config, inputs)
