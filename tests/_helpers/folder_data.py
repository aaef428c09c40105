"""Small dataset folders in exactly the documented layout (docs/datasets/custom.md), with a learnable signal.

Each sample has three hidden factors ``a, b, c ~ N(0, 1)``; the image carries ``a`` (the
contrast of a fixed blob), the sensor vector ``b`` (along a fixed direction), the series
``c`` (the amplitude of a sine), each under noise. Targets depend on factors of several
modalities, so a fused model beats every modality alone and a run learns in 1-2 epochs:

- regression: ``a + b + 0.5 c + noise``, clipped to [-3, 3] (MOSI-like scores);
- multilabel: ``[a > 0, b > 0, c > 0, a + b > 0]`` of noisy factors;
- multiclass: three bins of ``a + b``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml

#: The modalities of the shipped configs/folder/*.yaml and of the docs example.
SHAPES: dict[str, tuple[int, ...]] = {"image": (1, 8, 8), "sensor": (16,), "series": (12, 3)}
KINDS = {"image": "image", "sensor": "vector", "series": "sequence"}
SIZES = {"train": 600, "validation": 150, "test": 200}
REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs" / "folder"


def task_section(kind: str) -> dict[str, Any]:
    return {
        "multiclass": {"kind": "multiclass", "classes": 3, "label_names": ["low", "mid", "high"]},
        "multilabel": {"kind": "multilabel", "labels": 4},
        "regression": {"kind": "regression", "range": [-3.0, 3.0]},
    }[kind]


def dataset_yaml(kind: str, variable: tuple[str, ...] = ()) -> dict[str, Any]:
    modalities = {
        m: {"kind": KINDS[m], "shape": list(s), **({"variable_length": True} if m in variable else {})}
        for m, s in SHAPES.items()
    }
    return {"name": f"synthetic-{kind}", "modalities": modalities, "task": task_section(kind)}


def make_split(kind: str, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Arrays of one split: ``{image, sensor, series, labels}``."""
    factors = rng.normal(size=(n, 3))  # [N, 3]: a, b, c
    a, b, c = factors.T
    grid = np.linspace(-1, 1, SHAPES["image"][-1])
    blob = np.exp(-(grid[:, None] ** 2 + grid[None, :] ** 2) * 2)  # [8, 8]
    direction = np.random.default_rng(1234).normal(size=SHAPES["sensor"])
    direction /= np.linalg.norm(direction)
    steps, features = SHAPES["series"]
    wave = np.sin(np.linspace(0, 2 * np.pi, steps))[:, None] * np.ones(features)  # [T, F]
    arrays = {
        "image": (a[:, None, None, None] * blob + 0.5 * rng.normal(size=(n, *SHAPES["image"]))).astype(np.float32),
        "sensor": (2 * b[:, None] * direction + 0.3 * rng.normal(size=(n, *SHAPES["sensor"]))).astype(np.float32),
        "series": (c[:, None, None] * wave + 0.5 * rng.normal(size=(n, steps, features))).astype(np.float32),
    }
    noisy = factors + 0.3 * rng.normal(size=factors.shape)
    if kind == "regression":
        arrays["labels"] = np.clip(a + b + 0.5 * c + 0.2 * rng.normal(size=n), -3, 3).astype(np.float32)
    elif kind == "multilabel":
        columns = [noisy[:, 0], noisy[:, 1], noisy[:, 2], noisy[:, 0] + noisy[:, 1]]
        arrays["labels"] = (np.stack(columns, axis=1) > 0).astype(np.float32)
    else:
        arrays["labels"] = np.digitize(noisy[:, 0] + noisy[:, 1], [-0.7, 0.7]).astype(np.int64)
    return arrays


def write_folder(
    root: Path, kind: str, sizes: dict[str, int] | None = None, seed: int = 0, variable: tuple[str, ...] = ()
) -> Path:
    """Write ``root/dataset.yaml`` and ``root/<split>/*.npy``; a split left out of ``sizes`` is not written.

    A modality in ``variable`` is a variable-length sequence: each sample keeps a random
    number of its steps, the rest is zero padding, and ``<modality>.lengths.npy`` says how many.
    """
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset.yaml").write_text(yaml.safe_dump(dataset_yaml(kind, variable), sort_keys=False))
    for split, n in (sizes or SIZES).items():
        folder = root / split
        folder.mkdir(exist_ok=True)
        arrays = make_split(kind, n, rng)
        for m in variable:
            steps = SHAPES[m][0]
            lengths = rng.integers(1, steps + 1, size=n)
            arrays[m][np.arange(steps)[None, :] >= lengths[:, None]] = 0.0
            arrays[f"{m}.lengths"] = lengths.astype(np.int64)
        for name, array in arrays.items():
            np.save(folder / f"{name}.npy", array)
    return root


def user_config(folder: Path, name: str, out: Path, runs_dir: Path) -> Path:
    """A shipped configs/folder config with ``data.root`` set: what a user writes to use their folder."""
    raw = yaml.safe_load((CONFIGS / name).read_text())
    raw["data"]["root"] = str(folder)
    raw["experiment"]["runs_dir"] = str(runs_dir)
    out.write_text(yaml.safe_dump(raw, sort_keys=False))
    return out
