"""The Python API (``fusebench.train``, ``load_run``, ``load_study``, ``run_study``) on real tiny runs."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

import pytest
from tests._helpers.runs import tiny_raw
from tests._helpers.study_results import results_of, study

import fusebench
from fusebench.config import ConfigError
from fusebench.errors import ResultsError, RunFolderError
from fusebench.study.long_format import results_csv


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> fusebench.RunResult:
    root = tmp_path_factory.mktemp("api")
    raw = tiny_raw(root / "runs", name="api")
    raw["training"]["epochs"] = 2
    return fusebench.train(raw, ["monitoring.enabled=false"], run_id="1")


def test_train_returns_the_record_load_run_reads_back(trained: fusebench.RunResult) -> None:
    assert trained.status == "completed" and trained.run_dir.name == "1"
    assert trained.test_metrics == json.loads((trained.run_dir / "test_metrics.json").read_text())
    assert len(trained.epoch_metrics) == 2 and trained.primary_metric == "accuracy"
    assert fusebench.load_run(trained.run_dir) == trained


def test_a_run_frame_holds_every_test_validation_and_timing_value(trained: fusebench.RunResult) -> None:
    frame = trained.to_frame()
    test = frame[frame["split"] == "test"]
    assert len(test) == sum(len(m) for m in trained.test_metrics.values())
    value = test[(test["pattern"] == "audio") & (test["metric"] == "accuracy")]["value"].item()
    assert value == trained.test_metrics["audio"]["accuracy"]
    validation = frame[(frame["split"] == "validation") & (frame["metric"] == "loss")]
    assert sorted(validation["epoch"].unique()) == [1, 2]
    assert frame[frame["split"] == "timing"].set_index("metric")["value"]["fit"] == trained.timing["fit"]


def test_train_rejects_a_bad_config_before_a_folder_exists(tmp_path: Path) -> None:
    raw = tiny_raw(tmp_path / "runs", name="bad")
    with pytest.raises(ConfigError, match=r"unknown key `training.epoch` \(did you mean `training.epochs`\?\)"):
        fusebench.train(raw, ["training.epoch=2"])
    assert not (tmp_path / "runs").exists()


def test_load_run_of_a_folder_without_a_run_is_one_error(tmp_path: Path) -> None:
    with pytest.raises(RunFolderError, match="holds no run"):
        fusebench.load_run(tmp_path)


def test_load_study_gives_typed_records_and_the_long_format_of_results_csv() -> None:
    records = fusebench.load_study(study("pretrain"))
    raw = results_of("pretrain")
    assert records.modalities == tuple(raw["modalities"]) and len(records.runs) == len(raw["runs"])
    first = records.runs[0]
    assert first.node == raw["runs"][0]["node"] and first.status == raw["runs"][0]["status"]
    frame = records.to_frame()
    rows = list(csv.DictReader(io.StringIO(results_csv(records.to_json()))))
    assert len(frame) == len(rows)
    picked = frame[(frame["split"] == "test") & (frame["metric"] == "accuracy")]
    expected = {
        (r["node"], r["pattern"]): float(r["value"]) for r in rows if r["split"] == "test" and r["metric"] == "accuracy"
    }
    assert dict(zip(zip(picked["node"], picked["pattern"], strict=True), picked["value"], strict=True)) == expected


def test_to_frame_without_pandas_says_how_to_install_it(
    trained: fusebench.RunResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)  # `import pandas` now fails as if it were not installed
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'fusebench\[pandas\]'"):
        trained.to_frame()


def test_a_foreign_results_file_is_one_error(tmp_path: Path) -> None:
    (tmp_path / "results.json").write_text(json.dumps({"modalities": ["audio"], "runs": [{"node": "x"}]}))
    with pytest.raises(ResultsError, match=r"`runs.0.seed`: Field required; `runs.0.status`: Field required"):
        fusebench.load_study(tmp_path)
    (tmp_path / "results.json").write_text("{not json")
    with pytest.raises(ResultsError, match="is not valid JSON"):
        fusebench.load_study(tmp_path)
