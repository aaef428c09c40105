"""AV-MNIST in the MultiBench layout: a reader that checks every file and loads whole tensors.

The layout (MultiBench, ``datasets/avmnist/get_data.py``)::

    <root>/image/train_data.npy   N x 784 or N x 28 x 28   uint8 or float32, 0-255
    <root>/image/test_data.npy
    <root>/audio/train_data.npy   N x 112 x 112 spectrograms, uint8 or float32, 0-255
    <root>/audio/test_data.npy
    <root>/train_labels.npy       N digits 0-9 (integers, or floats holding whole numbers)
    <root>/test_labels.npy

What MultiBench's ``get_dataloader`` does with it, and fusebench does the same by default:
both modalities are divided by 255 (``normalize_image``, ``normalize_audio``), images are
reshaped to 28 x 28 and both get a channel axis (``unsqueeze_channel``), labels are cast to
integers, and validation is the end of the training file — MultiBench trains on rows
``0:55000`` and validates on ``55000:60000``, i.e. the last 1/12 (``validation_fraction``);
it hard-codes 60,000 / 10,000 rows, fusebench takes any N. ``float64`` files are accepted
too (numpy's default dtype).

The root is ``data.root`` or, when that is unset, ``$FUSEBENCH_DATA/avmnist``; nothing is
downloaded. Files are opened as read-only memory maps, so a run with ``data.limit`` reads
only its rows. Loading the full dataset holds it as float32: about 3.2 GB (the audio).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import Field, model_validator

from fusebench.data.npy_files import check_dtype, open_npy, read_labels, read_rows_float32
from fusebench.data.options import DataOptions
from fusebench.data.registry import DatasetEntry, DatasetInfo, LoadedDataset, ModalityInfo, Split, register_dataset
from fusebench.data.sources import DATA_ENV_VAR
from fusebench.errors import DataError
from fusebench.tasks import Task

MODALITIES = ("audio", "image")
CLASSES = 10
IMAGE_SIDE, AUDIO_SIDE = 28, 112
DTYPES = ("uint8", "float32", "float64")
#: MultiBench's validation share: rows 55,000:60,000 of 60,000 training rows.
MULTIBENCH_VALIDATION_FRACTION = 1 / 12
LAYOUT = (
    "image/{train,test}_data.npy (N x 784 or N x 28 x 28), audio/{train,test}_data.npy (N x 112 x 112), "
    "{train,test}_labels.npy (N digits 0-9); uint8 or float32 values on a 0-255 scale (MultiBench's AV-MNIST layout)"
)


def relative_paths(split: str) -> dict[str, str]:
    """File of each part of ``split`` (``train`` or ``test``), relative to the root."""
    return {"image": f"image/{split}_data.npy", "audio": f"audio/{split}_data.npy", "labels": f"{split}_labels.npy"}


class AVMNISTOptions(DataOptions):
    """``data:`` for AV-MNIST in the MultiBench layout (see the module docstring)."""

    dataset: Literal["avmnist"] = "avmnist"
    root: str | None = Field(default=None, description=f"the AV-MNIST folder; default ${DATA_ENV_VAR}/avmnist")
    validation_fraction: float = Field(
        default=MULTIBENCH_VALIDATION_FRACTION,
        gt=0.0,
        lt=1.0,
        description="validation = this share of the training file's last rows (MultiBench: 1/12)",
    )
    validation_size: int | None = Field(
        default=None, ge=1, description="validation = exactly this many last training rows (instead of a fraction)"
    )
    scale: float = Field(default=255.0, gt=0.0, description="the files' full-scale value; inputs are divided by it")
    normalisation: Literal["divide", "standardise"] = Field(
        default="divide", description="divide: x / scale (MultiBench); standardise: then training mean and std"
    )

    @model_validator(mode="after")
    def _one_validation_rule(self) -> AVMNISTOptions:
        if self.validation_size is not None and "validation_fraction" in self.model_fields_set:
            raise ValueError("set either `validation_fraction` or `validation_size`, not both")
        return self

    def validation_rows(self, train_rows: int, where: Path) -> int:
        """How many of the training file's last rows are the validation split."""
        n = self.validation_size if self.validation_size is not None else round(train_rows * self.validation_fraction)
        if not 1 <= n < train_rows:
            rule = (
                f"validation_size={self.validation_size}"
                if self.validation_size is not None
                else f"validation_fraction={self.validation_fraction:g}"
            )
            raise DataError(
                f"`{where}` has {train_rows} rows, so {rule} leaves {n} validation rows; expected at "
                f"least 1 validation row and 1 training row."
            )
        return n


def resolve_root(options: AVMNISTOptions) -> Path:
    """``data.root``, else ``$FUSEBENCH_DATA/avmnist``; an error naming both when neither is set."""
    if options.root is not None:
        return Path(options.root).expanduser()
    env = os.environ.get(DATA_ENV_VAR)
    if env:
        return Path(env).expanduser() / "avmnist"
    raise FileNotFoundError(
        f"AV-MNIST has no folder configured: set `data.root=/path/to/avmnist` or the environment variable "
        f"{DATA_ENV_VAR} (then ${DATA_ENV_VAR}/avmnist is read). Expected layout: {LAYOUT}. fusebench never "
        f"downloads AV-MNIST; `fusebench data export avdigits --format avmnist DIR` writes AV-digits in it."
    )


def _open_all(root: Path) -> dict[str, dict[str, np.ndarray]]:
    paths = {split: {part: root / rel for part, rel in relative_paths(split).items()} for split in ("train", "test")}
    missing = [str(p.relative_to(root)) for files in paths.values() for p in files.values() if not p.is_file()]
    if missing:
        where = f"`{root}` does not exist" if not root.is_dir() else f"`{root}` lacks {', '.join(missing)}"
        raise FileNotFoundError(
            f"AV-MNIST not found: {where}. Expected layout: {LAYOUT}. Set `data.root` (or {DATA_ENV_VAR}) to the "
            f"folder holding it; fusebench never downloads AV-MNIST."
        )
    return {split: {part: open_npy(path) for part, path in files.items()} for split, files in paths.items()}


