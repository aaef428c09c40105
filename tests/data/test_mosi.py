"""CMU-MOSI/MOSEI readers on small pickles written in exactly the MultiBench and MMSA layouts."""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from tests._helpers.mosi_files import (
    MMSA_DIMS,
    MMSA_UNALIGNED_STEPS,
    MULTIBENCH_DIMS,
    SIZES,
    STEPS,
    make_multibench,
    strip_private,
    write_mmsa,
    write_multibench,
    write_pickle,
)

from fusebench.data.mosi import MOSEIOptions, MOSIOptions, load, pickle_path, sentiment_target
from fusebench.data.registry import get_dataset
from fusebench.data.safe_pickle import UnsafePickleError

SPLITS = {"train": "train", "validation": "valid", "test": "test"}


def _load(root: Path, **options: Any) -> Any:
    return load(MOSIOptions(root=str(root), **options))


def test_multibench_layout_moves_front_padding_to_the_back_and_records_lengths(tmp_path: Path) -> None:
    _, written = write_multibench(tmp_path)
    data = _load(tmp_path)
    assert data.info.describe()["modalities"] == {
        m: {"kind": "sequence", "shape": [STEPS, d], "variable_length": True}
        for m, d in sorted(MULTIBENCH_DIMS.items())
    }
    for name, key in SPLITS.items():
        split, source = data.split(name), written[key]
        assert len(split) == SIZES[key]
        assert split.target.dtype == torch.float32
        np.testing.assert_allclose(split.target.numpy(), source["labels"].reshape(-1), rtol=0, atol=1e-6)
        for m in MULTIBENCH_DIMS:
            assert split.lengths is not None
            assert split.lengths[m].tolist() == source["_lengths"].tolist()  # aligned: the text's padding
            for i, length in enumerate(source["_lengths"]):
                real = source[m][i, STEPS - length :]  # written at the end (front padding)
                np.testing.assert_allclose(split.inputs[m][i, :length].numpy(), real, rtol=1e-6)
                assert not split.inputs[m][i, length:].any()


def test_multibench_unaligned_reads_each_modality_own_padding(tmp_path: Path) -> None:
    raw = make_multibench()
    vision = raw["train"]["vision"]
    vision[1, : STEPS - 2] = 0.0  # vision of sample 1 keeps only its last 2 steps
    vision[2] = 0.0  # and sample 2 has no vision at all
    write_pickle(tmp_path / "mosi_raw.pkl", strip_private(raw))
    aligned = _load(tmp_path).train
    unaligned = _load(tmp_path, multibench_alignment="unaligned").train
    assert aligned.lengths is not None and unaligned.lengths is not None
    assert aligned.lengths["vision"][1] == raw["train"]["_lengths"][1]
    assert unaligned.lengths["vision"][1] == 2 and unaligned.lengths["vision"][2] == 1
    assert torch.equal(unaligned.lengths["text"], aligned.lengths["text"])
    np.testing.assert_allclose(unaligned.inputs["vision"][1, :2].numpy(), vision[1, -2:], rtol=1e-6)


def test_multibench_samples_without_text_are_dropped_and_reported(tmp_path: Path, caplog: Any) -> None:
    raw = make_multibench()
    raw["test"]["text"][3] = 0.0
    write_pickle(tmp_path / "mosi_raw.pkl", strip_private(raw))
    with caplog.at_level(logging.WARNING, logger="fusebench.data.mosi"):
        data = _load(tmp_path)
    assert len(data.test) == SIZES["test"] - 1
    expected = np.delete(raw["test"]["labels"].reshape(-1), 3)
    np.testing.assert_allclose(data.test.target.numpy(), expected, atol=1e-6)
    assert "dropped 1 samples whose text is all zeros" in caplog.text


def test_nonfinite_features_are_counted_replaced_by_zero_or_refused(tmp_path: Path, caplog: Any) -> None:
    raw = make_multibench()
    raw["train"]["audio"][0, -1, :3] = [-np.inf, np.nan, np.inf]  # a real step of sample 0
    raw["test"]["vision"][0, -2, 0] = np.nan
    write_pickle(tmp_path / "mosi_raw.pkl", strip_private(raw))
    with caplog.at_level(logging.WARNING, logger="fusebench.data.mosi"):
        data = _load(tmp_path)
    assert "4 NaN/Inf feature values (train/audio: 3, test/vision: 1) replaced by 0" in caplog.text
    length = int(raw["train"]["_lengths"][0])
    assert data.train.inputs["audio"][0, length - 1, :3].tolist() == [0.0, 0.0, 0.0]
    assert data.train.lengths is not None and data.train.lengths["audio"][0] == length  # still a real step
    assert all(bool(torch.isfinite(x).all()) for split in (data.train, data.test) for x in split.inputs.values())
    with pytest.raises(ValueError, match=r"4 NaN/Inf values \(train/audio: 3, test/vision: 1\).*nonfinite=zero"):
        _load(tmp_path, nonfinite="error")


