"""MM-IMDB from the raw Arevalo folder: poster images and plot texts, for end-to-end models.

Layout (``mmimdb.tar.gz`` of Arevalo et al., 2017, as MMF's ``format_mmimdb_dataset`` reads it)::

    <root>/split.json          {"train": [ids], "dev": [ids], "test": [ids]}
    <root>/dataset/<id>.json   {"plot": ["...", ...], "genres": ["Drama", ...], ...}
    <root>/dataset/<id>.jpeg   the poster

``dev`` is the validation split. Of a movie's plot summaries the longest is used (the
rule of Arevalo's ``make_dataset.py``); genres outside the 23 of :data:`~fusebench.data.mmimdb.GENRES`
are ignored. Modalities:

- ``image``: ``uint8 [3, H, W]`` posters, scaled to cover ``data.image_size`` and
  centre-cropped (:func:`fusebench.data.images.read_image`);
- ``text`` (variable length, with ``lengths``), by ``data.text``:
  ``tokens`` — ``int64`` word ids of :func:`fusebench.data.text.tokenize`, from a
  :class:`~fusebench.data.text.Vocabulary` of the training split's words (at most
  ``data.vocab_size`` ids including ``<pad>`` = 0 and ``<unk>`` = 1, words seen at least
  ``data.min_count`` times), truncated to ``data.max_tokens``; ``utf8`` — the plot
  string itself as ``uint8`` bytes (at most ``data.max_bytes``), for the pre-trained
  ``sentence`` encoder, which tokenizes it its own way.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field, PositiveInt, model_validator

from fusebench.data.images import read_image
from fusebench.data.mmimdb import GENRES, data_folder, mmimdb_task
from fusebench.data.options import SPLITS, DataOptions, SplitName
from fusebench.data.registry import DatasetEntry, DatasetInfo, LoadedDataset, ModalityInfo, Split, register_dataset
from fusebench.data.text import Vocabulary, pad_sequences, tokenize, utf8_bytes
from fusebench.errors import DataError
from fusebench.extras import require_modules

SPLIT_FILE = "split.json"
#: split.json key -> fusebench split
SPLIT_KEYS: dict[str, SplitName] = {"train": "train", "dev": "validation", "test": "test"}
RAW_LAYOUT = (
    '`split.json` ({"train": [ids], "dev": [ids], "test": [ids]}) and a folder `dataset/` with '
    '`<id>.json` ({"plot": [texts], "genres": [names]}) and `<id>.jpeg` for every id'
)


class MMIMDBRawOptions(DataOptions):
    """``data:`` for the raw MM-IMDB folder (posters + plots)."""

    dataset: Literal["mmimdb_raw"] = "mmimdb_raw"
    root: str | None = Field(default=None, description="the folder holding split.json; default $FUSEBENCH_DATA/mmimdb")
    image_size: tuple[PositiveInt, PositiveInt] = Field(default=(224, 224), description="posters' (height, width)")
    text: Literal["tokens", "utf8"] = Field(
        default="tokens", description="word ids (learned embeddings) or UTF-8 bytes (the `sentence` encoder)"
    )
    vocab_size: int = Field(default=20000, ge=3, description="most ids of the vocabulary, <pad> and <unk> included")
    min_count: PositiveInt = Field(default=2, description="training-split occurrences a word needs to get an id")
    max_tokens: PositiveInt = Field(default=512, description="words kept of each plot (text: tokens)")
    max_bytes: int = Field(default=4096, ge=16, description="bytes kept of each plot (text: utf8)")

    @model_validator(mode="after")
    def _pillow_installed(self) -> MMIMDBRawOptions:
        require_modules(["PIL"], "mmimdb", "Reading MM-IMDB's posters (`data.dataset: mmimdb_raw`)")
        return self

    def content_options(self) -> dict[str, object]:
        content = super().content_options()
        content.pop("root", None)
        unused = ("max_bytes",) if self.text == "tokens" else ("vocab_size", "min_count", "max_tokens")
        return {k: v for k, v in content.items() if k not in unused}


def read_split_ids(folder: Path) -> dict[SplitName, list[str]]:
    """``split.json`` as fusebench split -> movie ids, checked."""
    path = folder / SPLIT_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"Expected the MM-IMDB split file `{path}`, which does not exist; expected `{folder}` to hold {RAW_LAYOUT}."
        )
    try:
        raw = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataError(f"`{path}` is not valid JSON ({error}); expected {RAW_LAYOUT}.") from None
    if not isinstance(raw, dict) or sorted(raw) != sorted(SPLIT_KEYS):
        found = sorted(raw) if isinstance(raw, dict) else type(raw).__name__
        raise DataError(f"`{path}`: expected an object with keys {sorted(SPLIT_KEYS)}, got {found}.")
    ids: dict[SplitName, list[str]] = {}
    for key, split in SPLIT_KEYS.items():
        values = raw[key]
        if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
            raise DataError(
                f"`{path}` key `{key}`: expected a non-empty list of movie ids (strings), got {str(values)[:80]}."
            )
        ids[split] = values
    seen: dict[str, str] = {}
    for split, values in ids.items():
        for movie in values:
            if movie in seen:
                raise DataError(f"`{path}`: movie id `{movie}` is listed in both `{seen[movie]}` and `{split}`.")
            seen[movie] = split
    return ids


def read_movie(folder: Path, movie: str) -> tuple[str, np.ndarray]:
    """The longest plot and the 23-genre multi-hot row of ``dataset/<movie>.json``."""
    path = folder / "dataset" / f"{movie}.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"Expected the MM-IMDB movie file `{path}` (listed in split.json), which does not "
            f"exist; expected {RAW_LAYOUT}."
        )
    try:
        record = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataError(f"`{path}` is not valid JSON ({error}).") from None
    plots = record.get("plot") if isinstance(record, dict) else None
    if isinstance(plots, str):
        plots = [plots]
    if not isinstance(plots, list) or not plots or not all(isinstance(p, str) for p in plots):
        raise DataError(f"`{path}`: expected key `plot` with a non-empty list of strings, got {str(plots)[:80]}.")
    genres = record.get("genres")
    if not isinstance(genres, list) or not all(isinstance(g, str) for g in genres):
        raise DataError(f"`{path}`: expected key `genres` with a list of genre names, got {str(genres)[:80]}.")
    plot = max(plots, key=len)
    if not plot.strip():
        raise DataError(f"`{path}`: expected a plot with some text, got only empty strings.")
    return plot, np.isin(np.array(GENRES), genres).astype(np.float32)


def _read_split(folder: Path, ids: list[str], size: tuple[int, int]) -> tuple[list[str], Any, Any]:
    plots, labels, images = [], [], []
    for movie in ids:
        plot, row = read_movie(folder, movie)
        plots.append(plot)
        labels.append(row)
        images.append(read_image(folder / "dataset" / f"{movie}.jpeg", size))
    return plots, torch.from_numpy(np.stack(labels)), torch.from_numpy(np.stack(images))


def encode_texts(
    plots: dict[SplitName, list[str]], options: MMIMDBRawOptions, ids: dict[SplitName, list[str]]
) -> dict[SplitName, tuple[Any, Any]]:
    """Split -> (padded ``[N, T]`` text tensor, lengths), ``T`` the same for every split."""
    if options.text == "utf8":
        rows = {s: [list(utf8_bytes(p, options.max_bytes)) for p in plots[s]] for s in SPLITS}
        dtype, cap = torch.uint8, options.max_bytes
    else:
        words = {s: [tokenize(p) for p in plots[s]] for s in SPLITS}
        vocabulary = Vocabulary.build(words["train"], options.vocab_size, options.min_count)
        rows = {s: [vocabulary.encode(w) for w in words[s]] for s in SPLITS}
        dtype, cap = torch.long, options.max_tokens
    steps = min(cap, max(len(r) for s in SPLITS for r in rows[s]))
    out = {}
    for split in SPLITS:
        try:
            out[split] = pad_sequences(rows[split], steps, dtype)
        except ValueError:
            movie = ids[split][next(i for i, r in enumerate(rows[split]) if not r)]
            raise DataError(
                f"`dataset/{movie}.json`: expected a plot with at least one word, got none "
                f"(`data.text: {options.text}`)."
            ) from None
    return out


def load(options: MMIMDBRawOptions) -> LoadedDataset:
    """Read posters and plots of every split (the first ``data.limit`` ids of a split only).

    Raises:
        FileNotFoundError: when the folder, split.json or a listed movie's file is missing.
        ValueError: naming the file and what was expected when one is malformed.
    """
    folder = data_folder(options.root, "data.root", RAW_LAYOUT)
    ids = read_split_ids(folder)
    plots, targets, images = {}, {}, {}
    for split in SPLITS:
        ids[split] = ids[split][: options.limit.get(split)]
        if not ids[split]:
            raise DataError(f"`data.limit.{split}` is 0: expected at least one {split} sample to read.")
        plots[split], targets[split], images[split] = _read_split(folder, ids[split], options.image_size)
    texts = encode_texts(plots, options, ids)
    splits = {
        s: Split({"image": images[s], "text": texts[s][0]}, targets[s], lengths={"text": texts[s][1]}) for s in SPLITS
    }
    steps = int(texts["train"][0].shape[1])
    return LoadedDataset(splits["train"], splits["validation"], splits["test"], raw_info(options, steps))


def raw_info(options: MMIMDBRawOptions, steps: int) -> DatasetInfo:
    height, width = options.image_size
    return DatasetInfo(
        modalities={
            "image": ModalityInfo("image", (3, height, width)),
            "text": ModalityInfo("text", (steps,), variable_length=True),
        },
        task=mmimdb_task(),
    )


ENTRY = register_dataset(
    DatasetEntry(
        name="mmimdb_raw",
        options=MMIMDBRawOptions,
        load=load,
        task=lambda options: mmimdb_task(),
        summary="MM-IMDB raw folder (Arevalo): poster images + plot texts (word ids or UTF-8 for the sentence "
        "encoder); 23-genre multilabel",
    )
)
