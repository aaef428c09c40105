"""Code-defined datasets from other packages, found through the ``fusebench.datasets`` entry point group.

The plugin here is installed the way pip leaves a package on disk: a module plus a
``*.dist-info`` folder whose ``entry_points.txt`` names the dataset, in a folder on the
path. fusebench is never told about it; it finds it through ``importlib.metadata``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

import fusebench
from fusebench.config import ConfigError
from fusebench.data import registry

PLUGIN = '''"""A third-party dataset, shipped in its own package (not part of fusebench)."""
from typing import Literal

import torch
from pydantic import Field

from fusebench.data.options import DataOptions
from fusebench.data.registry import DatasetEntry, DatasetInfo, LoadedDataset, ModalityInfo, Split
from fusebench.tasks import Task


class ToyOptions(DataOptions):
    dataset: Literal["toy_plugin"] = "toy_plugin"
    samples: int = Field(default=512, ge=8)
    noise: float = Field(default=0.2, ge=0.0)


def _split(n, seed, noise):
    generator = torch.Generator().manual_seed(seed)
    left, right = torch.randn(n, 8, generator=generator), torch.randn(n, 8, generator=generator)
    score = left[:, 0] + right[:, 0] + noise * torch.randn(n, generator=generator)
    return Split({"left": left, "right": right}, torch.bucketize(score, torch.tensor([-0.5, 0.5])))


INFO = DatasetInfo({"left": ModalityInfo("vector", (8,)), "right": ModalityInfo("vector", (8,))},
                   Task("multiclass", 3))


def load(options):
    n = options.samples
    return LoadedDataset(_split(n, 0, options.noise), _split(n // 4, 1, options.noise),
                         _split(n // 4, 2, options.noise), INFO)


ENTRY = DatasetEntry("toy_plugin", ToyOptions, load, lambda options: INFO.task,
                     summary="toy plugin: two 8-d vectors, 3 classes")
'''


def install(site: Path, distribution: str, entry_points: str, modules: dict[str, str]) -> Path:
    """Lay a package out as an installer does: modules plus ``<dist>-0.1.dist-info/{METADATA,entry_points.txt}``."""
    site.mkdir(parents=True, exist_ok=True)
    for name, source in modules.items():
        (site / name).mkdir()
        (site / name / "__init__.py").write_text(source)
    info = site / f"{distribution}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[fusebench.datasets]\n{entry_points}\n")
    return site


def toy_site(tmp_path: Path, broken: bool = False) -> Path:
    site = install(tmp_path / "site", "toy_plugin", "toy_plugin = toy_plugin_pkg:ENTRY", {"toy_plugin_pkg": PLUGIN})
    if broken:
        install(
            site,
            "broken_plugin",
            "broken_plugin = broken_plugin_pkg:ENTRY",
            {"broken_plugin_pkg": "import a_module_that_is_not_installed\n"},
        )
        install(site, "wrong_plugin", "wrong_plugin = wrong_plugin_pkg:ENTRY", {"wrong_plugin_pkg": "ENTRY = 42\n"})
    return site


@pytest.fixture
def registry_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Restore the registry and forget the plugin modules after the test."""
    saved, broken = dict(registry._REGISTRY), dict(registry._BROKEN)
    yield
    registry._REGISTRY.clear()
    registry._REGISTRY.update(saved)
    registry._BROKEN.clear()
    registry._BROKEN.update(broken)
    for name in [m for m in sys.modules if m.endswith(("_plugin_pkg", "toy_fusebench"))]:
        del sys.modules[name]


def test_installed_plugin_is_registered_with_strict_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registry_state: None
) -> None:
    from fusebench.cli_data import dataset_options
    from fusebench.engine.datasets import load_dataset

    assert "toy_plugin" not in registry.dataset_names()
    monkeypatch.syspath_prepend(str(toy_site(tmp_path)))  # also invalidates importlib's path caches
    assert registry.refresh_entry_points() == []
    assert "toy_plugin" in registry.dataset_names() and "folder" in registry.dataset_names()
    options = dataset_options("toy_plugin", ["samples=64"])
    loaded = load_dataset(options)
    assert (len(loaded.train), len(loaded.validation), len(loaded.test)) == (64, 16, 16)
    assert sorted(loaded.info.modalities) == ["left", "right"]
    with pytest.raises(ConfigError, match=r"unknown key `sampels` \(did you mean `samples`\?\)"):
        dataset_options("toy_plugin", ["sampels=64"])
    with pytest.raises(ValueError, match=r"Unknown dataset `toy_plugn` \(did you mean `toy_plugin`\?\)"):
        registry.get_dataset("toy_plugn")


def test_broken_plugins_are_named_and_do_not_hide_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registry_state: None
) -> None:
    monkeypatch.syspath_prepend(str(toy_site(tmp_path, broken=True)))
    with pytest.warns(RuntimeWarning) as caught:
        assert registry.refresh_entry_points() == ["broken_plugin", "wrong_plugin"]
    assert sorted(str(w.message).split("`")[1] for w in caught) == [
        "broken_plugin = broken_plugin_pkg:ENTRY",
        "wrong_plugin = wrong_plugin_pkg:ENTRY",
    ]
    assert "toy_plugin" in registry.dataset_names() and "avdigits" in registry.dataset_names()
    with pytest.raises(
        ValueError,
        match=r"`broken_plugin = broken_plugin_pkg:ENTRY` .* is broken: "
        r"ModuleNotFoundError: No module named 'a_module_that_is_not_installed'",
    ):
        registry.get_dataset("broken_plugin")
    with pytest.raises(
        ValueError,
        match=r"`wrong_plugin = wrong_plugin_pkg:ENTRY` .* expected it to name a "
        r"DatasetEntry or a function returning one, got int",
    ):
        registry.get_dataset("wrong_plugin")


