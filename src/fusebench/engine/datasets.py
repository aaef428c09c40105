"""Config -> the three splits as in-memory tensors and their loaders."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from fusebench.config import DataConfig
from fusebench.data.amputation import MCARAmputer, PatternMixtureAmputer
from fusebench.data.loader import TensorLoader, select_modalities, subset_indices

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class Split:
    inputs: dict[str, Tensor]
    target: Tensor

    def __len__(self) -> int:
        return len(self.target)


@dataclass(frozen=True)
class DataSplits:
    train: Split
    validation: Split
    test: Split
    modalities: tuple[str, ...]
    num_classes: int

    @property
    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        return {m: tuple(x.shape[1:]) for m, x in self.train.inputs.items()}


def load_splits(
    config: DataConfig, modalities: tuple[str, ...] | list[str], seed: int, train_fraction: float = 1.0
) -> DataSplits:
    """Load the configured dataset restricted to ``modalities``.

    ``train_fraction`` (times ``config.train_fraction``) keeps a seeded subset of the train
    split, for pre-training on less data and for quick runs.
    """
    from fusebench.data.avdigits import AVDigitsRecipe, load_avdigits

    recipe = _recipe(AVDigitsRecipe, config.recipe)
    raw = load_avdigits(recipe, source_root=config.root, cache_dir=config.cache_dir, limit=dict(config.limit) or None)
    splits: dict[str, Split] = {}
    for name in SPLITS:
        part = raw[name]
        inputs = select_modalities(part.inputs, modalities)
        target = part.target
        if name == "train":
            keep = subset_indices(len(target), config.train_fraction * train_fraction, seed)
            inputs, target = {m: x[keep] for m, x in inputs.items()}, target[keep]
        splits[name] = Split(inputs=inputs, target=target)
    return DataSplits(splits["train"], splits["validation"], splits["test"], tuple(sorted(modalities)), num_classes=10)


def recipe_digest(config: DataConfig) -> str:
    """Digest of the dataset as built (recipe defaults included), so a changed default is noticed."""
    from fusebench.data.avdigits import AVDigitsRecipe

    return f"{config.dataset}:{_recipe(AVDigitsRecipe, config.recipe).digest()}"  # type: ignore[attr-defined]


def _recipe(recipe_type: type, values: dict) -> object:
    import dataclasses
    import difflib

    fields = [f.name for f in dataclasses.fields(recipe_type)]
    for key in values:
        if key not in fields:
            close = difflib.get_close_matches(key, fields, n=1, cutoff=0.5)
            hint = f"did you mean `data.recipe.{close[0]}`?" if close else f"valid keys: {fields}"
            raise ValueError(f"Unknown key `data.recipe.{key}` for the avdigits dataset ({hint}).")
    return recipe_type(**values)


def train_loader(split: Split, config: DataConfig, seed: int) -> TensorLoader:
    modalities = sorted(split.inputs)
    masks: MCARAmputer | PatternMixtureAmputer | None = None
    if config.missing_patterns:
        masks = PatternMixtureAmputer(modalities, config.missing_patterns, seed)
    elif any(r > 0 for r in config.missing_rate.values()):
        masks = MCARAmputer(modalities, {m: r for m, r in config.missing_rate.items() if m in modalities}, seed)
    return TensorLoader(split.inputs, split.target, config.batch_size, shuffle=True, seed=seed, masks=masks)


def eval_loader(split: Split, config: DataConfig) -> TensorLoader:
    return TensorLoader(split.inputs, split.target, config.eval_batch_size, shuffle=False)
