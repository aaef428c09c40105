"""MM-IMDB (Arevalo et al., 2017) with pre-extracted features: the ``multimodal_imdb.hdf5`` file.

The file that Arevalo's ``gmu-mmimdb`` (``make_dataset.py``) writes and MultiBench
(``datasets/imdb/get_data.py``) reads: one row per movie, in split order, with

- ``features``: ``float32 [N, 300]``, the mean word2vec vector of the plot (text);
- ``vgg_features``: ``float32 [N, 4096]``, VGG-16 features of the poster (image);
- ``genres``: ``int32 [N, 23]``, the multi-hot genre labels; ``genres.attrs["target_names"]``
  (JSON) names the columns.

(The file's other datasets — ``images``, ``sequences``, ``three_grams``, ``word_grams``,
``imdb_ids`` — are not read.) The split is by row index as MultiBench takes it: the
first 15,552 rows train, the next 2,608 validate, the last 7,799 test (25,959 in all);
``data.split_sizes`` sets other sizes for a file with another number of rows.

The task is multilabel over the 23 genres (:data:`GENRES`); MultiBench and the thesis
report F1 micro/macro (and samples/weighted) at threshold 0.5. Nothing is downloaded: a
missing file is an error naming the expected path and layout. h5py reads the file; it
is the optional extra ``pip install 'fusebench[mmimdb]'``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field, model_validator

from fusebench.data.options import SPLITS, DataOptions, SplitName, StrictOptions
from fusebench.data.registry import DatasetEntry, DatasetInfo, LoadedDataset, ModalityInfo, Split, register_dataset
from fusebench.data.sources import DATA_ENV_VAR
from fusebench.errors import DataError
from fusebench.extras import require_modules
from fusebench.tasks import Task

#: The 23 genres of MM-IMDB, most frequent first: the column order of Arevalo's ``genres``
#: (``make_dataset.py`` keeps the 23 most common genres in frequency order).
GENRES: tuple[str, ...] = (
    "Drama",
    "Comedy",
    "Romance",
    "Thriller",
    "Crime",
    "Action",
    "Adventure",
    "Horror",
    "Documentary",
    "Mystery",
    "Sci-Fi",
    "Fantasy",
    "Family",
    "Biography",
    "War",
    "History",
    "Music",
    "Animation",
    "Musical",
    "Western",
    "Sport",
    "Short",
    "Film-Noir",
)
HDF5_FILE = "multimodal_imdb.hdf5"
#: dataset key -> (modality, features per row)
HDF5_FEATURES: dict[str, tuple[str, int]] = {"features": ("text", 300), "vgg_features": ("image", 4096)}
HDF5_LAYOUT = (
    f"`{HDF5_FILE}` with datasets `features` (float [N, 300], word2vec text features), `vgg_features` "
    "(float [N, 4096], VGG poster features) and `genres` (0/1 [N, 23]), rows in split order "
    "(train, validation, test)"
)


def mmimdb_task() -> Task:
    return Task("multilabel", len(GENRES), label_names=GENRES)


def data_folder(root: str | None, key: str, layout: str) -> Path:
    """``root`` if given, else ``$FUSEBENCH_DATA/mmimdb``; an error naming both when neither is set."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get(DATA_ENV_VAR)
    if env:
        return Path(env).expanduser() / "mmimdb"
    raise FileNotFoundError(
        f"MM-IMDB is not on disk here (it is never downloaded): set `{key}=/path/to/folder` or "
        f"`{DATA_ENV_VAR}=/path` (read as `$FUSEBENCH_DATA/mmimdb`), the folder holding {layout}."
    )


class SplitSizes(StrictOptions):
    """Rows per split, taken in this order from the top of the file."""

    train: int = Field(default=15552, ge=1)
    validation: int = Field(default=2608, ge=1)
    test: int = Field(default=7799, ge=1)

    def ranges(self) -> dict[SplitName, tuple[int, int]]:
        start, out = 0, {}
        for name in SPLITS:
            size = getattr(self, name)
            out[name] = (start, start + size)
            start += size
        return out

    @property
    def total(self) -> int:
        return self.train + self.validation + self.test


class MMIMDBOptions(DataOptions):
    """``data:`` for MM-IMDB's pre-extracted features (Arevalo / MultiBench ``multimodal_imdb.hdf5``)."""

    dataset: Literal["mmimdb"] = "mmimdb"
    root: str | None = Field(
        default=None, description=f"folder holding {HDF5_FILE} (or the file); default $FUSEBENCH_DATA/mmimdb"
    )
    split_sizes: SplitSizes = Field(
        default_factory=SplitSizes, description="rows of train/validation/test, in file order (MultiBench's)"
    )

    @model_validator(mode="after")
    def _h5py_installed(self) -> MMIMDBOptions:
        require_modules(["h5py"], "mmimdb", "Reading MM-IMDB's hdf5 file (`data.dataset: mmimdb`)")
        return self

    def content_options(self) -> dict[str, object]:
        content = super().content_options()
        content.pop("root", None)  # where the file lies does not change what it holds
        return content


def hdf5_path(options: MMIMDBOptions) -> Path:
    folder = data_folder(options.root, "data.root", HDF5_LAYOUT)
    path = folder if folder.suffix in (".hdf5", ".h5") else folder / HDF5_FILE
    if not path.is_file():
        raise FileNotFoundError(f"Expected the MM-IMDB file `{path}`, which does not exist; expected {HDF5_LAYOUT}.")
    return path


