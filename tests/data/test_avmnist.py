"""AV-MNIST reader: small files in exactly MultiBench's layout, and every wrong file's one clear error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from tests._helpers.avmnist import save, write_avmnist

from fusebench.config import ConfigError, validate_config
from fusebench.data.avmnist import AVMNISTOptions, load
from fusebench.data.registry import dataset_names, get_dataset


def _options(root: Path, **values: object) -> AVMNISTOptions:
    return AVMNISTOptions(root=str(root), **values)


@pytest.mark.parametrize("dtype", ["uint8", "float32"])
@pytest.mark.parametrize("image_shape", ["flat", "square"])
def test_reads_the_layout_divided_by_255_with_the_last_twelfth_as_validation(
    tmp_path: Path, dtype: str, image_shape: str
) -> None:
    arrays = write_avmnist(tmp_path, n_train=24, n_test=10, dtype=dtype, image_shape=image_shape)  # type: ignore[arg-type]
    loaded = load(_options(tmp_path))
    # MultiBench: x / 255, images reshaped to 28 x 28, a channel axis, validation = the last 1/12 of train.
    image = arrays["image/train_data.npy"].reshape(24, 1, 28, 28).astype(np.float64) / 255.0
    audio = arrays["audio/train_data.npy"].reshape(24, 1, 112, 112).astype(np.float64) / 255.0
    assert (len(loaded.train), len(loaded.validation), len(loaded.test)) == (22, 2, 10)
    for split, rows in ((loaded.train, slice(0, 22)), (loaded.validation, slice(22, 24))):
        assert split.inputs["image"].dtype == split.inputs["audio"].dtype == torch.float32
        np.testing.assert_allclose(split.inputs["image"].numpy(), image[rows], rtol=1e-6)
        np.testing.assert_allclose(split.inputs["audio"].numpy(), audio[rows], rtol=1e-6)
        assert split.target.dtype == torch.int64
        assert split.target.tolist() == arrays["train_labels.npy"][rows].tolist()
    np.testing.assert_allclose(
        loaded.test.inputs["image"].numpy().reshape(10, -1),
        arrays["image/test_data.npy"].reshape(10, -1) / 255.0,
        rtol=1e-6,
    )
    assert loaded.info.describe()["modalities"] == {
        "audio": {"kind": "audio", "shape": [1, 112, 112], "variable_length": False},
        "image": {"kind": "image", "shape": [1, 28, 28], "variable_length": False},
    }
    assert (loaded.info.task.kind, loaded.info.task.output_size) == ("multiclass", 10)


def test_multibench_split_of_60000_rows_is_rows_55000_to_60000() -> None:
    # get_data.py: trainlist[0:55000] trains, trainlist[55000:60000] validates.
    assert AVMNISTOptions().validation_rows(60000, Path("x")) == 5000
    assert AVMNISTOptions(validation_fraction=0.25).validation_rows(60000, Path("x")) == 15000
    assert AVMNISTOptions(validation_size=7).validation_rows(60000, Path("x")) == 7


def test_validation_share_and_size_are_configurable(tmp_path: Path) -> None:
    arrays = write_avmnist(tmp_path, n_train=24)
    quarter = load(_options(tmp_path, validation_fraction=0.25))
    assert (len(quarter.train), len(quarter.validation)) == (18, 6)
    sized = load(_options(tmp_path, validation_size=5))
    assert (len(sized.train), len(sized.validation)) == (19, 5)
    assert sized.validation.target.tolist() == arrays["train_labels.npy"][19:].tolist()
    with pytest.raises(ValueError, match="either `validation_fraction` or `validation_size`"):
        _options(tmp_path, validation_fraction=0.25, validation_size=5)
    with pytest.raises(ValueError, match="has 24 rows, so validation_size=24 leaves 24 validation rows"):
        load(_options(tmp_path, validation_size=24))


def test_limit_reads_the_first_rows_of_each_split(tmp_path: Path) -> None:
    arrays = write_avmnist(tmp_path, n_train=24, n_test=10)
    loaded = load(_options(tmp_path, limit={"train": 3, "validation": 1, "test": 4}))
    assert (len(loaded.train), len(loaded.validation), len(loaded.test)) == (3, 1, 4)
    labels = arrays["train_labels.npy"]
    assert loaded.train.target.tolist() == labels[:3].tolist()
    assert loaded.validation.target.tolist() == labels[22:23].tolist()  # the first row of the validation block
    assert loaded.test.target.tolist() == arrays["test_labels.npy"][:4].tolist()


def test_standardise_uses_training_statistics(tmp_path: Path) -> None:
    arrays = write_avmnist(tmp_path, n_train=24, dtype="float32")
    loaded = load(_options(tmp_path, normalisation="standardise"))
    train = arrays["image/train_data.npy"][:22].astype(np.float64) / 255.0
    mean, std = train.mean(), train.std(ddof=1)
    expected = (arrays["image/test_data.npy"].astype(np.float64) / 255.0 - mean) / std
    np.testing.assert_allclose(loaded.test.inputs["image"].numpy().reshape(10, -1), expected, rtol=1e-4, atol=1e-5)
    assert abs(float(loaded.train.inputs["audio"].mean())) < 1e-4


def test_scale_one_reads_files_already_on_0_to_1(tmp_path: Path) -> None:
    arrays = write_avmnist(tmp_path, dtype="float32")
    for name in ("image/train_data.npy", "image/test_data.npy", "audio/train_data.npy", "audio/test_data.npy"):
        save(tmp_path / name, arrays[name] / np.float32(255.0))
    loaded = load(_options(tmp_path, scale=1.0))
    np.testing.assert_allclose(
        loaded.test.inputs["audio"].numpy().reshape(10, 112, 112), arrays["audio/test_data.npy"] / 255.0, rtol=1e-5
    )


def test_whole_number_float_labels_are_accepted(tmp_path: Path) -> None:
    arrays = write_avmnist(tmp_path)
    save(tmp_path / "train_labels.npy", arrays["train_labels.npy"].astype(np.float32))
    assert load(_options(tmp_path)).train.target.tolist() == arrays["train_labels.npy"][:22].tolist()


def _garbage(path: Path) -> None:
    path.write_bytes(b"not a numpy file at all")


def _truncated(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _pickled(path: Path) -> None:
    np.save(path, np.array([{"a": 1}] * 24, dtype=object), allow_pickle=True)


WRONG_FILES = [
    pytest.param(
        "image/train_data.npy",
        np.zeros((24, 32, 32), np.uint8),
        r"image/train_data.npy` has shape \(24, 32, 32\); expected N x 784 or N x 28 x 28",
        id="image-shape",
    ),
    pytest.param(
        "image/test_data.npy",
        np.zeros((10, 1, 28, 28), np.uint8),
        r"image/test_data.npy` has shape \(10, 1, 28, 28\); expected N x 784",
        id="image-channel-axis",
    ),
    pytest.param(
        "audio/train_data.npy",
        np.zeros((24, 112, 100), np.uint8),
        r"audio/train_data.npy` has shape \(24, 112, 100\); expected N x 112 x 112",
        id="audio-shape",
    ),
    pytest.param(
        "audio/test_data.npy",
        np.zeros((10, 112, 112), np.int32),
        r"audio/test_data.npy` has dtype int32; expected one of uint8, float32, float64",
        id="audio-dtype",
    ),
    pytest.param(
        "train_labels.npy",
        np.zeros((24, 1), np.int64),
        r"train_labels.npy` has shape \(24, 1\); expected a 1-D array",
        id="labels-2d",
    ),
    pytest.param(
        "train_labels.npy",
        np.full(24, 10, np.int64),
        r"train_labels.npy` holds 24 labels outside 0-9 \(found \[10\]\)",
        id="label-range",
    ),
    pytest.param(
        "test_labels.npy",
        np.full(10, 2.5, np.float32),
        r"test_labels.npy` holds 10 labels that are not whole numbers",
        id="fractional-labels",
    ),
    pytest.param(
        "train_labels.npy",
        np.zeros(23, np.int64),
        r"train files in .* disagree on the number of samples \(image/train_data.npy 24, "
        r"audio/train_data.npy 24, train_labels.npy 23\)",
        id="count-mismatch",
    ),
    pytest.param(
        "image/train_data.npy",
        np.full((24, 784), 300.0, np.float32),
        r"image/train_data.npy` holds values in \[300, 300\] .*expected values in \[0, 255\]",
        id="above-255",
    ),
    pytest.param(
        "audio/train_data.npy",
        np.full((24, 112, 112), -1.0, np.float32),
        r"audio/train_data.npy` holds values in \[-1, -1\]",
        id="negative",
    ),
    pytest.param(
        "image/test_data.npy",
        np.full((10, 784), np.nan, np.float32),
        r"image/test_data.npy` holds 7840 NaN or infinite values",
        id="nan",
    ),
    pytest.param(
        "audio/test_data.npy",
        np.full((10, 112, 112), 0.5, np.float32),
        r"audio/test_data.npy` holds values in \[0.5, 0.5\]: it looks already divided by 255",
        id="scaled",
    ),
    pytest.param("image/train_data.npy", _garbage, r"image/train_data.npy` is not a plain numeric .npy", id="garbage"),
    pytest.param(
        "audio/train_data.npy", _truncated, r"audio/train_data.npy` is not a plain numeric .npy", id="truncated"
    ),
    pytest.param("train_labels.npy", _pickled, r"train_labels.npy` is not a plain numeric .npy", id="pickled"),
]


@pytest.mark.parametrize(("name", "content", "message"), WRONG_FILES)
def test_each_wrong_file_gives_one_error_naming_it(tmp_path: Path, name: str, content: object, message: str) -> None:
    write_avmnist(tmp_path, n_train=24, n_test=10)
    if callable(content):
        content(tmp_path / name)
    else:
        save(tmp_path / name, content)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=message) as caught:
        load(_options(tmp_path))
    assert "\n" not in str(caught.value)


def test_a_pickled_file_is_refused_without_running_it(tmp_path: Path) -> None:
    write_avmnist(tmp_path)
    ran = tmp_path / "ran"

    class Payload:
        def __reduce__(self) -> tuple[object, tuple[Path]]:
            return (Path.touch, (ran,))  # unpickling this would create the file

    np.save(tmp_path / "test_labels.npy", np.array([Payload()], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="is not a plain numeric .npy"):
        load(_options(tmp_path))
    assert not ran.exists()


def test_missing_files_name_the_path_and_the_layout(tmp_path: Path) -> None:
    write_avmnist(tmp_path)
    (tmp_path / "audio" / "test_data.npy").unlink()
    (tmp_path / "test_labels.npy").unlink()
    with pytest.raises(
        FileNotFoundError,
        match=r"lacks audio/test_data.npy, test_labels.npy\. Expected layout: "
        r"image/\{train,test\}_data.npy \(N x 784 or N x 28 x 28\)",
    ):
        load(_options(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"`.*nowhere` does not exist\. Expected layout"):
        load(_options(tmp_path / "nowhere"))


def test_root_defaults_to_fusebench_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_avmnist(tmp_path / "avmnist")
    monkeypatch.setenv("FUSEBENCH_DATA", str(tmp_path))
    assert len(load(AVMNISTOptions()).test) == 10
    monkeypatch.delenv("FUSEBENCH_DATA")
    with pytest.raises(
        FileNotFoundError,
        match=r"set `data.root=/path/to/avmnist` or the environment variable "
        r"FUSEBENCH_DATA",
    ):
        load(AVMNISTOptions())


def test_registered_with_a_strict_options_model_and_a_task_without_loading(tmp_path: Path) -> None:
    assert "avmnist" in dataset_names()
    entry = get_dataset("avmnist")
    task = entry.task(AVMNISTOptions(root=str(tmp_path / "not-there")))
    assert (task.kind, task.output_size) == ("multiclass", 10)
    config = validate_config({"data": {"dataset": "avmnist", "root": str(tmp_path)}})
    assert isinstance(config.data, AVMNISTOptions)
    with pytest.raises(
        ConfigError,
        match=r"unknown key `data.validation_fractoin` \(did you mean "
        r"`data.validation_fraction`\?\)",
    ):
        validate_config({"data": {"dataset": "avmnist", "validation_fractoin": 0.1}})
    with pytest.raises(ConfigError, match="normalisation"):
        validate_config({"data": {"dataset": "avmnist", "normalisation": "zscore"}})
