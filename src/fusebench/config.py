"""The YAML run schema as pydantic models: load a file, apply dotted overrides, validate.

Validation is strict: an unknown key is an error that names the file, the key and the
closest valid key, because a silently ignored key is how an experiment ends up testing
something other than what its author wrote. The sections with many keys live beside
this module (``config_training``: optimiser, schedule, strategies; the fusion, dataset and
encoder options in their registries); the error explainer is ``config_explain``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from fusebench.config_explain import explain_validation_error
from fusebench.config_training import (
    BlendingEstimateConfig,
    ContrastiveConfig,
    EarlyStoppingConfig,
    OptimizerConfig,
    SchedulerConfig,
    StrategyConfig,
    TrainingConfig,
)
from fusebench.data.avdigits_dataset import AVDigitsOptions
from fusebench.data.options import DataOptions
from fusebench.data.registry import options_union
from fusebench.errors import ConfigError
from fusebench.models.encoder_specs import CNNOptions, EncoderOptions, encoder_options_union, get_encoder
from fusebench.models.fusion_specs import ConcatFusionOptions, FusionOptions, fusion_options_union
from fusebench.models.missing import MissingStrategyName
from fusebench.tasks import LossName, get_metric

__all__ = [
    "BlendingEstimateConfig",
    "ConfigError",
    "ContrastiveConfig",
    "DataConfig",
    "EarlyStoppingConfig",
    "EncoderConfig",
    "ExperimentConfig",
    "FusionConfig",
    "LoggingConfig",
    "MetricsConfig",
    "ModelConfig",
    "MonitoringConfig",
    "OptimizerConfig",
    "PretrainConfig",
    "ProbeConfig",
    "RunConfig",
    "SchedulerConfig",
    "StrategyConfig",
    "TaskConfig",
    "TrainingConfig",
    "apply_overrides",
    "dump_config",
    "explain_validation_error",
    "load_config",
    "parse_override",
    "read_yaml",
    "validate_config",
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ExperimentConfig(Strict):
    name: str = "experiment"
    seed: int = 0
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    runs_dir: str = "runs"
    threads: int | None = Field(default=None, ge=1, description="torch intra-op threads; None keeps torch's default")
    # Scale-out and numerics (engine/scale.py checks the combinations and passes them to Lightning)
    deterministic: bool = Field(default=True, description="deterministic torch algorithms (cost: see README)")
    devices: int = Field(default=1, ge=1, description="processes (CPU) or GPUs per node that train together")
    strategy: Literal["auto", "ddp", "ddp_spawn", "fsdp"] = Field(default="auto", description="multi-device strategy")
    num_nodes: int = Field(default=1, ge=1, description="machines that train together (DDP/FSDP)")
    precision: Literal["32", "16-mixed", "bf16-mixed"] = Field(default="32", description="training precision")
    sync_batchnorm: bool = Field(default=True, description="multi-GPU: batch statistics over all devices")


if TYPE_CHECKING:
    DataConfig = DataOptions
else:  # the discriminated union of every registered dataset's options, keyed by `data.dataset`
    DataConfig = options_union()


if TYPE_CHECKING:
    EncoderConfig = EncoderOptions
else:  # the discriminated union of every registered encoder kind's options, keyed by `kind`
    EncoderConfig = encoder_options_union()


if TYPE_CHECKING:
    FusionConfig = FusionOptions
else:  # the discriminated union of every fusion's options, keyed by `type/method`
    FusionConfig = fusion_options_union()


def _default_encoders() -> dict[str, EncoderOptions]:
    """AV-digits' two modalities, each a small CNN."""
    return {"audio": CNNOptions(), "image": CNNOptions()}


class ModelConfig(Strict):
    encoders: dict[str, EncoderConfig] = Field(default_factory=lambda: _default_encoders())
    fusion: FusionConfig = Field(default_factory=ConcatFusionOptions)
    missing_strategy: MissingStrategyName = Field(default="zero", description="late fusion: absent embeddings")
    pretrained: dict[str, str] = Field(default_factory=dict, description="modality -> encoder .safetensors")
    freeze: dict[str, bool] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_modalities(self) -> ModelConfig:
        for section, names in (("pretrained", self.pretrained), ("freeze", self.freeze)):
            unknown = sorted(set(names) - set(self.encoders))
            if unknown:
                raise ValueError(f"`model.{section}` names {unknown}, which have no encoder in `model.encoders`")
        if self.fusion.type != "late" and self.missing_strategy != "zero":
            raise ValueError(
                f"`model.missing_strategy: {self.missing_strategy}` applies to late fusion only; for fusion "
                f"`{self.fusion.tag}` set `model.fusion.params.missing` instead"
            )
        return self


class PretrainConfig(Strict):
    modality: str
    data_fraction: float = Field(default=1.0, gt=0.0, le=1.0)


class LoggingConfig(Strict):
    progress_bar: bool = True
    logger: Literal["none", "csv", "tensorboard", "mlflow"] = "none"
    log_every_n_steps: int = Field(default=50, ge=1)


def _registered_metric(name: str) -> str:
    get_metric(name)  # raises with the closest registered name
    return name


