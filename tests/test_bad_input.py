"""Bad input of every kind is one paragraph and exit code 2, never a traceback (issue: no input produces one)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from tests._helpers.runs import tiny_raw
from typer.testing import CliRunner

from fusebench.cli import app
from fusebench.config import ConfigError
from fusebench.study.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def _config(tmp_path: Path, **fusion: object) -> Path:
    raw = tiny_raw(tmp_path / "runs", name="bad")
    raw["training"]["epochs"] = 1
    raw["model"]["fusion"].update(fusion)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _fails_cleanly(args: list[str], *expected: str) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    for text in expected:
        assert text in result.output, result.output
    return result.output


@pytest.mark.parametrize(
    ("fusion", "expected"),
    [
        (
            {"method": "tensor", "params": {"tensor_dims": 8}},
            ["unknown key `model.fusion.params.tensor_dims` (did you mean `model.fusion.params.tensor_dim`?)"],
        ),
        (
            {"method": "low_rank", "params": {"rank": "four"}},
            ["`model.fusion.params.rank`: Input should be a valid integer", "(got 'four')"],
        ),
        (
            {"method": "concat", "params": {"hidden_dim": 32}},
            ["unknown key `model.fusion.params.hidden_dim` (did you mean `model.fusion.hidden_dim`?)"],
        ),
        (
            {"type": "mid", "method": "where_to_fuse", "hidden_dim": 128, "dropout": 0.2, "params": {"dim": 32}},
            [
                "`model.fusion.params`: set exactly one of `primary` (with `fusion_layer`) and `fusion_spec`, got "
                "primary=None, fusion_spec=None"
            ],
        ),
        (
            {
                "type": "early",
                "method": "token",
                "hidden_dim": 128,
                "dropout": 0.2,
                "params": {"dim": 16, "heads": 2, "image_patch": "big"},
            },
            ["`model.fusion.params.image_patch`: Input should be a valid list (got 'big')"],
        ),
        (
            {"method": "lowrank"},
            [
                "`model.fusion.method` is `lowrank`, which is not registered for "
                "`model.fusion.type` `late` (did you mean `low_rank`?)"
            ],
        ),
        (
            {"type": "early", "method": "token", "hidden_dim": 128, "dropout": 0.2, "params": {"dim": 30, "heads": 4}},
            ["`model.fusion.params`: `heads` (4) must divide `dim` (30)"],
        ),
    ],
    ids=[
        "unknown-key",
        "wrong-type",
        "set-elsewhere",
        "missing-required",
        "wrong-nested-type",
        "unknown-method",
        "cross-key",
    ],
)
def test_bad_fusion_params_are_caught_before_any_data_is_loaded(
    tmp_path: Path, fusion: dict, expected: list[str]
) -> None:
    config = _config(tmp_path, **fusion)
    _fails_cleanly(
        ["train", str(config), "--dry-run", "data.cache_dir=/nonexistent/never/read"], "Invalid config", *expected
    )


def test_a_fusion_param_that_does_not_fit_the_inputs_is_one_error_before_training(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        type="early",
        method="token",
        hidden_dim=128,
        dropout=0.2,
        params={"dim": 8, "heads": 2, "image_patch": [5, 5]},
    )  # 28 x 28 images
    _fails_cleanly(
        ["train", str(config), "--dry-run"], "Cannot build fusion `early/token` (`model.fusion.params`)", "image_patch"
    )


def test_a_study_with_bad_fusion_params_fails_at_load_time(tmp_path: Path) -> None:
    from tests.study.test_spec import write_spec

    spec = write_spec(
        tmp_path,
        name="params",
        conditions={"scratch": {"overrides": ["model.fusion.method=tensor", "model.fusion.params={tensor_dims: 8}"]}},
    )
    with pytest.raises(
        ConfigError,
        match=r"condition `scratch`.*unknown key `model.fusion.params.tensor_dims` "
        r"\(did you mean `model.fusion.params.tensor_dim`\?\)",
    ):
        load_spec(spec)


@pytest.mark.parametrize("widths", ["[0, 8]", "[-4]"])
def test_encoder_widths_must_be_positive(tmp_path: Path, widths: str) -> None:
    _fails_cleanly(
        ["train", str(_config(tmp_path)), "--dry-run", f"model.encoders.audio.widths={widths}"],
        "model.encoders.audio.widths",
        "greater than 0",
    )


@pytest.mark.parametrize(
    "override",
    ["data.limit={train: 5", "experiment.name=!!python/object/apply:os.getcwd []"],
    ids=["unclosed-mapping", "python-tag"],
)
def test_malformed_override_yaml_is_one_error(tmp_path: Path, override: str) -> None:
    _fails_cleanly(
        ["train", str(_config(tmp_path)), "--dry-run", override], f"Override `{override}`", "is not valid YAML"
    )


def test_an_empty_config_file_is_an_error_not_a_default_run(tmp_path: Path) -> None:
    (tmp_path / "empty.yaml").write_text("\n# nothing here\n")
    _fails_cleanly(["train", str(tmp_path / "empty.yaml"), "--run-id", "1"], "empty.yaml` is empty")
    assert not (tmp_path / "runs").exists() and not Path("runs/experiment/1").exists()


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("trained")
    config = _config(root)
    result = runner.invoke(app, ["train", str(config), "--run-id", "1", "--disable-monitoring"])
    assert result.exit_code == 0, result.output
    return root / "runs" / "bad" / "1"


class _RunsCode:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (Path.write_text, (Path(self.marker), "the checkpoint ran code"))


def _pickled_code(path: Path, marker: Path) -> None:
    good = torch.load(path, weights_only=True)
    torch.save({**good, "hook": _RunsCode(str(marker))}, path)


@pytest.mark.parametrize("damage", ["empty", "truncated", "random", "pickle"])
def test_a_bad_checkpoint_is_named_and_never_unpickled(trained_run: Path, tmp_path: Path, damage: str) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(trained_run, run_dir)
    checkpoint = run_dir / "checkpoints" / "best.ckpt"
    marker = tmp_path / "ran.txt"
    if damage == "empty":
        checkpoint.write_bytes(b"")
    elif damage == "truncated":
        checkpoint.write_bytes(checkpoint.read_bytes()[:1000])
    elif damage == "random":
        checkpoint.write_bytes(os.urandom(5000))
    else:
        _pickled_code(checkpoint, marker)
    output = _fails_cleanly(["evaluate", str(run_dir)], f"Checkpoint `{checkpoint}`", "--overwrite")
    if damage == "pickle":
        assert "holds a Python object (`getattr`)" in output and "will not run code from a file" in output
    else:
        assert ("is empty" if damage == "empty" else "is truncated or not a PyTorch checkpoint") in output
    assert "weights_only=False" not in output and not marker.exists()
    assert json.loads((run_dir / "status.json").read_text())["state"] == "completed"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"runs": {"not": "a list"}}, "`runs`: Input should be a valid list"),
        ({"seed_null": True}, "`runs.0.seed`: Input should be a valid integer (got None)"),
        ({"modalities": []}, "`modalities`"),
    ],
    ids=["runs-not-a-list", "seed-null", "no-modalities"],
)
def test_a_malformed_results_file_is_named_by_report(tmp_path: Path, change: dict, expected: str) -> None:
    from tests._helpers.study_results import copy_study

    study_dir = copy_study("pretrain", tmp_path / "study")
    results = json.loads((study_dir / "results.json").read_text())
    if change.pop("seed_null", False):
        results["runs"][0]["seed"] = None
    results.update(change)
    (study_dir / "results.json").write_text(json.dumps(results))
    _fails_cleanly(
        ["report", str(study_dir)],
        "results.json` does not follow docs/study_results.md",
        expected,
        "rebuilds it from the run folders",
    )


def test_python_dash_m_runs_the_cli(tmp_path: Path) -> None:
    for module in ("fusebench", "fusebench.cli"):
        done = subprocess.run(
            [sys.executable, "-m", module, "train", "--help"],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
            cwd=tmp_path,
            timeout=120,
        )
        assert done.returncode == 0 and "--overwrite" in done.stdout, done.stderr


def test_probe_names_a_damaged_checkpoint(trained_run: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(trained_run, run_dir)
    (run_dir / "checkpoints" / "best.ckpt").write_bytes(b"PK\x03\x04 half a zip")
    _fails_cleanly(["probe", str(run_dir)], "is truncated or not a PyTorch checkpoint")
