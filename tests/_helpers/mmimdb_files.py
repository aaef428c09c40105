"""Small MM-IMDB files in exactly the documented layouts, with genre signal in both modalities.

Genres are drawn at MM-IMDB's own rates (Drama about half of the movies, Film-Noir about
1%); each genre shifts the text features strongly and the image features weakly, so a
model learns something real from the text, less from the image, and more from both.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from fusebench.data.mmimdb import GENRES

#: Approximate MM-IMDB genre rates (count / 25,959), in GENRES order.
GENRE_RATES = np.array(
    [
        0.54,
        0.33,
        0.21,
        0.2,
        0.15,
        0.14,
        0.1,
        0.1,
        0.08,
        0.08,
        0.08,
        0.07,
        0.06,
        0.05,
        0.05,
        0.04,
        0.04,
        0.04,
        0.03,
        0.03,
        0.02,
        0.02,
        0.01,
    ]
)
SMALL_SIZES = {"train": 240, "validation": 60, "test": 90}


def draw_genres(n: int, rng: np.random.Generator) -> np.ndarray:
    """``int32 [n, 23]`` multi-hot rows, at least one genre each."""
    labels = (rng.random((n, len(GENRES))) < GENRE_RATES).astype(np.int32)
    empty = labels.sum(axis=1) == 0
    labels[empty, 0] = 1
    return labels


def write_hdf5(path: Path, sizes: dict[str, int] | None = None, seed: int = 0, **overrides: np.ndarray) -> Path:
    """``multimodal_imdb.hdf5`` as Arevalo writes it: ``features``, ``vgg_features``, ``genres`` (+ target_names).

    ``overrides`` replace a dataset's array (wrong-layout tests); a value of ``None`` drops it.
    """
    import h5py

    sizes = sizes or SMALL_SIZES
    n = sum(sizes.values())
    rng = np.random.default_rng(seed)
    genres = draw_genres(n, rng)
    text_dirs, image_dirs = rng.normal(size=(len(GENRES), 300)), rng.normal(size=(len(GENRES), 4096))
    arrays: dict[str, np.ndarray | None] = {
        "features": (genres @ text_dirs * 0.6 + rng.normal(size=(n, 300))).astype(np.float32),
        "vgg_features": np.maximum(genres @ image_dirs * 0.15 + rng.normal(size=(n, 4096)), 0).astype(np.float32),
        "genres": genres,
    }
    arrays.update(overrides)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        for key, values in arrays.items():
            if values is not None:
                f.create_dataset(key, data=values)
        if arrays.get("genres") is not None:
            f["genres"].attrs["target_names"] = json.dumps(list(GENRES))
    return path


#: Words that hint at a genre in the synthetic plots (index = genre).
GENRE_WORDS = [f"{g.lower().replace('-', '')}word" for g in GENRES]
FILLER = "the a man woman city night story life young old finds must into their".split()


def write_raw_folder(
    root: Path, sizes: dict[str, int] | None = None, seed: int = 0, image_hw: tuple[int, int] = (48, 32)
) -> Path:
    """The raw Arevalo folder: ``split.json`` and ``dataset/<id>.json`` + ``dataset/<id>.jpeg``.

    Plots mix filler words with words of the movie's genres and vary in length (some
    with several plot summaries); poster colours lean towards the first genre.
    """
    from PIL import Image

    sizes = sizes or {"train": 40, "validation": 12, "test": 16}
    rng = np.random.default_rng(seed)
    folder = root / "dataset"
    folder.mkdir(parents=True, exist_ok=True)
    split: dict[str, list[str]] = {"train": [], "dev": [], "test": []}
    number = 0
    for name, key in (("train", "train"), ("validation", "dev"), ("test", "test")):
        for _ in range(sizes[name]):
            number += 1
            movie = f"{number:07d}"
            labels = draw_genres(1, rng)[0]
            hints = [GENRE_WORDS[g] for g in np.flatnonzero(labels)]
            words = list(rng.choice(FILLER, size=int(rng.integers(4, 30)))) + hints * 2
            rng.shuffle(words)
            plots = [" ".join(words).capitalize() + ".", "Short outline."][: int(rng.integers(1, 3))]
            names = [GENRES[g] for g in np.flatnonzero(labels)] + ["News"] * (number % 7 == 0)  # News: not of the 23
            record = {"plot": plots, "genres": names, "title": f"Movie {number}"}
            (folder / f"{movie}.json").write_text(json.dumps(record))
            colour = np.array([40 + 8 * int(np.argmax(labels)), 120, 200 - 8 * int(np.argmax(labels))])
            pixels = np.clip(colour + rng.normal(0, 20, size=(*image_hw, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{movie}.jpeg", quality=90)
            split[key].append(movie)
    (root / "split.json").write_text(json.dumps(split))
    return root


def split_sizes_override(sizes: dict[str, int] | None = None) -> str:
    """The ``data.split_sizes=...`` override for a file written with ``sizes``."""
    s = sizes or SMALL_SIZES
    return f"data.split_sizes={{train: {s['train']}, validation: {s['validation']}, test: {s['test']}}}"
