"""The run's steps hand each other typed records, and those records are what the files say."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from safetensors import safe_open
from tests._helpers.runs import tiny_config, tiny_pretrain_config

from fusebench.config import RunConfig
from fusebench.engine import run_steps
from fusebench.engine.run_folder import RunState
from fusebench.engine.run_step_records import BuiltModel, FittedModel, PreparedData

SMALL = ["training.epochs=1", "data.limit.train=200", "data.limit.validation=64", "data.limit.test=64"]


def first_three(config: RunConfig, run_dir: Path) -> tuple[PreparedData, BuiltModel, FittedModel]:
    run_dir.mkdir()
    prepared = run_steps.prepare_data(config, run_dir, False, False, ["test"], None)
    built = run_steps.build(prepared)
    return prepared, built, run_steps.fit(prepared, built)


def test_each_step_consumes_the_previous_steps_record(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    prepared, built, fitted = first_three(tiny_config(tmp_path, SMALL), run_dir)
    data_json = json.loads((run_dir / "data.json").read_text())
    assert data_json["metrics"] == {"names": prepared.metric_names, "primary": prepared.primary}
    assert data_json["samples"] == {"train": 200, "validation": 64, "test": 64}
    # no frozen encoder: the build step trains on the data step's splits themselves
    assert built.data is prepared.data and built.raw_test is prepared.data.test and built.cache_seconds == 0.0
    assert fitted.module.model is built.model
    assert fitted.steps_per_epoch == 4  # ceil(200 / batch 64)
    assert fitted.history == json.loads((run_dir / "epoch_metrics.json").read_text())
    assert len(fitted.history) == 1
    assert run_steps.export(prepared, built, fitted).path is None  # not a pre-training run
    result = run_steps.final_test(prepared, built, fitted)
    assert result.status is RunState.COMPLETED and result.primary_metric == prepared.primary
    assert result.test_metrics == json.loads((run_dir / "test_metrics.json").read_text())
    assert result.timing == json.loads((run_dir / "timing.json").read_text())
    assert result.timing["data"] == prepared.seconds and result.timing["fit"] == fitted.seconds
    assert result.epoch_metrics == fitted.history
    with pytest.raises(dataclasses.FrozenInstanceError):
        prepared.primary = "loss"  # type: ignore[misc]


def test_export_saves_the_encoder_with_its_data_plus_fit_seconds(tmp_path: Path) -> None:
    run_dir = tmp_path / "pre"
    prepared, built, fitted = first_three(tiny_pretrain_config(tmp_path, "audio", SMALL), run_dir)
    exported = run_steps.export(prepared, built, fitted)
    assert exported.path == run_dir / "encoders" / "audio.safetensors"
    with safe_open(str(exported.path), framework="pt") as weights:
        metadata = weights.metadata()
    assert metadata["pretraining_seconds"] == f"{prepared.seconds + fitted.seconds:.3f}"
    assert metadata["source_run"] == str(run_dir) and metadata["modality"] == "audio"