class MetricsConfig(Strict):
    """Which metrics each pattern gets; ``None`` takes the task's defaults (every metric of its kind).

    Names are checked against the metric registry here and against the dataset's task when
    the run starts (a regression task has no ``accuracy``).
    """

    primary: str | None = Field(default=None, description="checkpoint/report metric; default: the task's")
    names: list[str] | None = Field(default=None, description="default: every registered metric of the task kind")

    @field_validator("primary")
    @classmethod
    def _known_primary(cls, value: str | None) -> str | None:
        return None if value is None else _registered_metric(value)

    @field_validator("names")
    @classmethod
    def _known_names(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [_registered_metric(name) for name in value]


class TaskConfig(Strict):
    """Choices about the dataset's task; its kind and output size come from the dataset."""

    loss: LossName | None = Field(default=None, description="default: cross_entropy / bce / l1 by task kind")
    threshold: float = Field(default=0.5, gt=0.0, lt=1.0, description="multilabel decision threshold")


class MonitoringConfig(Strict):
    enabled: bool = True
    checkpoint_monitor: str = "validation/loss"
    checkpoint_mode: Literal["min", "max"] = "min"


class ProbeConfig(Strict):
    """Linear probes of the finished run's frozen encoders (MMPT section 3.2), written to probe_metrics.json."""

    enabled: bool = Field(default=False, description="probe after testing (studies report the MMPT weakness score)")


class RunConfig(Strict):
    experiment: ExperimentConfig = Field(default_factory=ExperimentConfig)
    data: DataConfig = Field(default_factory=AVDigitsOptions)
    model: ModelConfig = Field(default_factory=ModelConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    pretrain: PretrainConfig | None = None
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    task: TaskConfig = Field(default_factory=TaskConfig)
    probe: ProbeConfig = Field(default_factory=ProbeConfig)
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)

    @model_validator(mode="after")
    def _consistent(self) -> RunConfig:
        modalities = set(self.model.encoders)
        selected = self.data.modalities
        unencoded = sorted(set(selected or ()) - modalities)
        if unencoded:
            raise ValueError(f"`data.modalities` names {unencoded}, which have no encoder in `model.encoders`")
        used = set(selected) if selected is not None else modalities
        unknown = sorted(set(self.data.missing_rate) - used)
        if unknown:
            raise ValueError(
                f"`data.missing_rate` names {unknown}, which are not among the run's modalities {sorted(used)}"
            )
        if self.pretrain is not None and self.pretrain.modality not in used:
            raise ValueError(
                f"`pretrain.modality` is `{self.pretrain.modality}` but the run's modalities are {sorted(used)}"
            )
        if self.pretrain is None:  # general pre-trained encoders stay frozen unless `model.freeze.<m>: false`
            for modality in sorted(used - set(self.model.freeze)):
                if get_encoder(self.model.encoders[modality].kind).frozen_by_default:
                    self.model.freeze[modality] = True
        return self

    def modalities(self) -> tuple[str, ...]:
        """The modalities this run uses, sorted: the pre-trained one, else ``data.modalities``, else every encoder."""
        if self.pretrain is not None:
            return (self.pretrain.modality,)
        return tuple(sorted(self.data.modalities if self.data.modalities is not None else self.model.encoders))


def parse_override(text: str) -> tuple[list[str], Any]:
    """``'training.epochs=5'`` -> ``(['training', 'epochs'], 5)``; the value is read as YAML."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"Override `{text}` is not of the form `dotted.key=value` (e.g. `training.epochs=5`).")
    try:
        return key.strip().split("."), yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as error:  # also tags such as !!python/object, which safe_load refuses
        problem = str((error.problem if isinstance(error, yaml.MarkedYAMLError) else None) or error).strip()
        raise ConfigError(
            f"Override `{text}`: the value `{raw}` is not valid YAML ({problem}); quote strings, "
            "and write mappings and lists whole, e.g. `data.limit={train: 5}`."
        ) from None


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Set each dotted key in a copy of ``raw``; intermediate sections are created as needed."""
    result = copy.deepcopy(dict(raw))  # keeps key order (a study's conditions are ordered)
    for text in overrides:
        path, value = parse_override(text)
        node = result
        for part in path[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[path[-1]] = value
    return result


def validate_config(raw: Mapping[str, Any], source: str = "<dict>") -> RunConfig:
    try:
        return RunConfig.model_validate(dict(raw))
    except ValidationError as error:
        raise explain_validation_error(error, source) from None


def read_yaml(path: str | Path) -> dict[str, Any]:
    file = Path(path)
    if not file.is_file():
        raise ConfigError(
            f"Config file `{file}` does not exist; expected a YAML file such as configs/avdigits/late_fusion.yaml."
        )
    try:
        raw = yaml.safe_load(file.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"Config file `{file}` is not valid YAML: {error}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"Config file `{file}` is not a text file (not UTF-8); expected YAML.") from None
    if raw is None:  # an empty file would silently run every default (a 10-epoch run)
        raise ConfigError(
            f"Config file `{file}` is empty; expected a YAML mapping of sections such as "
            "configs/avdigits/late_fusion.yaml."
        )
    if not isinstance(raw, dict):
        raise ConfigError(f"Config file `{file}` must hold a mapping of sections, got {type(raw).__name__}.")
    return raw


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> RunConfig:
    """Read ``path``, apply ``key=value`` overrides, validate strictly."""
    raw = apply_overrides(read_yaml(path), overrides)
    source = f"`{path}`" + (f" with overrides {list(overrides)}" if overrides else "")
    return validate_config(raw, source)


def dump_config(config: RunConfig) -> str:
    """The fully resolved config as YAML (what actually ran)."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