def _check_layout(root: Path, arrays: dict[str, np.ndarray], split: str) -> int:
    """Shapes and dtypes of one split's three files, and all its labels (replaced by int64); returns N."""
    files = {part: root / rel for part, rel in relative_paths(split).items()}
    image, audio, labels = arrays["image"], arrays["audio"], arrays["labels"]
    for part in ("image", "audio"):
        check_dtype(files[part], arrays[part], DTYPES)
    if not (image.shape[1:] == (IMAGE_SIDE * IMAGE_SIDE,) or image.shape[1:] == (IMAGE_SIDE, IMAGE_SIDE)):
        raise DataError(f"`{files['image']}` has shape {image.shape}; expected N x 784 or N x 28 x 28.")
    if audio.shape[1:] != (AUDIO_SIDE, AUDIO_SIDE):
        raise DataError(f"`{files['audio']}` has shape {audio.shape}; expected N x 112 x 112 spectrograms.")
    if labels.ndim != 1:
        raise DataError(f"`{files['labels']}` has shape {labels.shape}; expected a 1-D array of N digit labels.")
    counts = {name: arrays[name].shape[0] for name in ("image", "audio", "labels")}
    if len(set(counts.values())) != 1:
        found = ", ".join(f"{relative_paths(split)[k]} {n}" for k, n in counts.items())
        raise DataError(
            f"AV-MNIST {split} files in `{root}` disagree on the number of samples ({found}); expected "
            f"the same N in all three."
        )
    if counts["labels"] == 0:
        raise DataError(f"`{files['labels']}` holds no samples; expected N >= 1.")
    arrays["labels"] = read_labels(files["labels"], labels, 0, counts["labels"], classes=CLASSES)  # all, small
    return int(counts["labels"])


def _read(root: Path, arrays: dict[str, np.ndarray], split: str, rows: tuple[int, int], scale: float) -> Split:
    """Rows ``start:stop`` of a split: inputs divided by ``scale`` to float32 ``[n, 1, H, W]``."""
    files = {part: root / rel for part, rel in relative_paths(split).items()}
    inputs = {}
    for part, side in (("audio", AUDIO_SIDE), ("image", IMAGE_SIDE)):
        values = read_rows_float32(files[part], arrays[part], *rows, low=0.0, high=scale)
        if values.size and scale > 1.0 and arrays[part].dtype.kind == "f" and float(values.max()) <= 1.0:
            raise DataError(
                f"`{files[part]}` holds values in [{float(values.min()):g}, {float(values.max()):g}]: it looks "
                f"already divided by {scale:g}, but the layout is on a 0-{scale:g} scale and is divided on load "
                f"(MultiBench does the same); save the undivided values, or set `data.scale=1` if the files really "
                f"are on 0-1."
            )
        values /= np.float32(scale)  # MultiBench: normalize_image / normalize_audio divide by 255
        inputs[part] = torch.from_numpy(values.reshape(len(values), 1, side, side))
    target = torch.from_numpy(np.array(arrays["labels"][rows[0] : rows[1]]))  # checked by _check_layout
    return Split(inputs, target)


def _standardise(splits: dict[str, Split]) -> dict[str, Split]:
    """One mean and std per modality over the training pixels (a fusebench option, not MultiBench's)."""
    out = {name: Split(dict(split.inputs), split.target) for name, split in splits.items()}
    for modality in MODALITIES:
        train = splits["train"].inputs[modality]
        mean, std = float(train.mean(dtype=torch.float64)), float(train.std().clamp(min=1e-6))
        for split in out.values():
            split.inputs[modality] = (split.inputs[modality] - mean) / std
    return out


def avmnist_info() -> DatasetInfo:
    return DatasetInfo(
        modalities={
            "audio": ModalityInfo("audio", (1, AUDIO_SIDE, AUDIO_SIDE)),
            "image": ModalityInfo("image", (1, IMAGE_SIDE, IMAGE_SIDE)),
        },
        task=Task("multiclass", CLASSES, label_names=tuple(str(d) for d in range(CLASSES))),
    )


def load(options: AVMNISTOptions) -> LoadedDataset:
    """Check every file, then read the rows ``data.limit`` asks for (all by default)."""
    root = resolve_root(options)
    arrays = _open_all(root)
    counts = {split: _check_layout(root, arrays[split], split) for split in ("train", "test")}
    n_validation = options.validation_rows(counts["train"], root / relative_paths("train")["labels"])
    n_train = counts["train"] - n_validation
    limit = {name: options.limit.get(name, math.inf) for name in ("train", "validation", "test")}
    rows = {
        "train": ("train", 0, int(min(n_train, limit["train"]))),
        "validation": ("train", n_train, int(n_train + min(n_validation, limit["validation"]))),
        "test": ("test", 0, int(min(counts["test"], limit["test"]))),
    }
    splits = {
        name: _read(root, arrays[file], file, (start, stop), options.scale)
        for name, (file, start, stop) in rows.items()
    }
    if options.normalisation == "standardise":
        splits = _standardise(splits)
    return LoadedDataset(splits["train"], splits["validation"], splits["test"], avmnist_info())


ENTRY = register_dataset(
    DatasetEntry(
        name="avmnist",
        options=AVMNISTOptions,
        load=load,
        task=lambda options: avmnist_info().task,
        summary="AV-MNIST in the MultiBench layout (28x28 images + 112x112 spectrograms, data.root); 10 classes",
    )
)
