"""Small AV-MNIST folders in exactly MultiBench's layout, written by the tests themselves."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

FILES = (
    "image/train_data.npy",
    "image/test_data.npy",
    "audio/train_data.npy",
    "audio/test_data.npy",
    "train_labels.npy",
    "test_labels.npy",
)


def write_avmnist(
    root: Path,
    n_train: int = 24,
    n_test: int = 10,
    *,
    dtype: Literal["uint8", "float32"] = "uint8",
    image_shape: Literal["flat", "square"] = "flat",
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Random 0-255 images (N x 784 or N x 28 x 28), 112 x 112 spectrograms and digit labels.

    Returns the arrays written, keyed by their path relative to ``root``.
    """
    rng = np.random.default_rng(seed)
    arrays: dict[str, np.ndarray] = {}
    for split, n in (("train", n_train), ("test", n_test)):
        image = rng.integers(0, 256, size=(n, 784) if image_shape == "flat" else (n, 28, 28))
        audio = rng.integers(0, 256, size=(n, 112, 112))
        if dtype == "float32":  # MultiBench's own files are float32 on 0-255, not only whole numbers
            image = image.astype(np.float32) * np.float32(0.999)
            audio = audio.astype(np.float32) * np.float32(0.999)
        arrays[f"image/{split}_data.npy"] = image.astype(dtype)
        arrays[f"audio/{split}_data.npy"] = audio.astype(dtype)
        arrays[f"{split}_labels.npy"] = rng.integers(0, 10, size=n).astype(np.int64)
    for name, array in arrays.items():
        save(root / name, array)
    return arrays


def save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, array)
