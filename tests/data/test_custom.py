"""Dataset ``folder``: a user's own arrays in the documented layout, and every wrong file as one clear error."""

from __future__ import annotations

import pickle
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from tests._helpers.folder_data import CONFIGS, SHAPES, dataset_yaml, write_folder
from typer.testing import CliRunner

from fusebench.cli import app
from fusebench.config import ConfigError, load_config, validate_config
from fusebench.data.custom import FolderOptions, folder_task, load_folder
from fusebench.data.custom_arrays import read_array, to_input
from fusebench.data.custom_spec import ModalitySpec
from fusebench.engine.datasets import load_dataset

SMALL = {"train": 40, "validation": 10, "test": 12}


def options(root: Path, **values: Any) -> FolderOptions:
    return FolderOptions(root=str(root), **values)


def folder(tmp_path: Path, kind: str = "regression", sizes: dict[str, int] | None = None, **kwargs: Any) -> Path:
    return write_folder(tmp_path / "mydata", kind, sizes or SMALL, **kwargs)


def edit_yaml(root: Path, change: Any) -> None:
    raw = yaml.safe_load((root / "dataset.yaml").read_text())
    change(raw)
    (root / "dataset.yaml").write_text(yaml.safe_dump(raw))


def one_line(error: pytest.ExceptionInfo[BaseException]) -> str:
    return " ".join(str(error.value).split())


# --------------------------------------------------------------------------- reading what the files hold


@pytest.mark.parametrize("kind", ["multiclass", "multilabel", "regression"])
def test_every_split_holds_exactly_the_files(tmp_path: Path, kind: str) -> None:
    root = folder(tmp_path, kind)
    loaded = load_folder(options(root))
    for split in ("train", "validation", "test"):
        part = loaded.split(split)
        assert len(part) == SMALL[split] and part.lengths is None
        for m, shape in SHAPES.items():
            expected = np.load(root / split / f"{m}.npy")
            assert part.inputs[m].shape == (SMALL[split], *shape) and part.inputs[m].dtype == torch.float32
            np.testing.assert_array_equal(part.inputs[m].numpy(), expected)
        labels = np.load(root / split / "labels.npy")
        np.testing.assert_array_equal(part.target.numpy(), labels)
    dtype = {"multiclass": torch.int64, "multilabel": torch.float32, "regression": torch.float32}[kind]
    assert loaded.train.target.dtype == dtype
    described = loaded.info.describe()["modalities"]
    assert described == {
        m: {"kind": k, "shape": list(SHAPES[m]), "variable_length": False}
        for m, k in (("image", "image"), ("sensor", "vector"), ("series", "sequence"))
    }


def test_task_comes_from_dataset_yaml_alone(tmp_path: Path) -> None:
    root = tmp_path / "only_yaml"
    root.mkdir()
    (root / "dataset.yaml").write_text(yaml.safe_dump(dataset_yaml("multiclass")))
    task = folder_task(options(root))
    assert (task.kind, task.output_size, task.label_names) == ("multiclass", 3, ("low", "mid", "high"))
    (root / "dataset.yaml").write_text(yaml.safe_dump(dataset_yaml("regression")))
    task = folder_task(options(root))
    assert (task.kind, task.output_size, task.target_range, task.primary_metric) == (
        "regression",
        1,
        (-3.0, 3.0),
        "mae",
    )
    with pytest.raises(FileNotFoundError, match=r"has no `train/` folder\. Expected layout"):
        load_folder(options(root))


def test_variable_length_sequences_come_with_their_lengths(tmp_path: Path) -> None:
    root = folder(tmp_path, variable=("series",))
    loaded = load_folder(options(root))
    assert loaded.info.modalities["series"].variable_length and not loaded.info.modalities["image"].variable_length
    for split in ("train", "validation", "test"):
        lengths = loaded.split(split).lengths
        assert lengths is not None and sorted(lengths) == ["series"]
        assert lengths["series"].dtype == torch.int64
        np.testing.assert_array_equal(lengths["series"].numpy(), np.load(root / split / "series.lengths.npy"))
        assert 1 <= int(lengths["series"].min()) and int(lengths["series"].max()) <= SHAPES["series"][0]


