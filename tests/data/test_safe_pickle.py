"""The restricted unpickler: numpy arrays and builtin containers load; anything that could run code does not."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from fusebench.data.safe_pickle import UnsafePickleError, load_pickle

MARKER = "fusebench_pickle_ran"


class WritesAFile:
    """Unpickling calls ``os.system`` with a shell command that creates a marker file."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.target}",)


class ExecsCode:
    """Unpickling calls ``builtins.exec`` on Python source that writes a marker file."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return exec, (f"open({str(self.target)!r}, 'w').write('ran')",)


class Opaque:
    """A plain class instance: unpickling it would import and instantiate this module's class."""

    def __init__(self) -> None:
        self.value = 1


def _data() -> dict[str, object]:
    return {
        "train": {
            "audio": np.arange(24, dtype=np.float32).reshape(2, 3, 4),
            "labels": np.array([[[1.5]], [[-0.5]]]),
            "id": np.array(["a", "b"], dtype=object),
            "raw_text": ["one", "two"],
            "lengths": [3, 2],
            "scalar": np.float64(2.5),
            "flag": True,
            "nothing": None,
            "blob": b"\x00\xff",
            "pair": (1, 2.0),
            "tags": {"x"},
            "frozen": frozenset({1}),
            "strided": np.zeros((3, 4))[:, ::2],
            "ints": np.array([1, 2], dtype=np.int64),
        }
    }


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1), ids=lambda p: f"protocol{p}")
def test_numpy_arrays_and_builtin_containers_load_in_every_protocol(tmp_path: Path, protocol: int) -> None:
    file = tmp_path / "ok.pkl"
    original = _data()
    file.write_bytes(pickle.dumps(original, protocol=protocol))
    loaded = load_pickle(file)
    for key, value in original["train"].items():  # type: ignore[union-attr]
        got = loaded["train"][key]
        if isinstance(value, np.ndarray):
            assert got.dtype == value.dtype and np.array_equal(got, value), key
        else:
            assert got == value and type(got) is type(value), key


@pytest.mark.parametrize(
    ("payload", "refused"),
    [
        pytest.param(WritesAFile, "system", id="os.system"),
        pytest.param(ExecsCode, "builtins.exec", id="builtins.exec"),
    ],
)
def test_a_pickle_carrying_code_is_refused_and_the_code_never_runs(tmp_path: Path, payload: type, refused: str) -> None:
    marker = tmp_path / MARKER
    file = tmp_path / "evil.pkl"
    file.write_bytes(pickle.dumps({"train": {"audio": np.zeros(3), "x": payload(marker)}}))
    with pytest.raises(UnsafePickleError, match=refused) as error:
        load_pickle(file)
    assert str(file) in str(error.value) and "only numpy arrays" in str(error.value)
    assert not marker.exists()
    with pytest.raises(ValueError):  # the error is a ValueError: the CLI shows it as one paragraph
        load_pickle(file)


def test_code_hidden_inside_an_object_array_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / MARKER
    hidden = np.empty(2, dtype=object)
    hidden[0], hidden[1] = "fine", WritesAFile(marker)
    file = tmp_path / "hidden.pkl"
    file.write_bytes(pickle.dumps({"id": hidden}))
    with pytest.raises(UnsafePickleError, match="system"):
        load_pickle(file)
    assert not marker.exists()


def test_any_class_instance_is_refused_with_its_name(tmp_path: Path) -> None:
    file = tmp_path / "object.pkl"
    file.write_bytes(pickle.dumps({"x": Opaque()}))
    with pytest.raises(UnsafePickleError, match=rf"`{Opaque.__module__}\.Opaque`"):
        load_pickle(file)


def test_bytes_rebuilt_with_another_codec_are_refused(tmp_path: Path) -> None:
    # protocol 2 rebuilds bytes as _codecs.encode(text, "latin1"); any other codec is not an array pickle
    file = tmp_path / "codec.pkl"
    file.write_bytes(b"\x80\x02c_codecs\nencode\nq\x00X\x01\x00\x00\x00aX\x05\x00\x00\x00rot13\x86R.")
    with pytest.raises(UnsafePickleError, match="rot13"):
        load_pickle(file)


def test_missing_and_unreadable_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nothing there"):
        load_pickle(tmp_path / "absent.pkl")
    truncated = tmp_path / "truncated.pkl"
    truncated.write_bytes(pickle.dumps({"a": np.zeros(100)})[:50])
    with pytest.raises(ValueError, match="could not be read"):
        load_pickle(truncated)
    text = tmp_path / "notes.pkl"
    text.write_text("this is not a pickle")
    with pytest.raises(ValueError, match="could not be read"):
        load_pickle(text)
