"""Config -> the run's three splits (its modalities only) and their loaders.

The dataset itself comes from the registry (:mod:`fusebench.data.registry`); this module
applies what every dataset shares: the modality subset, ``limit``, ``train_fraction``,
the task settings of the run config, and train-time missingness.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fusebench.config import DataConfig, RunConfig, TaskConfig
from fusebench.data.amputation import FixedUnpairing, MCARAmputer, PatternMixtureAmputer
from fusebench.data.loader import TensorLoader, subset_indices
from fusebench.data.options import SPLITS
from fusebench.data.registry import DatasetInfo, LoadedDataset, ModalityInfo, Split, get_dataset
from fusebench.errors import ConfigError, quoted
from fusebench.tasks import Task

__all__ = [
    "SPLITS",
    "DataSplits",
    "Split",
    "eval_loader",
    "load_dataset",
    "load_splits",
    "recipe_digest",
    "run_task",
    "select_splits",
    "train_loader",
]


@dataclass(frozen=True)
class DataSplits:
    """The splits one run trains and tests on, restricted to its modalities.

    Attributes:
        train, validation, test: whole-tensor splits.
        modalities: sorted modality names.
        task: the dataset's task with the run's loss and threshold choices applied.
        info: the dataset's description (every modality, not only the run's).
    """

    train: Split
    validation: Split
    test: Split
    modalities: tuple[str, ...]
    task: Task
    info: DatasetInfo | None = None

    @property
    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        return {m: tuple(x.shape[1:]) for m, x in self.train.inputs.items()}

    @property
    def dataset_modalities(self) -> tuple[str, ...]:
        """Every modality the dataset has, sorted (the run may use fewer)."""
        return () if self.info is None else tuple(sorted(self.info.modalities))

    @property
    def modality_info(self) -> dict[str, ModalityInfo] | None:
        """The run's modalities' descriptions (variable length or not), for the model build's checks."""
        return None if self.info is None else {m: self.info.modalities[m] for m in self.modalities}

    def split(self, name: str) -> Split:
        return {"train": self.train, "validation": self.validation, "test": self.test}[name]


def load_dataset(config: DataConfig) -> LoadedDataset:
    """The configured dataset with every modality, ``limit`` applied."""
    loaded = get_dataset(config.dataset).load(config)
    if not config.limit:
        return loaded
    import torch

    parts = {}
    for name in SPLITS:
        split = loaded.split(name)
        n = config.limit.get(name)
        parts[name] = split if n is None or n >= len(split) else split.rows(torch.arange(n))
    return LoadedDataset(parts["train"], parts["validation"], parts["test"], loaded.info)


def with_task_settings(task: Task, settings: TaskConfig) -> Task:
    """The dataset's task with the run config's ``task:`` choices (loss, threshold).

    Raises:
        ConfigError: ``task.loss`` is not a loss of the dataset's task kind (``bce`` for a
            multiclass dataset).
    """
    from dataclasses import replace

    try:
        return replace(
            task, loss=settings.loss if settings.loss is not None else task.loss, threshold=settings.threshold
        )
    except ValueError as error:  # Task's own check of its loss against its kind
        raise ConfigError(f"`task.loss`: {error}") from None


def load_splits(
    config: DataConfig,
    modalities: Sequence[str],
    seed: int,
    train_fraction: float = 1.0,
    task_settings: TaskConfig | None = None,
) -> DataSplits:
    """Load the configured dataset restricted to ``modalities``.

    ``train_fraction`` (times ``config.train_fraction``) keeps a seeded subset of the train
    split, for pre-training on less data and for quick runs.

    Raises:
        ConfigError: when ``modalities`` (or ``data.modalities``) names a modality the
            dataset does not have.
    """
    return select_splits(load_dataset(config), config, modalities, seed, train_fraction, task_settings)