def test_npz_files_and_other_dtypes_are_read_and_converted(tmp_path: Path) -> None:
    root = folder(tmp_path, "multilabel")
    for split in ("train", "validation", "test"):
        image = np.load(root / split / "image.npy")
        (root / split / "image.npy").unlink()
        np.savez_compressed(root / split / "image.npz", pixels=(image * 10).astype(np.float64))
        labels = np.load(root / split / "labels.npy")
        np.save(root / split / "labels.npy", labels.astype(bool))
    edit_yaml(root, lambda raw: raw["modalities"]["image"].update(scale=0.1))
    loaded = load_folder(options(root))
    expected = np.load(root / "test" / "image.npz")["pixels"] * 0.1
    np.testing.assert_allclose(loaded.test.inputs["image"].numpy(), expected, rtol=1e-6, atol=1e-6)
    assert loaded.test.inputs["image"].dtype == torch.float32 and loaded.test.target.dtype == torch.float32


def test_text_token_ids_stay_integers(tmp_path: Path) -> None:
    file = tmp_path / "text.npy"
    np.save(file, np.arange(12, dtype=np.int32).reshape(3, 4))
    spec = ModalitySpec(kind="text", shape=[4])
    values = to_input(read_array(file, memory_map=True), spec, file, "text", tmp_path / "dataset.yaml")
    assert values.dtype == torch.int64 and values.tolist() == np.arange(12).reshape(3, 4).tolist()


def test_float32_npy_is_memory_mapped_not_copied(tmp_path: Path) -> None:
    file = tmp_path / "sensor.npy"
    np.save(file, np.ones((5, 16), dtype=np.float32))
    spec = ModalitySpec(kind="vector", shape=[16])
    mapped = read_array(file, memory_map=True)
    assert isinstance(mapped, np.memmap)
    assert np.shares_memory(to_input(mapped, spec, file, "sensor", file).numpy(), mapped)
    assert not isinstance(read_array(file, memory_map=False), np.memmap)
    np.save(file, np.ones((5, 16), dtype=np.float64))  # needs a conversion: read into memory
    converted = read_array(file, memory_map=True)
    assert not np.shares_memory(to_input(converted, spec, file, "sensor", file).numpy(), converted)


def test_limit_reads_the_first_rows(tmp_path: Path) -> None:
    root = folder(tmp_path)
    config = validate_config(
        {
            "data": {"dataset": "folder", "root": str(root), "limit": {"train": 7, "test": 5}},
            "model": {"encoders": {"image": {}}},
        }
    )
    loaded = load_dataset(config.data)
    assert (len(loaded.train), len(loaded.validation), len(loaded.test)) == (7, 10, 5)
    np.testing.assert_array_equal(loaded.train.inputs["sensor"].numpy(), np.load(root / "train" / "sensor.npy")[:7])


# --------------------------------------------------------------------------- no validation split on disk


def test_missing_validation_is_a_seeded_share_of_train(tmp_path: Path) -> None:
    root = folder(tmp_path, sizes={"train": 50, "test": 10})
    train_rows = np.load(root / "train" / "sensor.npy")
    loaded = load_folder(options(root))
    assert (len(loaded.train), len(loaded.validation)) == (45, 5)  # default validation_fraction 0.1
    index = {row.tobytes(): i for i, row in enumerate(train_rows)}
    held = [index[r.tobytes()] for r in loaded.validation.inputs["sensor"].numpy()]
    kept = [index[r.tobytes()] for r in loaded.train.inputs["sensor"].numpy()]
    assert sorted(held + kept) == list(range(50)) and held == sorted(held) and kept == sorted(kept)
    labels = np.load(root / "train" / "labels.npy")
    np.testing.assert_array_equal(loaded.validation.target.numpy(), labels[held])
    again = load_folder(options(root))
    assert torch.equal(again.validation.target, loaded.validation.target)
    other = load_folder(options(root, split_seed=1, validation_fraction=0.2))
    assert len(other.validation) == 10 and not torch.equal(other.validation.target[:5], loaded.validation.target)


def test_validation_fraction_with_a_validation_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(
        ValueError,
        match=r"`data.validation_fraction` is 0.2, but `.*mydata` has its own "
        r"`validation/` split; remove one of the two",
    ):
        load_folder(options(folder(tmp_path), validation_fraction=0.2))


def test_validation_fraction_must_leave_samples_on_both_sides(tmp_path: Path) -> None:
    root = folder(tmp_path, sizes={"train": 4, "test": 3})
    with pytest.raises(ValueError, match=r"`data.validation_fraction` 0.1 of the 4 samples .* holds out 0"):
        load_folder(options(root))


# --------------------------------------------------------------------------- a wrong folder: one clear error each


