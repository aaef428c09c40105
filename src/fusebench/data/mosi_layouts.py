"""The two on-disk layouts of CMU-MOSI/MOSEI features: MultiBench's and MMSA's pickles.

Both are ``{"train": {...}, "valid": {...}, "test": {...}}``; they differ in the keys of a
split, where the padding is, and whether lengths are stored.

**MultiBench** (``mosi_raw.pkl``, ``mosei_senti_data.pkl``; read by
``pliang279/MultiBench datasets/affect/get_data.py``): ``vision``, ``audio``, ``text``
``[N, T, F]`` (MOSI raw: T = 50, F = 35 / 74 / 300), ``labels`` ``[N, 1, 1]`` sentiment in
[-3, 3], optionally ``id``. Sequences are zero-padded at the *front* (its GloVe step: "padding
with zeros at the front"), and no lengths are stored. Like MultiBench's ``Affectdataset``,
the padding is the leading rows that are entirely zero: with ``alignment="aligned"``
(MultiBench's default ``aligned=True``) the text's leading zero rows are the padding of all
three modalities; with ``"unaligned"`` each modality's own. The real steps are moved to the
front so that, as everywhere in fusebench, the first ``lengths[b]`` steps are real and the
rest is zero padding. Samples whose text is entirely zero are dropped, as MultiBench's
``drop_entry`` does; an unaligned modality with no non-zero row keeps one (zero) step.

**MMSA** (``aligned_50.pkl``, ``unaligned_50.pkl``; read by ``thuiar/MMSA
src/MMSA/data_loader.py``): ``text`` ``[N, T, F]`` features (or ``text_bert`` ``[N, 3, T]``:
BERT input ids, input mask, segment ids), ``audio`` and ``vision`` ``[N, T, F]``
(MOSI unaligned: T = 375 / 500, F = 5 / 20), ``regression_labels`` ``[N]``, and in the
unaligned files ``audio_lengths`` / ``vision_lengths`` ``[N]``; other keys (``raw_text``,
``id``, ``annotations``, ``classification_labels``) are ignored. Padding is at the *back*
(MMSA's feature extraction pads "zeros", "back"). Lengths come from ``<m>_lengths`` when the
file has them, the text's from ``text_bert``'s input mask when present, and otherwise from
the trailing all-zero rows. Stored lengths outside ``1..T`` (a clip longer than the padded
length, or one where no face was found) are clamped into it, and counted.

``lengths="full"`` reads every step as data (fixed-length sequences, as MMSA's aligned
models do) and records no lengths. Lengths are derived before non-finite values are
handled, so a row of NaN is a real (broken) step, never padding.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from fusebench.errors import DataError

LayoutName = Literal["multibench", "mmsa"]
Alignment = Literal["aligned", "unaligned"]
LengthRule = Literal["padding", "full"]
TextField = Literal["text", "text_bert"]
MODALITIES: tuple[str, ...] = ("audio", "text", "vision")
SPLIT_KEYS: dict[str, str] = {"train": "train", "validation": "valid", "test": "test"}
LABEL_KEYS: dict[LayoutName, str] = {"multibench": "labels", "mmsa": "regression_labels"}
SCORE_RANGE = (-3.0, 3.0)


@dataclass
class RawSplit:
    """One split as numpy arrays, padding at the end of each sequence.

    Attributes:
        features: modality -> ``[N, T, F]`` float32 features, or ``[N, T]`` int64 token ids.
        scores: ``[N]`` float32 sentiment scores.
        lengths: modality -> ``[N]`` int64 real steps, or ``None`` (``lengths="full"``).
        notes: what the reader changed (dropped samples, clamped lengths), for the load report.
    """

    features: dict[str, np.ndarray]
    scores: np.ndarray
    lengths: dict[str, np.ndarray] | None
    notes: list[str] = field(default_factory=list)


def detect_layout(data: Any, file: str) -> LayoutName:
    """``mmsa`` if the train split has ``regression_labels``, ``multibench`` if it has ``labels``."""
    split = check_top_level(data, file)["train"]
    found = [name for name, key in LABEL_KEYS.items() if key in split]
    if len(found) != 1:
        raise DataError(
            f"Cannot tell the layout of `{file}`: expected its `train` split to hold `labels` (MultiBench) or "
            f"`regression_labels` (MMSA), got keys {sorted(map(str, split))}. Set `data.format` to "
            "`multibench` or `mmsa` if the file is one of them."
        )
    return found[0]


def check_top_level(data: Any, file: str) -> Mapping[str, Any]:
    """The ``{"train", "valid", "test"}`` dict of dicts, or a one-paragraph error."""
    if not isinstance(data, Mapping):
        raise DataError(
            f"Expected `{file}` to hold a dict with `train`, `valid` and `test`, got {type(data).__name__}."
        )
    missing = [key for key in SPLIT_KEYS.values() if key not in data]
    if missing:
        raise DataError(
            f"Expected `{file}` to hold the splits `train`, `valid` and `test`; missing {missing}, found keys "
            f"{sorted(map(str, data))}."
        )
    for key in SPLIT_KEYS.values():
        if not isinstance(data[key], Mapping):
            raise DataError(f"Expected `{file}`[`{key}`] to be a dict of arrays, got {type(data[key]).__name__}.")
    return data


def read_split(
    split: Mapping[str, Any],
    where: str,
    layout: LayoutName,
    *,
    alignment: Alignment = "aligned",
    lengths: LengthRule = "padding",
    text_field: TextField = "text",
) -> RawSplit:
    """Features, scores and lengths of one split of ``layout`` (``where`` names it in errors)."""
    label_key = LABEL_KEYS[layout]
    text_key = text_field if layout == "mmsa" else "text"
    required = ["audio", text_key, "vision", label_key]
    missing = [key for key in required if key not in split]
    if missing:
        hint = ""
        if layout == "mmsa" and text_key not in split:
            other = "text_bert" if text_key == "text" else "text"
            hint = f" (it has `{other}`: set `data.text_field={other}`)" if other in split else ""
        raise DataError(
            f"Expected {where} ({layout} layout) to hold {required}; missing {missing}{hint}, found keys "
            f"{sorted(map(str, split))}."
        )
    scores = _scores(split[label_key], f"{where}[`{label_key}`]")
    if text_key == "text_bert":
        bert = _numeric(split["text_bert"], f"{where}[`text_bert`]", 3, "[N, 3, T] (ids, mask, segments)")
        if bert.shape[1] != 3:
            raise DataError(f"Expected {where}[`text_bert`] of shape [N, 3, T], got {bert.shape}.")
        text = bert[:, 0, :].astype(np.int64)  # [N, T] token ids
    else:
        text = _numeric(split["text"], f"{where}[`text`]", 3, "[N, T, F]")
    features = {
        "audio": _numeric(split["audio"], f"{where}[`audio`]", 3, "[N, T, F]"),
        "text": text,
        "vision": _numeric(split["vision"], f"{where}[`vision`]", 3, "[N, T, F]"),
    }
    counts = {m: len(x) for m, x in features.items()} | {label_key: len(scores)}
    if len(set(counts.values())) != 1:
        raise DataError(f"Expected {where} to have the same number of samples in every key, got {counts}.")
    if layout == "multibench":
        return _multibench(features, scores, where, alignment, lengths)
    return _mmsa(features, scores, split, where, lengths)


def _numeric(value: Any, where: str, ndim: int, expected: str) -> np.ndarray:
    try:
        array = np.asarray(value)
    except ValueError:  # numpy >= 1.24 refuses ragged nested lists
        raise DataError(f"Expected {where} to be an array of shape {expected}, got ragged sequences.") from None
    if array.dtype == object:
        raise DataError(
            f"Expected {where} to be a numeric array of shape {expected}, got ragged or non-numeric "
            f"values (dtype object, shape {array.shape})."
        )
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool) or array.ndim != ndim:
        raise DataError(
            f"Expected {where} to be a numeric array of shape {expected}, got {array.dtype} of shape {array.shape}."
        )
    if array.shape[0] == 0 or min(array.shape[1:], default=1) == 0:
        raise DataError(f"Expected {where} to hold at least one sample and one step, got shape {array.shape}.")
    return array.astype(np.float32)  # token ids stay exact: float32 holds integers up to 2**24


def _scores(value: Any, where: str) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(
            f"Expected {where} to be one numeric sentiment score per sample, got "
            f"{type(value).__name__} that is not numeric."
        ) from None
    if array.ndim == 0 or int(np.prod(array.shape[1:])) != 1:
        raise DataError(
            f"Expected {where} to be one sentiment score per sample ([N], [N, 1] or [N, 1, 1]), "
            f"got shape {array.shape}."
        )
    scores = array.reshape(len(array))
    bad = ~np.isfinite(scores) | (scores < SCORE_RANGE[0]) | (scores > SCORE_RANGE[1])
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"Expected {where} to be finite sentiment scores in [{SCORE_RANGE[0]:g}, {SCORE_RANGE[1]:g}], got "
            f"{int(bad.sum())} outside it (first: sample {first}, value {float(scores[first])!r})."
        )
    return scores.astype(np.float32)


def _rows_with_data(x: np.ndarray) -> np.ndarray:
    """``[N, T]`` bool: step has a non-zero value (NaN counts as data: ``NaN != 0``)."""
    nonzero = np.not_equal(x, 0)
    return nonzero if x.ndim == 2 else np.asarray(nonzero.any(axis=2))


def _multibench(
    features: dict[str, np.ndarray], scores: np.ndarray, where: str, alignment: Alignment, lengths: LengthRule
) -> RawSplit:
    notes: list[str] = []
    text_rows = _rows_with_data(features["text"])  # [N, T]
    empty = ~text_rows.any(axis=1)
    if empty.any():  # MultiBench's drop_entry: a sample without any text is removed
        keep = ~empty
        features = {m: x[keep] for m, x in features.items()}
        scores, text_rows = scores[keep], text_rows[keep]
        notes.append(f"{where}: dropped {int(empty.sum())} samples whose text is all zeros (MultiBench drop_entry)")
        if not len(scores):
            raise DataError(f"Expected {where} to hold samples with non-zero text, got none.")
    if lengths == "full":
        return RawSplit(features, scores, None, notes)
    found: dict[str, np.ndarray] = {}
    shifted: dict[str, np.ndarray] = {}
    for m, x in features.items():
        rows = text_rows if alignment == "aligned" else _rows_with_data(x)
        has = rows.any(axis=1)
        start = np.where(has, rows.argmax(axis=1), x.shape[1] - 1)  # first real step; all-zero keeps one
        if alignment == "aligned" and x.shape[1] != features["text"].shape[1]:
            raise DataError(
                f"Expected aligned sequences in {where} (MultiBench `aligned`): `{m}` has {x.shape[1]} steps, "
                f"`text` {features['text'].shape[1]}; set `data.multibench_alignment=unaligned`."
            )
        if (~has).any():
            notes.append(f"{where}[`{m}`]: {int((~has).sum())} samples are all zeros; each keeps one zero step")
        found[m] = (x.shape[1] - start).astype(np.int64)
        shifted[m] = _to_front(x, start)
    return RawSplit(shifted, scores, found, notes)


def _to_front(x: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Move steps ``start[b]:`` of each sequence to the front, zeros after (front -> back padding)."""
    steps = np.arange(x.shape[1])[None, :] + start[:, None]  # [N, T]
    inside = steps < x.shape[1]
    index = np.where(inside, steps, 0)
    moved = np.take_along_axis(x, index if x.ndim == 2 else index[:, :, None], axis=1)
    mask = inside if x.ndim == 2 else inside[:, :, None]
    return np.where(mask, moved, np.zeros((), dtype=x.dtype))


