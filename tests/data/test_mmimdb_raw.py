"""The raw MM-IMDB folder reader (posters + plots) and its text conversion, on small folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from tests._helpers.mmimdb_files import write_raw_folder

from fusebench.data.mmimdb import GENRES
from fusebench.data.mmimdb_raw import MMIMDBRawOptions, load
from fusebench.data.text import UNK_ID, Vocabulary, decode_utf8, tokenize, utf8_bytes

pytest.importorskip("PIL", reason="the raw MM-IMDB reader decodes posters with Pillow (`mmimdb` extra)")


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_raw_folder(tmp_path_factory.mktemp("mmimdb_raw"))


def _movie(folder: Path, movie: str) -> dict:
    return json.loads((folder / "dataset" / f"{movie}.json").read_text())


def test_token_text_posters_and_genres(folder: Path) -> None:
    options = MMIMDBRawOptions(root=str(folder), image_size=(40, 24), min_count=1)
    loaded = load(options)
    split_ids = json.loads((folder / "split.json").read_text())
    train_words = [tokenize(max(_movie(folder, m)["plot"], key=len)) for m in split_ids["train"]]
    vocabulary = Vocabulary.build(train_words, options.vocab_size, 1)
    for name, key in (("train", "train"), ("validation", "dev"), ("test", "test")):
        split, ids = loaded.split(name), split_ids[key]
        assert len(split) == len(ids)
        image, text, lengths = split.inputs["image"], split.inputs["text"], split.lengths["text"]
        assert image.dtype == torch.uint8 and image.shape == (len(ids), 3, 40, 24)
        assert text.dtype == torch.long and lengths.dtype == torch.long
        for i, movie in enumerate(ids):
            record = _movie(folder, movie)
            expected = vocabulary.encode(tokenize(max(record["plot"], key=len)))  # the longest plot
            assert lengths[i] == len(expected) and text[i, : len(expected)].tolist() == expected
            assert bool((text[i, len(expected) :] == 0).all())
            names = {GENRES[j] for j in np.flatnonzero(split.target[i].numpy())}
            assert names == set(record["genres"]) - {"News"}  # genres outside the 23 are ignored
        loaded.info.task.check_target(split.target, name)
    assert loaded.info.modalities["text"].variable_length and loaded.info.modalities["text"].shape == (text.shape[1],)


def test_the_vocabulary_comes_from_the_training_split_only(tmp_path: Path) -> None:
    folder = write_raw_folder(tmp_path)
    test_movie = json.loads((folder / "split.json").read_text())["test"][0]
    record = _movie(folder, test_movie)
    record["plot"] = ["zyzzyva " * 3 + record["plot"][0]]
    (folder / "dataset" / f"{test_movie}.json").write_text(json.dumps(record))
    loaded = load(MMIMDBRawOptions(root=str(folder), image_size=(16, 16), min_count=1))
    assert loaded.test.inputs["text"][0, :3].tolist() == [UNK_ID] * 3


def test_utf8_text_decodes_back_to_the_longest_plot(folder: Path) -> None:
    loaded = load(MMIMDBRawOptions(root=str(folder), image_size=(16, 16), text="utf8", max_bytes=64))
    ids = json.loads((folder / "split.json").read_text())["dev"]
    texts = decode_utf8(loaded.validation.inputs["text"], loaded.validation.lengths["text"])
    expected = [utf8_bytes(max(_movie(folder, m)["plot"], key=len), 64).decode() for m in ids]
    assert texts == expected
    assert loaded.validation.inputs["text"].dtype == torch.uint8 and loaded.validation.inputs["text"].shape[1] <= 64


def test_utf8_truncation_never_splits_a_character() -> None:
    assert utf8_bytes("héllo", 2) == b"h" and utf8_bytes("héllo", 3) == "hé".encode()


def test_tokenize_and_vocabulary_order() -> None:
    assert tokenize("Don't stop<br />the 1980s!") == ["don't", "stop", "the", "1980", "s", "!"]
    vocabulary = Vocabulary.build([["b", "a", "b"], ["c", "a", "b"]], size=4)
    assert vocabulary.words == ("<pad>", "<unk>", "b", "a")  # by count, ties alphabetically, capped
    assert vocabulary.encode(["a", "c", "b"]) == [3, UNK_ID, 2]


def test_limit_reads_only_the_first_movies(folder: Path) -> None:
    loaded = load(MMIMDBRawOptions(root=str(folder), image_size=(16, 16), limit={"train": 5, "test": 3}))
    assert (len(loaded.train), len(loaded.validation), len(loaded.test)) == (5, 12, 3)


def _break(folder: Path, case: str) -> str:
    ids = json.loads((folder / "split.json").read_text())
    movie = ids["dev"][2]
    if case == "split-keys":
        (folder / "split.json").write_text(json.dumps({"train": ids["train"], "val": ids["dev"], "test": ids["test"]}))
        return "split.json"
    if case == "duplicate-id":
        ids["test"].append(ids["train"][0])
        (folder / "split.json").write_text(json.dumps(ids))
        return "split.json"
    if case == "missing-json":
        (folder / "dataset" / f"{movie}.json").unlink()
        return f"{movie}.json"
    if case == "no-plot":
        (folder / "dataset" / f"{movie}.json").write_text(json.dumps({"genres": ["Drama"]}))
        return f"{movie}.json"
    if case == "bad-jpeg":
        (folder / "dataset" / f"{movie}.jpeg").write_bytes(b"not a jpeg")
        return f"{movie}.jpeg"
    raise AssertionError(case)


@pytest.mark.parametrize(
    ("case", "error", "message"),
    [
        pytest.param(
            "split-keys", ValueError, r"expected an object with keys \['dev', 'test', 'train'\]", id="split-keys"
        ),
        pytest.param("duplicate-id", ValueError, "is listed in both", id="duplicate-id"),
        pytest.param("missing-json", FileNotFoundError, "listed in split.json", id="missing-json"),
        pytest.param("no-plot", ValueError, "expected key `plot`", id="no-plot"),
        pytest.param("bad-jpeg", ValueError, "expected a decodable image", id="bad-jpeg"),
    ],
)
def test_a_wrong_folder_is_one_clear_error(tmp_path: Path, case: str, error: type, message: str) -> None:
    folder = write_raw_folder(tmp_path)
    culprit = _break(folder, case)
    with pytest.raises(error, match=message) as raised:
        load(MMIMDBRawOptions(root=str(folder), image_size=(16, 16)))
    assert culprit in str(raised.value)


def test_missing_folder_names_the_layout(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"split.json`, which does not exist; expected .* `dataset/`"):
        load(MMIMDBRawOptions(root=str(tmp_path)))