def test_root_must_be_set_and_exist(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"set `data.root` \(e.g. the override `data.root=/path/to/mydata`\)"):
        load_folder(FolderOptions())
    with pytest.raises(
        FileNotFoundError,
        match=r"the folder `.*nowhere` does not exist\. Expected layout: "
        r"`<root>/dataset.yaml`",
    ):
        load_folder(options(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"`.*empty/dataset.yaml` does not exist"):
        folder_task(options(tmp_path / "empty"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda raw: raw["modalities"]["image"].update(shpe=[1, 8, 8]),
            r"unknown key `modalities.image.shpe` \(did you mean `modalities.image.shape`\?\)",
        ),
        (lambda raw: raw.update(taks=raw["task"]), r"unknown key `taks` \(did you mean `task`\?\)"),
        (
            lambda raw: raw["task"].update(kind="regresion"),
            r"`task.kind` is `regresion`, which is not registered \(did you mean `regression`\?\)",
        ),
        (lambda raw: raw["task"].pop("kind"), r"`task`: needs a `kind`: one of multiclass, multilabel, regression"),
        (lambda raw: raw["task"].update(rnge=[0, 1]), r"unknown key `task.rnge` \(did you mean `task.range`\?\)"),
        (
            lambda raw: raw["modalities"]["sensor"].update(kind="tabular"),
            r"`modalities.sensor.kind`: Input should be 'image', 'audio', 'sequence', 'vector' or 'text'",
        ),
        (
            lambda raw: raw["modalities"].update(Audio=raw["modalities"]["sensor"]),
            r"modality names are file names: .* got \['Audio'\]",
        ),
        (
            lambda raw: raw.update(task={"kind": "multilabel", "labels": 4, "label_names": ["a"]}),
            r"`label_names` must hold one name per label \(4\), got 1",
        ),
    ],
    ids=["modality-key", "top-key", "task-kind", "no-kind", "task-key", "modality-kind", "name", "label-names"],
)
def test_dataset_yaml_mistakes_name_the_file_and_key(tmp_path: Path, change: Any, message: str) -> None:
    root = folder(tmp_path)
    edit_yaml(root, change)
    with pytest.raises(ConfigError, match=r"Invalid dataset description `.*mydata/dataset.yaml`: ") as error:
        folder_task(options(root))
    assert re.search(message, one_line(error)), one_line(error)


def test_dataset_yaml_that_is_not_yaml(tmp_path: Path) -> None:
    root = folder(tmp_path)
    (root / "dataset.yaml").write_text("modalities: [unclosed\n")
    with pytest.raises(ConfigError, match=r"`.*dataset.yaml` is not valid YAML"):
        folder_task(options(root))


def _save(root: Path, split: str, name: str, array: np.ndarray) -> None:
    np.save(root / split / f"{name}.npy", array)


def _with_nan() -> np.ndarray:
    series = np.zeros((40, *SHAPES["series"]), np.float32)
    series[2, 0, 0], series[2, 5, 1], series[30, 11, 2] = np.nan, np.inf, -np.inf
    return series


