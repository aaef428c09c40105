"""Everything a run can check before it starts: its data, its metrics, its model and its strategies.

A run config that validates can still fail later: an image patch that does not divide the
image, a contrastive anchor whose width differs from the enhanced modality's, a metric the
task does not have. :func:`preflight` builds exactly what the run would build (the model,
then the strategies, and the training split's missingness) from the data's shapes, so
those mistakes are one :class:`~fusebench.errors.ConfigError` before a run folder exists —
for ``fusebench train`` before it trains, for a study before its first node runs. Nothing
is trained; the data is the dataset's cached arrays, loaded once per distinct ``data:``
section. ``tests/test_config_properties.py`` checks the promise on mutated configs and specs.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from fusebench.config import RunConfig
from fusebench.data.registry import LoadedDataset, ModalityInfo
from fusebench.engine.build import build_model
from fusebench.engine.datasets import DataSplits, load_dataset, run_splits, run_task, train_masks
from fusebench.engine.strategies.blending_auto import check_auto_blending
from fusebench.engine.strategies.build import build_strategies
from fusebench.tasks import Task


@dataclass(frozen=True)
class RunInputs:
    """What building a run's model needs from its data (no arrays).

    Attributes:
        modalities: the run's modalities, sorted.
        input_shapes: modality -> per-sample shape.
        modality_info: modality -> its description (variable length or not).
        task: the dataset's task with the run's ``task:`` settings.
        train_samples: the size of the run's training split.
        dataset_modalities: every modality the dataset has (the run may use fewer).
    """

    modalities: tuple[str, ...]
    input_shapes: dict[str, tuple[int, ...]]
    modality_info: dict[str, ModalityInfo] | None
    task: Task
    train_samples: int
    dataset_modalities: tuple[str, ...] = ()

    @classmethod
    def of(cls, data: DataSplits) -> RunInputs:
        return cls(
            data.modalities, data.input_shapes, data.modality_info, data.task, len(data.train), data.dataset_modalities
        )


def preflight(config: RunConfig, inputs: RunInputs, *, load_files: bool = True) -> nn.Module:
    """Build ``config``'s model and strategies for ``inputs`` and check its metrics; return the model.

    Args:
        config: a validated run config.
        inputs: the facts of its data (:meth:`RunInputs.of` the loaded splits).
        load_files: load ``model.pretrained`` and distillation teacher weights (checked for
            kind and shape); ``False`` for a study, whose pre-trained files do not exist yet.

    Raises:
        ConfigError: anything the run would fail on for its config, named by key.
        CheckpointError: a pre-trained weights file that does not fit (with ``load_files``).
    """
    run_task(config, inputs.task)
    train_masks(config.data, inputs.modalities, config.experiment.seed)
    built = (
        config
        if load_files
        else config.model_copy(update={"model": config.model.model_copy(update={"pretrained": {}})})
    )
    model = build_model(built, inputs.input_shapes, inputs.task.output_size, inputs.modality_info)
    strategies = config
    if config.training.strategy.gradient_blending == "auto":
        weights = check_auto_blending(config, inputs.modalities, inputs.train_samples, model)
        strategy = config.training.strategy.model_copy(update={"gradient_blending": weights})
        strategies = config.model_copy(update={"training": config.training.model_copy(update={"strategy": strategy})})
    build_strategies(
        strategies,
        model,
        inputs.modalities,
        inputs.task,
        load_files=load_files,
        dataset_modalities=inputs.dataset_modalities,
    )
    return model


class DataCache:
    """Each distinct ``data:`` section's dataset, loaded once (a study checks many runs on a few datasets)."""

    def __init__(self) -> None:
        self._loaded: dict[str, LoadedDataset] = {}

    def inputs(self, config: RunConfig) -> RunInputs:
        key = config.data.model_dump_json()
        if key not in self._loaded:
            self._loaded[key] = load_dataset(config.data)
        return RunInputs.of(run_splits(config, self._loaded[key]))