def _mmsa(
    features: dict[str, np.ndarray], scores: np.ndarray, split: Mapping[str, Any], where: str, lengths: LengthRule
) -> RawSplit:
    if lengths == "full":
        return RawSplit(features, scores, None, [])
    notes: list[str] = []
    found: dict[str, np.ndarray] = {}
    for m, x in features.items():
        steps = x.shape[1]
        if m != "text" and f"{m}_lengths" in split:
            given = _stored_lengths(split[f"{m}_lengths"], f"{where}[`{m}_lengths`]", len(x))
        elif m == "text" and "text_bert" in split:
            mask = _numeric(split["text_bert"], f"{where}[`text_bert`]", 3, "[N, 3, T] (ids, mask, segments)")
            if mask.shape[0] != len(x) or mask.shape[1] != 3:
                raise DataError(f"Expected {where}[`text_bert`] of shape [{len(x)}, 3, T], got {mask.shape}.")
            given = (mask[:, 1, :] != 0).sum(axis=1).astype(np.int64)
        else:
            rows = _rows_with_data(x)  # back padding: the last row with data ends the sequence
            given = np.where(rows.any(axis=1), steps - rows[:, ::-1].argmax(axis=1), 0).astype(np.int64)
        clamped = np.clip(given, 1, steps)
        changed = int((clamped != given).sum())
        if changed:
            notes.append(f"{where}[`{m}`]: {changed} lengths outside 1..{steps} clamped into it")
        found[m] = clamped
    return RawSplit(features, scores, found, notes)


def _stored_lengths(value: Any, where: str, n: int) -> np.ndarray:
    try:
        array = np.asarray(value)
    except ValueError:
        raise DataError(f"Expected {where} to be [{n}] integer lengths, got ragged values.") from None
    if array.shape != (n,) or not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise DataError(f"Expected {where} to be [{n}] integer lengths, got {array.dtype} of shape {array.shape}.")
    if np.issubdtype(array.dtype, np.floating) and not np.array_equal(array, np.round(array)):
        raise DataError(f"Expected {where} to hold whole numbers of steps, got fractional values.")
    return array.astype(np.int64)