# each case: what to break, then the error it must give (a regex over the one-line message)
BROKEN_FILES: dict[str, tuple[Any, str]] = {
    "missing-modality": (
        lambda root: (root / "test" / "sensor.npy").unlink(),
        r"Split folder `.*test` lacks \['sensor.npy'\] \(or .npz\)",
    ),
    "no-test-split": (lambda root: shutil.rmtree(root / "test"), r"has no `test/` folder"),
    "typo-file": (
        lambda root: (root / "train" / "image.npy").rename(root / "train" / "imgae.npy"),
        r"`.*train/imgae.npy` is not part of the dataset declared in `.*dataset.yaml` "
        r"\(did you mean `image.npy`\?\)",
    ),
    "npy-and-npz": (
        lambda root: np.savez(root / "train" / "image.npz", np.load(root / "train" / "image.npy")),
        r"`.*train/image.npy` and `.*train/image.npz` both hold `image`",
    ),
    "lengths-of-fixed": (
        lambda root: _save(root, "train", "image.lengths", np.ones(40, dtype=np.int64)),
        r"`.*image.lengths.npy` is not part of .* \(`image` is not `variable_length`",
    ),
    "shape": (
        lambda root: _save(root, "validation", "image", np.zeros((10, 1, 8, 9), np.float32)),
        r"`.*validation/image.npy`: expected \[N, 1, 8, 8\] \(modality `image` has shape \[1, 8, 8\] in "
        r"`.*dataset.yaml`\), got \[10, 1, 8, 9\]",
    ),
    "flat-vector": (
        lambda root: _save(root, "train", "sensor", np.zeros(40, np.float32)),
        r"`.*train/sensor.npy`: expected \[N, 16\] .* got \[40\]",
    ),
    "dtype": (
        lambda root: _save(root, "train", "sensor", np.zeros((40, 16), np.complex64)),
        r"`.*train/sensor.npy`: expected a numeric array \(float, integer or bool\), got dtype complex64",
    ),
    "strings": (
        lambda root: _save(root, "train", "labels", np.array(["a"] * 40)),
        r"`.*train/labels.npy`: expected numeric scores, shape \[N\] for a regression task, got dtype <U1",
    ),
    "counts": (
        lambda root: _save(root, "test", "labels", np.zeros(11, np.float32)),
        r"Expected every file of split `test` in `.*test` to hold the same number of samples, got "
        r"\{'image.npy': 12, 'labels.npy': 11, 'sensor.npy': 12, 'series.npy': 12\}",
    ),
    "out-of-range": (
        lambda root: _save(root, "train", "labels", np.full(40, 3.5, np.float32)),
        r"`.*train/labels.npy`: expected targets in \[-3.0, 3.0\], got values from 3.5 to 3.5",
    ),
    "regression-2d": (
        lambda root: _save(root, "train", "labels", np.zeros((40, 1), np.float32)),
        r"`.*train/labels.npy`: expected float regression targets of shape \[N\], got .* \(40, 1\)",
    ),
    "nan": (
        lambda root: _save(root, "train", "series", _with_nan()),
        r"`.*train/series.npy`: expected finite values, got 3 NaN or infinite value\(s\) \(first in sample 2\)",
    ),
    "corrupt": (
        lambda root: (root / "test" / "image.npy").write_bytes(b"\x93NUMPY garbage"),
        r"`.*test/image.npy`: expected a .npy file written by numpy, but it cannot be read",
    ),
    "npz-two-arrays": (
        lambda root: (
            (root / "test" / "image.npy").unlink(),
            np.savez(root / "test" / "image.npz", a=np.zeros((12, 1, 8, 8)), b=np.zeros(3)),
        ),
        r"`.*test/image.npz`: expected an .npz holding exactly one array, got 2: \['a', 'b'\]",
    ),
}


@pytest.mark.parametrize("case", list(BROKEN_FILES))
def test_each_wrong_file_is_one_error_naming_it(tmp_path: Path, case: str) -> None:
    root = folder(tmp_path)
    breaking, message = BROKEN_FILES[case]
    breaking(root)
    with pytest.raises((ValueError, FileNotFoundError)) as error:
        load_folder(options(root))
    assert re.search(message, one_line(error)), one_line(error)


@pytest.mark.parametrize(
    ("kind", "labels", "message"),
    [
        ("multiclass", np.full(40, 3), r"expected class labels in 0..2, got values from 3 to 3"),
        (
            "multiclass",
            np.zeros(40, np.float32),
            r"expected integer class ids 0..C-1, shape \[N\] for a multiclass task, "
            r"got dtype float32",
        ),
        ("multilabel", np.full((40, 4), 2.0, np.float32), r"expected multi-hot values 0 or 1, got others"),
        ("multilabel", np.zeros((40, 3), np.float32), r"expected a multi-hot target \[N, 4\], got \(40, 3\)"),
    ],
    ids=["class-range", "class-dtype", "multihot-values", "label-count"],
)
def test_labels_are_checked_for_the_task(tmp_path: Path, kind: str, labels: np.ndarray, message: str) -> None:
    root = folder(tmp_path, kind)
    _save(root, "train", "labels", labels)
    with pytest.raises(ValueError, match=r"`.*train/labels.npy`: " + message):
        load_folder(options(root))


@pytest.mark.parametrize(
    ("lengths", "message"),
    [
        (
            np.zeros(40, np.int64),
            r"expected lengths in 1..12 \(the padded length declared in dataset.yaml\), got "
            r"values from 0 to 0",
        ),
        (np.full(40, 2.0), r"expected integer sequence lengths, got dtype float64"),
        (np.ones((40, 1), np.int64), r"expected one length per sample, shape \[N\], got \[40, 1\]"),
    ],
    ids=["range", "dtype", "shape"],
)
def test_lengths_are_checked(tmp_path: Path, lengths: np.ndarray, message: str) -> None:
    root = folder(tmp_path, variable=("series",))
    _save(root, "train", "series.lengths", lengths)
    with pytest.raises(ValueError, match=r"`.*train/series.lengths.npy`: " + message):
        load_folder(options(root))