def select_splits(
    loaded: LoadedDataset,
    config: DataConfig,
    modalities: Sequence[str],
    seed: int,
    train_fraction: float = 1.0,
    task_settings: TaskConfig | None = None,
) -> DataSplits:
    """:func:`load_splits` of an already loaded dataset (a study checks many runs on one load)."""
    available = sorted(loaded.info.modalities)
    wanted = tuple(sorted(modalities))
    unknown = sorted(set(config.modalities or []) - set(available))
    if unknown:
        raise ConfigError(
            f"`data.modalities` names {quoted(unknown)}, which dataset `{config.dataset}` does not "
            f"have; it has {quoted(available)}."
        )
    unknown = sorted(set(wanted) - set(available))
    if unknown:
        keys = quoted(f"model.encoders.{m}" for m in unknown)
        raise ConfigError(f"{keys}: dataset `{config.dataset}` has no such modality; it has {quoted(available)}.")
    train = loaded.train.only(wanted)
    keep = subset_indices(len(train), config.train_fraction * train_fraction, seed)
    if len(keep) < len(train):
        train = train.rows(keep)
    task = with_task_settings(loaded.info.task, task_settings or TaskConfig())
    return DataSplits(train, loaded.validation.only(wanted), loaded.test.only(wanted), wanted, task, loaded.info)


def run_splits(config: RunConfig, loaded: LoadedDataset | None = None) -> DataSplits:
    """The splits of a run config: its modalities, its pre-training data fraction, its task settings.

    ``loaded`` is the config's dataset if it is already in memory (else it is loaded).
    """
    fraction = config.pretrain.data_fraction if config.pretrain is not None else 1.0
    dataset = loaded if loaded is not None else load_dataset(config.data)
    return select_splits(dataset, config.data, config.modalities(), config.experiment.seed, fraction, config.task)


def run_task(config: RunConfig, task: Task) -> tuple[list[str], str]:
    """The run's metric names and primary metric, defaults from the task, checked against it."""
    names = list(config.metrics.names) if config.metrics.names is not None else task.metric_names
    primary = config.metrics.primary or task.primary_metric
    task.check_metrics(names)
    task.check_metrics([primary], where="`metrics.primary`")
    if primary not in names:
        names = [primary, *names]
    return names, primary


def recipe_digest(config: DataConfig) -> str:
    """Digest of the dataset's content options (recipe defaults included), so a changed default is noticed."""
    return config.digest()


def train_masks(config: DataConfig, modalities: Sequence[str], seed: int) -> MCARAmputer | PatternMixtureAmputer | None:
    """The training split's missingness (``data.missing_rate`` / ``data.missing_patterns``), if any.

    The preflight builds it too, so rates that cannot all hold are refused before a run starts.

    Raises:
        ConfigError: the rates or the mixture cannot be drawn for ``modalities``.
    """
    modalities = sorted(modalities)
    try:
        if config.missing_patterns:
            return PatternMixtureAmputer(modalities, config.missing_patterns, seed)
        if any(r > 0 for r in config.missing_rate.values()):
            return MCARAmputer(modalities, {m: r for m, r in config.missing_rate.items() if m in modalities}, seed)
    except ValueError as error:  # the amputers' own checks: rates that cannot all hold, an empty mixture
        key = "data.missing_patterns" if config.missing_patterns else "data.missing_rate"
        raise ConfigError(f"`{key}`: {error}") from None
    return None


def train_loader(
    split: Split, config: DataConfig, seed: int, shard: tuple[int, int] | None = None, pin_memory: bool = False
) -> TensorLoader:
    """The training batches: shuffled, with train-time missingness; ``shard``/``pin_memory`` as for ``TensorLoader``."""
    modalities = sorted(split.inputs)
    masks = train_masks(config, modalities, seed)
    source = FixedUnpairing(masks) if masks is not None and config.missing_resample == "fixed" else masks
    return TensorLoader(
        split.inputs,
        split.target,
        config.batch_size,
        shuffle=True,
        seed=seed,
        masks=source,
        lengths=split.lengths,
        shard=shard,
        pin_memory=pin_memory,
    )


def eval_loader(
    split: Split, config: DataConfig, shard: tuple[int, int] | None = None, pin_memory: bool = False
) -> TensorLoader:
    """Evaluation batches in row order; under DDP (``shard``) each process gets one block of the rows."""
    return TensorLoader(
        split.inputs,
        split.target,
        config.eval_batch_size,
        shuffle=False,
        lengths=split.lengths,
        shard=shard,
        shard_by="rows",
        pin_memory=pin_memory,
    )