def test_entry_point_must_be_named_like_its_dataset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registry_state: None
) -> None:
    site = install(tmp_path / "site", "toy_plugin", "toy = toy_plugin_pkg:ENTRY", {"toy_plugin_pkg": PLUGIN})
    monkeypatch.syspath_prepend(str(site))
    with pytest.warns(RuntimeWarning, match="named like its dataset, `toy_plugin`"):
        assert registry.refresh_entry_points() == ["toy"]
    assert "toy_plugin" not in registry.dataset_names()


# --------------------------------------------------------------------------- a fresh process, as a user meets it


CHILD = """
import json, sys
from typer.testing import CliRunner
from fusebench.cli import app
runner = CliRunner()
print(json.dumps([(r.exit_code, r.output) for r in (runner.invoke(app, a) for a in json.loads(sys.argv[1]))]))
"""


def fusebench_cli(site: Path, *commands: list[str]) -> list[tuple[int, str]]:
    """Exit code and output of each ``fusebench`` command, run in one new interpreter with ``site`` on its path.

    A new interpreter is what a user has: fusebench discovers the plugin when it is first
    imported, and the run-config schema includes it from the start.
    """
    source = Path(fusebench.__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(source)])}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(commands)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [(code, " ".join(output.split())) for code, output in json.loads(done.stdout.splitlines()[-1])]


def toy_config(tmp_path: Path, **data: object) -> Path:
    raw = {
        "experiment": {"name": "toy", "runs_dir": str(tmp_path / "runs"), "threads": 1},
        "data": {"dataset": "toy_plugin", "samples": 256, "batch_size": 64, **data},
        "model": {
            "encoders": {
                "left": {"kind": "mlp", "out_dim": 16, "hidden": [32]},
                "right": {"kind": "mlp", "out_dim": 16, "hidden": [32]},
            },
            "fusion": {"type": "late", "method": "concat", "hidden_dim": 32},
        },
        "training": {"epochs": 2, "optimizer": {"name": "adam", "lr": 0.01}},
        "logging": {"progress_bar": False},
        "monitoring": {"enabled": False},
    }
    path = tmp_path / f"toy_{len(list(tmp_path.glob('toy_*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.slow
def test_cli_lists_trains_and_explains_errors_of_plugin_datasets(tmp_path: Path) -> None:
    config = str(toy_config(tmp_path))
    listed, misspelt, broken, trained = fusebench_cli(
        toy_site(tmp_path, broken=True),
        ["data", "list"],
        ["train", config, "data.sampels=3"],
        ["train", str(toy_config(tmp_path, dataset="broken_plugin"))],
        ["train", config, "--run-id", "r"],
    )
    assert listed[0] == 0 and "toy_plugin" in listed[1] and "two 8-d vectors" in listed[1]
    assert "folder" in listed[1] and "broken_plugin" in listed[1] and "unavailable" in listed[1]
    assert misspelt[0] == 2 and "unknown key `data.sampels` (did you mean `data.samples`?)" in misspelt[1]
    assert broken[0] == 2 and "Traceback" not in broken[1]
    assert "`data.dataset` is `broken_plugin`, which is not registered" in broken[1]
    assert "broken_plugin = broken_plugin_pkg:ENTRY" in broken[1]
    assert "No module named 'a_module_that_is_not_installed'" in broken[1]
    assert trained[0] == 0, trained[1]
    run_dir = tmp_path / "runs" / "toy" / "r"
    test = json.loads((run_dir / "test_metrics.json").read_text())
    assert sorted(test) == ["left", "left+right", "right"]
    data = json.loads((run_dir / "data.json").read_text())
    assert data["dataset"] == "toy_plugin" and data["task"]["kind"] == "multiclass"
    # the target needs both vectors: the fused model beats either one alone, and chance (1/3) by far
    assert test["left+right"]["accuracy"] > max(test["left"]["accuracy"], test["right"]["accuracy"])
    assert test["left+right"]["accuracy"] > 0.6


def test_the_documented_plugin_example_registers_and_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registry_state: None
) -> None:
    from fusebench.engine.datasets import load_dataset

    doc = (Path(__file__).resolve().parents[2] / "docs" / "datasets" / "custom.md").read_text()
    example = re.search(r"```python\n(.*?)```", doc, re.S)
    assert example is not None
    site = install(tmp_path / "site", "toy_fusebench", "toy = toy_fusebench:ENTRY", {"toy_fusebench": example.group(1)})
    monkeypatch.syspath_prepend(str(site))
    assert registry.refresh_entry_points() == []
    entry = registry.get_dataset("toy")
    loaded = load_dataset(entry.options.model_validate({"dataset": "toy", "samples": 32}))
    assert (len(loaded.train), len(loaded.test), loaded.info.task.kind) == (32, 128, "regression")
    loaded.info.task.check_target(loaded.train.target, "the documented example")