def test_mmsa_aligned_lengths_from_the_bert_mask_and_the_back_padding(tmp_path: Path) -> None:
    path, written = write_mmsa(tmp_path, aligned=True)
    data = _load(tmp_path, file=path.name)
    assert {m: i.shape for m, i in data.info.modalities.items()} == {
        "audio": (STEPS, MMSA_DIMS["audio"]),
        "text": (STEPS, MMSA_DIMS["text"]),
        "vision": (STEPS, MMSA_DIMS["vision"]),
    }
    for name, key in SPLITS.items():
        split, source = data.split(name), written[key]
        assert split.lengths is not None
        for m in ("audio", "text", "vision"):  # text: from text_bert's mask, though its padded rows are non-zero
            assert split.lengths[m].tolist() == source["_lengths"][m].tolist(), (key, m)
        np.testing.assert_allclose(split.inputs["text"].numpy(), source["text"], rtol=1e-6)
        np.testing.assert_allclose(split.target.numpy(), source["regression_labels"], atol=1e-6)


def test_mmsa_unaligned_uses_stored_lengths_and_clamps_impossible_ones(tmp_path: Path, caplog: Any) -> None:
    path, written = write_mmsa(tmp_path, aligned=False)
    data = _load(tmp_path, file=path.name)
    assert data.info.modalities["audio"].shape == (MMSA_UNALIGNED_STEPS["audio"], MMSA_DIMS["audio"])
    assert data.info.modalities["vision"].shape == (MMSA_UNALIGNED_STEPS["vision"], MMSA_DIMS["vision"])
    assert data.train.lengths is not None
    assert data.train.lengths["audio"].tolist() == written["train"]["audio_lengths"]
    # a clip longer than the padded length, and one where no face was found
    source = strip_private(written)
    source["train"]["audio_lengths"][0] = 400
    source["train"]["vision_lengths"][1] = 0
    write_pickle(path, source)
    with caplog.at_level(logging.WARNING, logger="fusebench.data.mosi"):
        clamped = _load(tmp_path, file=path.name).train
    assert clamped.lengths is not None
    assert int(clamped.lengths["audio"][0]) == 375 and int(clamped.lengths["vision"][1]) == 1
    assert "[`audio`]: 1 lengths outside 1..375 clamped" in caplog.text
    assert "[`vision`]: 1 lengths outside 1..500 clamped" in caplog.text


def test_mmsa_text_bert_gives_token_ids(tmp_path: Path) -> None:
    path, written = write_mmsa(tmp_path, aligned=False)
    data = _load(tmp_path, file=path.name, text_field="text_bert")
    text = data.train.inputs["text"]
    assert text.dtype == torch.int64 and tuple(text.shape) == (SIZES["train"], STEPS)
    assert text.tolist() == written["train"]["text_bert"][:, 0, :].tolist()
    assert data.info.modalities["text"].kind == "text" and data.info.modalities["text"].shape == (STEPS,)


def test_full_lengths_read_every_step_as_data(tmp_path: Path) -> None:
    write_multibench(tmp_path)
    data = _load(tmp_path, lengths="full")
    assert data.train.lengths is None
    assert not any(i.variable_length for i in data.info.modalities.values())


def test_format_is_detected_from_the_keys_or_forced(tmp_path: Path) -> None:
    path, _ = write_mmsa(tmp_path, aligned=True)
    assert len(_load(tmp_path, file=path.name, format="mmsa").train) == SIZES["train"]
    with pytest.raises(
        ValueError,
        match=r"multibench layout\) to hold \['audio', 'text', 'vision', 'labels'\]; "
        r"missing \['labels'\]",
    ):
        _load(tmp_path, file=path.name, format="multibench")


@pytest.mark.parametrize(
    ("task", "expected"),
    [
        ("regression", [-3.0, -0.2, 0.0, 0.2, 3.0]),
        ("classification2", [0, 0, 1, 1, 1]),
        ("classification3", [0, 0, 1, 2, 2]),
    ],
)
def test_tasks_derive_targets_from_the_score(tmp_path: Path, task: str, expected: list[float]) -> None:
    scores = np.array([-3.0, -0.2, 0.0, 0.2, 3.0], dtype=np.float32)
    target = sentiment_target(scores, task)  # type: ignore[arg-type]
    assert target.tolist() == pytest.approx(expected)
    write_multibench(tmp_path)
    data = _load(tmp_path, task=task)
    entry_task = get_dataset("mosi").task(MOSIOptions(task=task))  # no file read
    assert data.info.task == entry_task
    assert entry_task.kind == ("regression" if task == "regression" else "multiclass")
    entry_task.check_target(data.train.target, "train")


