"""Fuzzing the command line as a hostile user would: mutated configs, overrides, specs and corrupted files.

Every invocation must end with exit code 0 (it worked) or 2 (one paragraph naming what is
wrong) — never a traceback — and no completed run may change, whatever was asked. The
examples are drawn deterministically (``derandomize``) and kept few, so the whole module
runs in well under a minute; the strategies are what matter, raise the counts locally
(``FUSEBENCH_FUZZ_EXAMPLES``) to search longer.
"""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests._helpers.runs import tiny_raw
from tests._helpers.snapshots import folder_digest
from tests.study.test_spec import TINY
from typer.testing import CliRunner

from fusebench.cli import app

runner = CliRunner()
SCALE = int(os.environ.get("FUSEBENCH_FUZZ_EXAMPLES", "1"))
#: Mutating these would build new dataset caches or write outside the test's folders: slow, not hostile.
PROTECTED = {("data", "recipe"), ("data", "root"), ("data", "cache_dir"), ("experiment", "runs_dir")}
SETTINGS = {
    "deadline": None,
    "database": None,
    "derandomize": True,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
}

VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 200),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=10),
    st.sampled_from(["../x", "a/b", "!!python/object:os.system", "{", "cnn", "late", "mid"]),
    st.lists(st.integers(-3, 40), max_size=3),
    st.dictionaries(st.text(max_size=6), st.integers(-3, 3), max_size=2),
)
YAML_TEXT = st.text(alphabet="abcxyz019 .-_:{}[],'\"!&*#|>%@`=\\/", max_size=20)
KEYS = [
    "training.epochs",
    "training.optimizer.lr",
    "data.limit",
    "data.batch_size",
    "data.missing_rate.audio",
    "model.fusion.method",
    "model.fusion.params",
    "model.fusion.type",
    "model.encoders.audio.widths",
    "model.encoders.image.kind",
    "model.pretrained.audio",
    "metrics.primary",
    "training.strategy.distill",
    "data.missing_patterns",
    "training.scheduler.name",
    "model.freeze.audio",
    "pretrain.modality",
]


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every key path into nested dicts and lists (not below a protected path)."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, value in items:
        path = (*prefix, key)
        if path in PROTECTED:
            continue
        yield path
        yield from _paths(value, path)


def _at(root: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        root = root[key]
    return root


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    """``base`` with one to three keys replaced, deleted or added (anywhere in the tree)."""
    raw = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(raw))
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, key = _at(raw, path[:-1]), path[-1]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[key] = draw(VALUES)
        elif action == "delete":
            del parent[key]
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=8))] = draw(VALUES)
    return raw


