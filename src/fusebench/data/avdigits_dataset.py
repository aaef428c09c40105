"""AV-digits in the dataset registry: its options (source root, cache, recipe) and its loader."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from fusebench.data.avdigits import load_avdigits
from fusebench.data.avdigits_recipe import MODALITIES, AVDigitsRecipe
from fusebench.data.options import SPLITS, DataOptions
from fusebench.data.registry import DatasetEntry, DatasetInfo, LoadedDataset, ModalityInfo, Split, register_dataset
from fusebench.tasks import Task


class AVDigitsOptions(DataOptions):
    """``data:`` for the embedded default dataset (MNIST + FSDD, see :mod:`fusebench.data.avdigits`)."""

    dataset: Literal["avdigits"] = "avdigits"
    root: str | None = Field(default=None, description="source data folder; else FUSEBENCH_DATA, ../shared/data, cache")
    cache_dir: str | None = Field(default=None, description="parent of the built caches (default ~/.cache/fusebench)")
    recipe: AVDigitsRecipe = Field(default_factory=AVDigitsRecipe, description="how the dataset is built")

    def digest(self) -> str:
        """The recipe's digest: the cache folder name, and what a run's ``data.json`` records."""
        return f"avdigits:{self.recipe.digest()}"


def avdigits_info(recipe: AVDigitsRecipe) -> DatasetInfo:
    return DatasetInfo(
        modalities={
            "audio": ModalityInfo("audio", (1, recipe.n_mels, recipe.frames)),
            "image": ModalityInfo("image", (1, 28, 28)),
        },
        task=Task("multiclass", 10, label_names=tuple(str(d) for d in range(10))),
    )


def load(options: AVDigitsOptions) -> LoadedDataset:
    raw = load_avdigits(
        options.recipe,
        source_root=options.root,
        cache_dir=options.cache_dir,
        limit={str(k): v for k, v in options.limit.items()} or None,
    )
    splits = {name: Split({m: raw[name].inputs[m] for m in MODALITIES}, raw[name].target) for name in SPLITS}
    return LoadedDataset(splits["train"], splits["validation"], splits["test"], avdigits_info(options.recipe))


ENTRY = register_dataset(
    DatasetEntry(
        name="avdigits",
        options=AVDigitsOptions,
        load=load,
        task=lambda options: avdigits_info(options.recipe).task,
        summary="MNIST images + FSDD spoken digits (the embedded default, built from ../shared/data); 10 classes",
    )
)