class _Runs:
    """Unpickling this creates a file: the proof that a loader ran code from a data file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (Path.touch, (self.marker,))


def test_a_pickle_in_an_array_file_is_refused_and_never_run(tmp_path: Path) -> None:
    root = folder(tmp_path)
    marker = tmp_path / "code_ran"
    np.save(root / "train" / "labels.npy", np.array([_Runs(marker)] * 40, dtype=object), allow_pickle=True)
    with pytest.raises(
        ValueError,
        match=r"`.*train/labels.npy`: expected a numeric array saved with numpy.save/"
        r"savez, got a file numpy refuses to read without unpickling",
    ):
        load_folder(options(root))
    (root / "train" / "labels.npy").write_bytes(pickle.dumps(_Runs(marker)))  # a bare pickle named .npy
    with pytest.raises(ValueError, match=r"refuses to read without unpickling"):
        load_folder(options(root, memory_map=False))
    assert not marker.exists()


def test_nan_scan_in_chunks_counts_across_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fusebench.data import custom_arrays

    monkeypatch.setattr(custom_arrays, "FINITE_CHUNK", 3)  # 40 samples in 14 chunks
    root = folder(tmp_path)
    series = np.load(root / "train" / "series.npy")
    series[5, 1, 1], series[30, 0, 2] = np.nan, np.nan
    _save(root, "train", "series", series)
    with pytest.raises(ValueError, match=r"got 2 NaN or infinite value\(s\) \(first in sample 5\)"):
        load_folder(options(root))


def test_nan_check_can_be_turned_off(tmp_path: Path) -> None:
    root = folder(tmp_path)
    series = np.load(root / "train" / "series.npy")
    series[3, 0, 0] = np.inf
    _save(root, "train", "series", series)
    loaded = load_folder(options(root, check_finite=False))
    assert torch.isinf(loaded.train.inputs["series"][3, 0, 0])


# --------------------------------------------------------------------------- options, digest, command line


def test_options_are_strict_and_root_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = validate_config({"data": {"dataset": "folder", "root": "mydata"}, "model": {"encoders": {"image": {}}}})
    assert config.data.root == str(tmp_path / "mydata")
    with pytest.raises(
        ConfigError,
        match=r"unknown key `data.validation_fration` \(did you mean "
        r"`data.validation_fraction`\?\)",
    ):
        validate_config({"data": {"dataset": "folder", "validation_fration": 0.2}})


def test_digest_changes_when_a_file_is_rewritten(tmp_path: Path) -> None:
    root = folder(tmp_path)
    before = options(root).digest()
    assert options(root).digest() == before and options(root, memory_map=False).digest() == before
    assert options(root, split_seed=3).digest() != before
    _save(root, "test", "labels", np.zeros(13, np.float32))
    assert options(root).digest() != before


def test_cli_prepare_checks_a_folder(tmp_path: Path) -> None:
    root = folder(tmp_path, "multilabel")
    result = CliRunner().invoke(app, ["data", "prepare", "folder", "--root", str(root)])
    assert result.exit_code == 0, result.output
    assert "folder read and checked" in result.output and "train 40, validation 10, test 12" in result.output
    _save(root, "test", "labels", np.full((12, 4), 2.0, np.float32))
    result = CliRunner().invoke(app, ["data", "prepare", "folder", "--root", str(root)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "test/labels.npy`: expected multi-hot values 0 or 1, got others." in " ".join(result.output.split())


def test_the_documented_dataset_yaml_is_valid(tmp_path: Path) -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "datasets" / "custom.md").read_text()
    example = re.search(r"```yaml\n(.*?)```", doc, re.S)
    assert example is not None
    (tmp_path / "dataset.yaml").write_text(example.group(1))
    task = folder_task(options(tmp_path))
    assert (task.kind, task.output_size, task.label_names) == ("multiclass", 3, ("low", "mid", "high"))


@pytest.mark.parametrize(
    "name", ["late_fusion.yaml", "pretrain_image.yaml", "pretrain_sensor.yaml", "pretrain_series.yaml"]
)
def test_shipped_folder_configs_fit_the_documented_example(tmp_path: Path, name: str) -> None:
    root = folder(tmp_path)
    config = load_config(CONFIGS / name, [f"data.root={root}"])
    assert config.data.dataset == "folder" and config.data.root == str(root)
    assert set(config.model.encoders) <= set(SHAPES) and config.metrics.primary is None  # the task's default
    with pytest.raises(ValueError, match=r"needs its folder: set `data.root`"):
        folder_task(load_config(CONFIGS / name).data)