def test_mosei_defaults_to_multibench_file_name_under_fusebench_data(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("FUSEBENCH_DATA", str(tmp_path))
    write_multibench(tmp_path / "mosei", name="mosei_senti_data.pkl")
    options = MOSEIOptions()
    assert pickle_path(options) == tmp_path / "mosei" / "mosei_senti_data.pkl"
    assert len(load(options).test) == SIZES["test"]
    monkeypatch.delenv("FUSEBENCH_DATA")
    with pytest.raises(FileNotFoundError, match=r"set `data.root=.*FUSEBENCH_DATA/mosei/mosei_senti_data.pkl"):
        load(MOSEIOptions())


def _wrong(kind: str, data: dict[str, Any]) -> None:
    train = data["train"]
    if kind == "missing_key":
        del train["audio"]
    elif kind == "missing_split":
        del data["valid"]
    elif kind == "ragged_counts":
        train["audio"] = train["audio"][:-1]
    elif kind == "ragged_steps":
        train["vision"] = [row[: 10 + i] for i, row in enumerate(train["vision"])]
    elif kind == "wrong_dims":
        train["audio"] = train["audio"][:, :, 0]
    elif kind == "split_dims":
        data["test"]["text"] = data["test"]["text"][:, :, :200]
    elif kind == "label_range":
        train["labels"][2] = 3.4
    elif kind == "label_nan":
        train["labels"][0] = np.nan
    elif kind == "label_shape":
        train["labels"] = np.zeros((len(train["labels"]), 2))
    elif kind == "not_numeric":
        train["text"] = np.array([["w"] * 3] * len(train["text"]))


WRONG = {
    "missing_key": r"hold \['audio', 'text', 'vision', 'labels'\]; missing \['audio'\]",
    "missing_split": r"hold the splits `train`, `valid` and `test`; missing \['valid'\]",
    "ragged_counts": r"same number of samples in every key, got \{'audio': 23, 'text': 24, 'vision': 24, "
    r"'labels': 24\}",
    "ragged_steps": r"\[`train`\]\[`vision`\] to be an array of shape \[N, T, F\], got ragged",
    "wrong_dims": r"\[`train`\]\[`audio`\] to be a numeric array of shape \[N, T, F\], got float64 of shape \(24, 50\)",
    "split_dims": r"same per-sample shape of `text` in every split, got \{'train': \(50, 300\), 'valid': \(50, 300\), "
    r"'test': \(50, 200\)\}",
    "label_range": r"\[`labels`\] to be finite sentiment scores in \[-3, 3\], got 1 outside it \(first: sample 2, "
    r"value 3.4",
    "label_nan": r"finite sentiment scores in \[-3, 3\], got 1 outside it \(first: sample 0, value nan",
    "label_shape": r"one sentiment score per sample \(\[N\], \[N, 1\] or \[N, 1, 1\]\), got shape \(24, 2\)",
    "not_numeric": r"\[`text`\] to be a numeric array of shape \[N, T, F\], got <U1",
}


@pytest.mark.parametrize("kind", sorted(WRONG))
def test_a_wrong_layout_gives_one_clear_error_naming_file_and_key(tmp_path: Path, kind: str) -> None:
    data = strip_private(make_multibench())
    _wrong(kind, data)
    path = write_pickle(tmp_path / "mosi_raw.pkl", data)
    with pytest.raises(ValueError, match=WRONG[kind]) as error:
        _load(tmp_path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_unknown_layout_and_non_dict_files_are_clear_errors(tmp_path: Path) -> None:
    data = strip_private(make_multibench())
    data["train"]["sentiment"] = data["train"].pop("labels")
    write_pickle(tmp_path / "mosi_raw.pkl", data)
    with pytest.raises(ValueError, match=r"Cannot tell the layout .* `labels` \(MultiBench\) or `regression_labels`"):
        _load(tmp_path)
    write_pickle(tmp_path / "mosi_raw.pkl", [1, 2, 3])
    with pytest.raises(ValueError, match="to hold a dict with `train`, `valid` and `test`, got list"):
        _load(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"feature pickle at `.*elsewhere.pkl`.*found nothing there"):
        _load(tmp_path, file="elsewhere.pkl")


def test_a_mosi_pickle_carrying_an_object_is_refused(tmp_path: Path) -> None:
    data = strip_private(make_multibench(sizes={"train": 4, "valid": 2, "test": 2}))
    data["train"]["id"] = copy.deepcopy(Path("clip.mp4"))  # any class instance, however harmless
    write_pickle(tmp_path / "mosi_raw.pkl", data)
    with pytest.raises(UnsafePickleError, match=r"mosi_raw.pkl`: it references the global `pathlib"):
        _load(tmp_path)
