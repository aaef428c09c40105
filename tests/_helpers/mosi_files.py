"""Small CMU-MOSI pickles written in exactly the MultiBench and MMSA layouts (real shapes, tiny N).

MultiBench ``mosi_raw.pkl``: ``{train, valid, test}`` of ``vision [N, 50, 35]``, ``audio [N, 50, 74]``,
``text [N, 50, 300]`` zero-padded at the front, ``labels [N, 1, 1]`` and ``id``. MMSA
``aligned_50.pkl`` / ``unaligned_50.pkl``: ``text [N, 50, 768]`` BERT features (non-zero at
padded tokens, as BERT outputs are), ``text_bert [N, 3, 50]``, ``audio`` ``[N, 50|375, 5]``,
``vision`` ``[N, 50|500, 20]`` zero-padded at the back, ``regression_labels [N]``, the
unaligned files' ``audio_lengths`` / ``vision_lengths`` lists, and ``raw_text``, ``id``,
``annotations``, ``classification_labels``.

The text carries the label (``score * direction + noise`` on every real step), so a model can learn.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

SIZES = {"train": 24, "valid": 8, "test": 12}
MULTIBENCH_DIMS = {"vision": 35, "audio": 74, "text": 300}
MMSA_DIMS = {"audio": 5, "vision": 20, "text": 768}
STEPS = 50
MMSA_UNALIGNED_STEPS = {"audio": 375, "vision": 500, "text": 50}


def scores(n: int, rng: np.random.Generator) -> np.ndarray:
    """Sentiment in [-3, 3] at MOSI's granularity, with a few exact zeros."""
    values = np.round(rng.uniform(-3.0, 3.0, size=n) * 5) / 5
    values[:: max(1, n // 4)] = 0.0
    return values


def _filled(
    n: int,
    steps: int,
    dim: int,
    lengths: np.ndarray,
    rng: np.random.Generator,
    front: bool,
    label: np.ndarray | None = None,
) -> np.ndarray:
    x = np.zeros((n, steps, dim))
    direction = np.linspace(-1.0, 1.0, dim)
    for i, length in enumerate(lengths):
        real = rng.normal(0.0, 0.3, size=(length, dim))
        if label is not None:
            real += label[i] * direction
        if front:
            x[i, steps - length :] = real
        else:
            x[i, :length] = real
    return x


def multibench_split(n: int, rng: np.random.Generator) -> dict[str, Any]:
    """One MultiBench split; ``_lengths`` (not part of the layout) records the real lengths written."""
    label = scores(n, rng)
    lengths = rng.integers(3, STEPS + 1, size=n)
    lengths[0] = STEPS
    split = {
        m: _filled(n, STEPS, d, lengths, rng, front=True, label=label if m == "text" else None)
        for m, d in MULTIBENCH_DIMS.items()
    }
    split["labels"] = label.reshape(n, 1, 1)
    split["id"] = np.array([[f"clip{i}"] for i in range(n)])
    split["_lengths"] = lengths
    return split


def mmsa_split(n: int, rng: np.random.Generator, aligned: bool) -> dict[str, Any]:
    """One MMSA split; ``_lengths`` records the real lengths written (before any clamping)."""
    label = scores(n, rng)
    text_len = rng.integers(3, STEPS + 1, size=n)
    text = rng.normal(0.0, 0.3, size=(n, STEPS, MMSA_DIMS["text"]))  # non-zero everywhere, as BERT gives
    text += label[:, None, None] * np.linspace(-1.0, 1.0, MMSA_DIMS["text"])
    bert = np.zeros((n, 3, STEPS), dtype=np.int64)
    for i, length in enumerate(text_len):
        bert[i, 0, :length] = rng.integers(1000, 30000, size=length)
        bert[i, 1, :length] = 1
    split: dict[str, Any] = {
        "raw_text": [f"clip {i} says something" for i in range(n)],
        "id": [f"vid$_${i}" for i in range(n)],
        "text": text.astype(np.float32),
        "text_bert": bert,
        "annotations": ["Neutral"] * n,
        "classification_labels": np.sign(label) + 1,
        "regression_labels": label.astype(np.float32),
    }
    lengths = {"text": text_len}
    for m in ("audio", "vision"):
        steps = STEPS if aligned else MMSA_UNALIGNED_STEPS[m]
        real = text_len.copy() if aligned else rng.integers(3, steps + 1, size=n)
        split[m] = _filled(n, steps, MMSA_DIMS[m], real, rng, front=False).astype(np.float32)
        lengths[m] = real
        if not aligned:
            split[f"{m}_lengths"] = [int(v) for v in real]
    split["_lengths"] = lengths
    return split


def strip_private(data: dict[str, Any]) -> dict[str, Any]:
    """The file's content: every split without the test-only ``_lengths``."""
    return {k: {key: v for key, v in split.items() if not key.startswith("_")} for k, split in data.items()}


def make_multibench(seed: int = 0, sizes: dict[str, int] = SIZES) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    return {name: multibench_split(n, rng) for name, n in sizes.items()}


def make_mmsa(aligned: bool, seed: int = 0, sizes: dict[str, int] = SIZES) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    return {name: mmsa_split(n, rng, aligned) for name, n in sizes.items()}


def write_multibench(
    folder: Path, name: str = "mosi_raw.pkl", seed: int = 0, sizes: dict[str, int] = SIZES
) -> tuple[Path, dict[str, Any]]:
    data = make_multibench(seed, sizes)
    return write_pickle(folder / name, strip_private(data)), data


def write_mmsa(
    folder: Path, aligned: bool, seed: int = 0, sizes: dict[str, int] = SIZES
) -> tuple[Path, dict[str, Any]]:
    data = make_mmsa(aligned, seed, sizes)
    name = "aligned_50.pkl" if aligned else "unaligned_50.pkl"
    return write_pickle(folder / name, strip_private(data)), data


def write_pickle(path: Path, data: Any) -> Path:
    """Any object as a pickle (for wrong-layout cases)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(data, protocol=4))
    return path
