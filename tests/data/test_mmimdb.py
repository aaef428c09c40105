"""MM-IMDB's hdf5 reader on small files written in Arevalo's / MultiBench's layout, and on wrong ones."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from tests._helpers.mmimdb_files import SMALL_SIZES, write_hdf5

from fusebench.config import ConfigError, validate_config
from fusebench.data.mmimdb import GENRES, MMIMDBOptions, SplitSizes, load
from fusebench.data.registry import get_dataset

pytest.importorskip("h5py", reason="the MM-IMDB hdf5 reader needs the `mmimdb` extra (h5py)")


def _options(path: Path, **keys: object) -> MMIMDBOptions:
    return MMIMDBOptions(root=str(path), split_sizes=SplitSizes(**SMALL_SIZES), **keys)


def test_reads_the_three_splits_by_row_index(tmp_path: Path) -> None:
    path = write_hdf5(tmp_path / "multimodal_imdb.hdf5")
    loaded = load(_options(tmp_path))
    import h5py

    with h5py.File(path) as f:
        features, vgg, genres = f["features"][:], f["vgg_features"][:], f["genres"][:]
    starts = {"train": 0, "validation": 240, "test": 300}
    for name, n in SMALL_SIZES.items():
        split = loaded.split(name)
        assert len(split) == n
        assert split.inputs["text"].dtype == torch.float32 and split.inputs["text"].shape == (n, 300)
        assert split.inputs["image"].dtype == torch.float32 and split.inputs["image"].shape == (n, 4096)
        assert split.target.dtype == torch.float32 and split.target.shape == (n, 23)
        rows = slice(starts[name], starts[name] + n)
        np.testing.assert_array_equal(split.inputs["text"].numpy(), features[rows])
        np.testing.assert_array_equal(split.inputs["image"].numpy(), vgg[rows])
        np.testing.assert_array_equal(split.target.numpy(), genres[rows])
    assert loaded.info.task.kind == "multilabel" and loaded.info.task.label_names == GENRES
    assert {m: i.shape for m, i in loaded.info.modalities.items()} == {"image": (4096,), "text": (300,)}
    loaded.info.task.check_target(loaded.train.target, "train")


def test_the_default_split_is_multibenchs() -> None:
    assert SplitSizes().ranges() == {"train": (0, 15552), "validation": (15552, 18160), "test": (18160, 25959)}


def test_limit_reads_the_first_rows_of_each_split(tmp_path: Path) -> None:
    write_hdf5(tmp_path / "multimodal_imdb.hdf5")
    full = load(_options(tmp_path))
    few = load(_options(tmp_path, limit={"train": 10, "test": 5}))
    assert (len(few.train), len(few.validation), len(few.test)) == (10, 60, 5)
    assert torch.equal(few.test.inputs["text"], full.test.inputs["text"][:5])


def test_genre_columns_follow_the_files_target_names(tmp_path: Path) -> None:
    path = write_hdf5(tmp_path / "multimodal_imdb.hdf5")
    import h5py

    with h5py.File(path, "r+") as f:
        original = f["genres"][:]
        del f["genres"]
        f["genres"] = original[:, ::-1]  # columns stored in reverse genre order ...
        f["genres"].attrs["target_names"] = json.dumps(list(GENRES[::-1]))  # ... and named so
    loaded = load(_options(tmp_path))
    np.testing.assert_array_equal(loaded.train.target.numpy(), original[:240])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        pytest.param({"features": None}, "expected a dataset `features`", id="missing-key"),
        pytest.param(
            {"vgg_features": np.zeros((390, 2048), np.float32)},
            r"`vgg_features`: expected shape \[N, 4096\]",
            id="wrong-width",
        ),
        pytest.param({"features": np.zeros((390, 300), np.int64)}, "expected floating point values", id="int-features"),
        pytest.param(
            {"genres": np.full((390, 23), 2, np.int32)},
            r"`genres`: expected values 0 or 1, got \[2\]",
            id="label-values",
        ),
        pytest.param({"features": np.zeros((389, 300), np.float32)}, "same number of rows", id="unequal-counts"),
        pytest.param({"features": np.full((390, 300), np.nan, np.float32)}, "NaN or Inf", id="nan"),
    ],
)
def test_a_wrong_file_is_one_clear_error(tmp_path: Path, override: dict, message: str) -> None:
    path = write_hdf5(tmp_path / "multimodal_imdb.hdf5", **override)
    with pytest.raises(ValueError, match=message) as error:
        load(_options(tmp_path))
    assert str(path) in str(error.value)


def test_rows_that_do_not_match_the_split_say_how_to_fix_it(tmp_path: Path) -> None:
    write_hdf5(tmp_path / "multimodal_imdb.hdf5")
    with pytest.raises(ValueError, match=r"has 390 rows.*add up to 25959.*set `data.split_sizes`"):
        load(MMIMDBOptions(root=str(tmp_path)))


def test_wrong_target_names_are_an_error(tmp_path: Path) -> None:
    path = write_hdf5(tmp_path / "multimodal_imdb.hdf5")
    import h5py

    with h5py.File(path, "r+") as f:
        f["genres"].attrs["target_names"] = json.dumps(["Drama"] * 23)
    with pytest.raises(ValueError, match="expected `target_names` to name the 23 MM-IMDB genres"):
        load(_options(tmp_path))


def test_a_file_that_is_not_hdf5_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "multimodal_imdb.hdf5").write_text("not hdf5")
    with pytest.raises(ValueError, match="is not a readable HDF5 file"):
        load(_options(tmp_path))


def test_missing_data_names_the_path_and_the_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(FileNotFoundError, match=r"multimodal_imdb.hdf5`, which does not exist; expected .*`features`"):
        load(_options(tmp_path))
    monkeypatch.delenv("FUSEBENCH_DATA", raising=False)
    with pytest.raises(FileNotFoundError, match=r"never downloaded.*`data.root=.*`FUSEBENCH_DATA=/path`"):
        load(MMIMDBOptions())


def test_fusebench_data_is_searched_under_mmimdb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_hdf5(tmp_path / "mmimdb" / "multimodal_imdb.hdf5")
    monkeypatch.setenv("FUSEBENCH_DATA", str(tmp_path))
    assert len(load(MMIMDBOptions(split_sizes=SplitSizes(**SMALL_SIZES))).test) == 90


def test_registered_with_strict_options() -> None:
    entry = get_dataset("mmimdb")
    assert entry.task(MMIMDBOptions()).output_size == 23
    with pytest.raises(ConfigError, match=r"unknown key `data.split_size` \(did you mean `data.split_sizes`\?\)"):
        validate_config({"data": {"dataset": "mmimdb", "split_size": {}}})


def test_without_h5py_the_config_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "h5py" else real(name, *a))
    with pytest.raises(ConfigError, match=r"`h5py`.*pip install 'fusebench\[mmimdb\]'"):
        validate_config({"data": {"dataset": "mmimdb"}})