def _dataset(handle: Any, key: str, path: Path, columns: int, kinds: str, what: str) -> Any:
    """The h5py dataset ``key``, checked: 2-D with ``columns`` columns, dtype kind in ``kinds``."""
    import h5py

    if key not in handle or not isinstance(handle[key], h5py.Dataset):
        found = sorted(handle.keys())
        raise DataError(f"`{path}`: expected a dataset `{key}` ({what}), found datasets {found}.")
    data = handle[key]
    if len(data.shape) != 2 or data.shape[1] != columns:
        raise DataError(f"`{path}` dataset `{key}`: expected shape [N, {columns}] ({what}), got {list(data.shape)}.")
    if data.dtype.kind not in kinds:
        expected = {"f": "floating point", "iubf": "integer, bool or float 0/1"}[kinds]
        raise DataError(f"`{path}` dataset `{key}`: expected {expected} values ({what}), got dtype {data.dtype}.")
    return data


def _genre_order(genres: Any, path: Path) -> np.ndarray:
    """Column index of each of :data:`GENRES` in the file (its ``target_names``, when it has them)."""
    raw = genres.attrs.get("target_names")
    if raw is None:
        return np.arange(len(GENRES))
    try:
        names = json.loads(raw.decode() if isinstance(raw, bytes) else str(raw))
    except json.JSONDecodeError as error:
        raise DataError(f"`{path}` dataset `genres`: attribute `target_names` is not JSON ({error}).") from None
    if not isinstance(names, list) or sorted(map(str, names)) != sorted(GENRES):
        raise DataError(
            f"`{path}` dataset `genres`: expected `target_names` to name the 23 MM-IMDB genres {list(GENRES)}, "
            f"got {names}."
        )
    return np.array([names.index(g) for g in GENRES])


def _rows(data: Any, start: int, stop: int) -> np.ndarray:
    return np.asarray(data[start:stop])


def load(options: MMIMDBOptions) -> LoadedDataset:
    """The three splits: ``text`` float32 [N, 300], ``image`` float32 [N, 4096], genres float32 [N, 23].

    Only the rows a split keeps (``data.limit``) are read.

    Raises:
        FileNotFoundError: when the file is not there.
        ValueError: naming the file, the dataset key, what was expected and what was found.
    """
    import h5py

    path = hdf5_path(options)
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise DataError(f"`{path}` is not a readable HDF5 file ({error}); expected {HDF5_LAYOUT}.") from None
    with handle:
        features = {
            key: _dataset(handle, key, path, dim, "f", f"{m} features") for key, (m, dim) in HDF5_FEATURES.items()
        }
        genres = _dataset(handle, "genres", path, len(GENRES), "iubf", "multi-hot genres")
        counts = {key: int(d.shape[0]) for key, d in (*features.items(), ("genres", genres))}
        if len(set(counts.values())) != 1:
            raise DataError(f"`{path}`: expected the same number of rows in every dataset, got {counts}.")
        if counts["genres"] != options.split_sizes.total:
            sizes = options.split_sizes.model_dump()
            raise DataError(
                f"`{path}` has {counts['genres']} rows, but `data.split_sizes` {sizes} add up to "
                f"{options.split_sizes.total} (MultiBench's split is 15552/2608/7799 of 25959 rows); set "
                "`data.split_sizes` to the file's train/validation/test sizes."
            )
        order = _genre_order(genres, path)
        splits = {}
        for name, (start, stop) in options.split_sizes.ranges().items():
            n = options.limit.get(name)
            stop = stop if n is None else min(stop, start + n)
            inputs = {}
            for key, (modality, _) in HDF5_FEATURES.items():
                values = _rows(features[key], start, stop)
                bad = int(np.count_nonzero(~np.isfinite(values)))
                if bad:
                    raise DataError(
                        f"`{path}` dataset `{key}`: expected finite values, got {bad} NaN or Inf "
                        f"in rows {start}..{stop - 1} ({name})."
                    )
                inputs[modality] = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))
            labels = _rows(genres, start, stop)
            if not np.isin(labels, (0, 1)).all():
                found = np.unique(labels[~np.isin(labels, (0, 1))])[:5].tolist()
                raise DataError(
                    f"`{path}` dataset `genres`: expected values 0 or 1, got {found} "
                    f"in rows {start}..{stop - 1} ({name})."
                )
            target = torch.from_numpy(np.ascontiguousarray(labels[:, order], dtype=np.float32))
            splits[name] = Split(inputs, target)
    return LoadedDataset(splits["train"], splits["validation"], splits["test"], hdf5_info())


def hdf5_info() -> DatasetInfo:
    return DatasetInfo(
        modalities={m: ModalityInfo("vector", (dim,)) for m, dim in sorted(HDF5_FEATURES.values())},
        task=mmimdb_task(),
    )


ENTRY = register_dataset(
    DatasetEntry(
        name="mmimdb",
        options=MMIMDBOptions,
        load=load,
        task=lambda options: mmimdb_task(),
        summary="MM-IMDB movie genres (Arevalo/MultiBench multimodal_imdb.hdf5): word2vec text 300-d + VGG poster "
        "4096-d features; 23-genre multilabel",
    )
)