def _ok(args: list[str]) -> None:
    """0 or 2, and a clean message either way."""
    result = runner.invoke(app, args)
    assert result.exit_code in (0, 2), f"{args}\n{result.output}\n{result.exception!r}"
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A completed run and a finished one-node study, never to be changed, and their digests."""
    root = tmp_path_factory.mktemp("fuzz")
    raw = tiny_raw(root / "runs", name="fuzz")
    raw["training"]["epochs"] = 1
    raw["monitoring"] = {"enabled": False}
    config = root / "fuzz.yaml"
    config.write_text(yaml.safe_dump(raw))
    trained = runner.invoke(app, ["train", str(config), "--run-id", "done"])
    assert trained.exit_code == 0, trained.output
    spec = copy.deepcopy(TINY)
    spec.update({"name": "fuzzstudy", "seeds": [0], "conditions": {"scratch": {}}, "pretrain": None})
    spec.pop("pretrain")
    spec_file = root / "spec.yaml"
    spec_file.write_text(yaml.safe_dump({"study": spec}))
    studied = runner.invoke(app, ["study", str(spec_file), "--root", str(root / "studies")])
    assert studied.exit_code == 0, studied.output
    run_dir, study_dir = root / "runs" / "fuzz" / "done", root / "studies" / "fuzzstudy"
    return {
        "root": root,
        "raw": raw,
        "spec": {"study": spec},
        "run": run_dir,
        "study": study_dir,
        "digests": {run_dir: folder_digest(run_dir), study_dir / "runs": folder_digest(study_dir / "runs")},
    }


def _unchanged(world: dict[str, Any]) -> None:
    for folder, digest in world["digests"].items():
        assert folder_digest(folder) == digest, f"a completed run in {folder} changed"


def _write_config(world: dict[str, Any], raw: Any) -> Path:
    handle, name = tempfile.mkstemp(suffix=".yaml", dir=world["root"])
    with os.fdopen(handle, "w") as out:
        yaml.safe_dump(raw, out)
    return Path(name)


@settings(max_examples=20 * SCALE, **SETTINGS)
@given(data=st.data())
def test_mutated_configs(world: dict[str, Any], data: st.DataObject) -> None:
    config = _write_config(world, data.draw(mutated(world["raw"])))
    _ok(["train", str(config), "--dry-run"])
    _ok(["train", str(config), "--run-id", "done"])  # into the completed run: refused, or invalid
    _unchanged(world)


@settings(max_examples=30 * SCALE, **SETTINGS)
@given(
    overrides=st.lists(
        st.tuples(st.one_of(st.sampled_from(KEYS), st.text(max_size=12)), YAML_TEXT), min_size=1, max_size=3
    )
)
def test_mutated_overrides(world: dict[str, Any], overrides: list[tuple[str, str]]) -> None:
    config = _write_config(world, world["raw"])
    texts = [f"{key}={value}" for key, value in overrides]
    _ok(["train", str(config), "--dry-run", *texts])
    _ok(["train", str(config), "--run-id", "done", *(t for t in texts if not t.startswith("experiment"))])
    _unchanged(world)


@settings(max_examples=25 * SCALE, **SETTINGS)
@given(data=st.data())
def test_mutated_specs(world: dict[str, Any], data: st.DataObject) -> None:
    spec = _write_config(world, data.draw(mutated(world["spec"])))
    # `--resume` in an empty root: a valid spec stops at "nothing to resume", so nothing trains
    _ok(["study", str(spec), "--resume", "--root", str(world["root"] / "empty")])
    _unchanged(world)


DAMAGE = st.sampled_from(["empty", "truncate", "random", "delete", "text"])


def _damage(file: Path, how: str, data: st.DataObject) -> None:
    content = file.read_bytes()
    if how == "empty":
        file.write_bytes(b"")
    elif how == "truncate":
        file.write_bytes(content[: data.draw(st.integers(0, max(len(content) - 1, 0)))])
    elif how == "random":
        start = data.draw(st.integers(0, max(len(content) - 1, 0)))
        file.write_bytes(content[:start] + data.draw(st.binary(min_size=1, max_size=64)) + content[start + 64 :])
    elif how == "delete":
        file.unlink()
    else:
        file.write_text(data.draw(YAML_TEXT))


@settings(max_examples=15 * SCALE, **SETTINGS)
@given(data=st.data())
def test_corrupted_run_files(world: dict[str, Any], data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory(dir=world["root"]) as scratch:
        run_dir = Path(scratch) / "run"
        shutil.copytree(world["run"], run_dir)
        files = sorted(p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*") if p.is_file())
        damaged = data.draw(st.lists(st.sampled_from(files), min_size=1, max_size=2, unique=True))
        for name in damaged:
            _damage(run_dir / name, data.draw(DAMAGE), data)
        status = (run_dir / "status.json").read_bytes() if (run_dir / "status.json").is_file() else None
        _ok(["evaluate", str(run_dir)])
        if "status.json" not in damaged:  # evaluation never rewrites the training status
            assert (run_dir / "status.json").read_bytes() == status
    _unchanged(world)


@settings(max_examples=3 * SCALE, **SETTINGS)  # each renders a whole report (figures)
@given(data=st.data())
def test_corrupted_study_files(world: dict[str, Any], data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory(dir=world["root"]) as scratch:
        study_dir = Path(scratch) / "fuzzstudy"
        shutil.copytree(world["study"], study_dir)
        candidates = [
            "results.json",
            "plan.json",
            "spec.yaml",
            "runs/scratch-s0/status.json",
            "runs/scratch-s0/test_metrics.json",
            "runs/scratch-s0/epoch_metrics.json",
            "runs/scratch-s0/timing.json",
            "runs/scratch-s0/test_logits.safetensors",
        ]
        for name in data.draw(st.lists(st.sampled_from(candidates), min_size=1, max_size=2, unique=True)):
            _damage(study_dir / name, data.draw(DAMAGE), data)
        _ok(["report", str(study_dir)])
    _unchanged(world)
