"""The YAML run schema as pydantic models: load a file, apply dotted overrides, validate.

Validation is strict: an unknown key is an error that names the file, the key and the
closest valid key, because a silently ignored key is how an experiment ends up testing
something other than what its author wrote.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError, field_validator, model_validator

from fusebench.models.encoders import EncoderKind
from fusebench.models.missing import MissingStrategyName

MetricName = Literal["accuracy", "f1_macro", "f1_micro", "f1_weighted"]


class ConfigError(ValueError):
    """A config file or override that cannot be used, explained in one paragraph."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ExperimentConfig(Strict):
    name: str = "experiment"
    seed: int = 0
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    runs_dir: str = "runs"
    threads: int | None = Field(default=None, ge=1, description="torch intra-op threads; None keeps torch's default")


class DataConfig(Strict):
    dataset: Literal["avdigits"] = "avdigits"
    root: str | None = Field(default=None, description="source data folder; else FUSEBENCH_DATA, ../shared/data, cache")
    cache_dir: str | None = None
    recipe: dict[str, Any] = Field(default_factory=dict, description="dataset recipe parameters")
    modalities: list[str] | None = Field(default=None, description="use only these modalities")
    limit: dict[Literal["train", "validation", "test"], int] = Field(default_factory=dict)
    train_fraction: float = Field(default=1.0, gt=0.0, le=1.0, description="seeded subset of the train split")
    batch_size: int = Field(default=128, ge=1)
    eval_batch_size: int = Field(default=1024, ge=1)
    missing_rate: dict[str, float] = Field(default_factory=dict)
    missing_patterns: dict[str, float] | None = Field(
        default=None, description="train on this mixture of patterns, e.g. {audio+image: 0.5, audio: 0.5}"
    )

    @field_validator("missing_rate")
    @classmethod
    def _rates_are_probabilities(cls, value: dict[str, float]) -> dict[str, float]:
        for modality, rate in value.items():
            if not 0.0 <= rate < 1.0:
                raise ValueError(f"missing_rate for `{modality}` must be in [0, 1), got {rate}")
        return value

    @model_validator(mode="after")
    def _one_missingness_source(self) -> DataConfig:
        if self.missing_patterns and any(r > 0 for r in self.missing_rate.values()):
            raise ValueError("set either `missing_rate` or `missing_patterns`, not both")
        return self


class EncoderConfig(Strict):
    kind: EncoderKind = "cnn"
    out_dim: int = Field(default=64, ge=1)
    widths: list[PositiveInt] = Field(default_factory=lambda: [32, 64], description="cnn channel widths")
    hidden: list[PositiveInt] = Field(default_factory=lambda: [128], description="mlp / gru hidden sizes")


class FusionConfig(Strict):
    type: Literal["late", "early", "mid"] = "late"
    method: str = "concat"
    hidden_dim: int = Field(default=128, ge=1)
    dropout: float = Field(default=0.2, ge=0.0, lt=1.0)
    params: dict[str, Any] = Field(default_factory=dict, description="method-specific arguments")


class ModelConfig(Strict):
    encoders: dict[str, EncoderConfig] = Field(
        default_factory=lambda: {"audio": EncoderConfig(), "image": EncoderConfig()}
    )
    fusion: FusionConfig = Field(default_factory=FusionConfig)
    missing_strategy: MissingStrategyName = "zero"
    pretrained: dict[str, str] = Field(default_factory=dict, description="modality -> encoder .safetensors")
    freeze: dict[str, bool] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_modalities(self) -> ModelConfig:
        for section in ("pretrained", "freeze"):
            unknown = sorted(set(getattr(self, section)) - set(self.encoders))
            if unknown:
                raise ValueError(f"`model.{section}` names {unknown}, which have no encoder in `model.encoders`")
        return self


class OptimizerConfig(Strict):
    name: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = Field(default=1e-3, gt=0)
    encoder_lr: float | None = Field(default=None, gt=0, description="learning rate of the encoders")
    weight_decay: float = Field(default=0.0, ge=0)
    momentum: float = Field(default=0.9, ge=0)


class SchedulerConfig(Strict):
    name: Literal["none", "cosine", "step", "plateau"] = "none"
    step_size: int = Field(default=10, ge=1)
    gamma: float = Field(default=0.1, gt=0)
    patience: int = Field(default=2, ge=0)


class EarlyStoppingConfig(Strict):
    enabled: bool = False
    monitor: str = "validation/loss"
    patience: int = Field(default=3, ge=1)
    mode: Literal["min", "max"] = "min"


class StrategyConfig(Strict):
    """Training strategies (``fusebench.engine.strategies``); all off by default, and they combine.

    Modality names and pattern keys are checked against the model's modalities when the
    strategies are built; here each value is checked on its own.
    """

    modality_dropout: float = Field(
        default=0.0, ge=0.0, lt=1.0, description="per-sample probability to drop one present modality"
    )
    aux_heads: dict[str, float] = Field(
        default_factory=dict, description="modality -> weight of a linear unimodal head's cross-entropy"
    )
    distill: dict[str, float] = Field(
        default_factory=dict, description="modality -> weight of the squared L2 to a frozen teacher"
    )
    distill_teachers: dict[str, str] = Field(
        default_factory=dict, description="modality -> teacher .safetensors (default: model.pretrained)"
    )
    ogm_ge: bool = Field(default=False, description="gradient modulation OGM-GE (Peng et al., CVPR 2022)")
    ogm_alpha: float = Field(default=0.5, ge=0.0, description="OGM modulation strength alpha")
    ogm_noise: bool = Field(default=True, description="the GE part, Gaussian gradient noise; false = OGM")
    gradient_blending: dict[str, float] = Field(
        default_factory=dict,
        description="pattern -> loss weight: the full pattern (audio+image) for the fused head, a "
        "modality for its unimodal head (Wang et al., CVPR 2020)",
    )
    contrastive: dict[str, Any] = Field(
        default_factory=dict,
        description="{anchor, other, kind: hard_negative|infonce, weight, temperature, k, eps, "
        "symmetric, dim}",
    )

    @field_validator("aux_heads", "distill", "gradient_blending")
    @classmethod
    def _weights_are_nonnegative(cls, value: dict[str, float], info: Any) -> dict[str, float]:
        for key, weight in value.items():
            if not 0.0 <= weight < float("inf"):
                raise ValueError(
                    f"`training.strategy.{info.field_name}.{key}` must be a finite weight >= 0, "
                    f"got {weight}"
                )
        return value

    @field_validator("contrastive")
    @classmethod
    def _contrastive_settings(cls, value: dict[str, Any]) -> dict[str, Any]:
        """Check the settings and fill the defaults, so the resolved config says what ran."""
        if not value:
            return value
        where = "`training.strategy.contrastive"
        kind = value.get("kind", "hard_negative")
        loss_keys = {"hard_negative": ["k", "eps"], "infonce": []}
        if kind not in loss_keys:
            raise ValueError(f"{where}.kind` must be one of {list(loss_keys)}, got {kind!r}")
        allowed = ["anchor", "other", "kind", "weight", "temperature", "symmetric", "dim"]
        allowed += loss_keys[kind]
        unknown = sorted(set(value) - set(allowed))
        if unknown:
            raise ValueError(f"{where}` ({kind}) takes keys {allowed}, got unknown {unknown}")
        resolved = {"anchor": value.get("anchor"), "other": value.get("other"), "kind": kind,
                    "weight": value.get("weight", 0.1), "temperature": value.get("temperature", 0.1),
                    "symmetric": value.get("symmetric", True), "dim": value.get("dim")}
        if kind == "hard_negative":
            resolved |= {"k": value.get("k", 5), "eps": value.get("eps", 1e-8)}

        def number(x: Any) -> bool:
            return isinstance(x, (int, float)) and not isinstance(x, bool)

        def count(x: Any) -> bool:
            return isinstance(x, int) and not isinstance(x, bool) and x >= 1

        checks = {
            "anchor": (isinstance(resolved["anchor"], str), "a modality name"),
            "other": (isinstance(resolved["other"], str), "a modality name"),
            "weight": (number(resolved["weight"]) and resolved["weight"] >= 0, "a number >= 0"),
            "temperature": (number(resolved["temperature"]) and resolved["temperature"] > 0,
                            "a number > 0"),
            "symmetric": (isinstance(resolved["symmetric"], bool), "true or false"),
            "dim": (resolved["dim"] is None or count(resolved["dim"]), "an int >= 1 or null"),
            "k": (count(resolved.get("k", 1)), "an int >= 1"),
            "eps": (number(resolved.get("eps", 0.0)) and resolved.get("eps", 0.0) >= 0, "a number >= 0"),
        }
        for key, (ok, expected) in checks.items():
            if not ok:
                raise ValueError(f"{where}.{key}` must be {expected}, got {resolved.get(key)!r}")
        if resolved["anchor"] == resolved["other"]:
            raise ValueError(f"{where}` needs two different modalities, got `{resolved['anchor']}` twice")
        return resolved

    @model_validator(mode="after")
    def _teachers_have_weights(self) -> StrategyConfig:
        extra = sorted(set(self.distill_teachers) - set(self.distill))
        if extra:
            raise ValueError(
                f"`training.strategy.distill_teachers` names {extra}, which have no weight in "
                f"`training.strategy.distill` (has {sorted(self.distill)})"
            )
        return self


class TrainingConfig(Strict):
    epochs: int = Field(default=10, ge=1)
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    early_stopping: EarlyStoppingConfig = Field(default_factory=EarlyStoppingConfig)
    gradient_clip: float | None = Field(default=None, gt=0)
    cache_frozen_features: bool = Field(
        default=True, description="when every encoder is frozen, encode each split once and train only the fusion"
    )
    strategy: StrategyConfig = Field(default_factory=StrategyConfig)


class PretrainConfig(Strict):
    modality: str
    data_fraction: float = Field(default=1.0, gt=0.0, le=1.0)


class LoggingConfig(Strict):
    progress_bar: bool = True
    logger: Literal["none", "csv", "tensorboard", "mlflow"] = "none"
    log_every_n_steps: int = Field(default=50, ge=1)


class MetricsConfig(Strict):
    primary: MetricName = "accuracy"
    names: list[MetricName] = Field(default_factory=lambda: ["accuracy", "f1_macro", "f1_micro", "f1_weighted"])


class MonitoringConfig(Strict):
    enabled: bool = True
    checkpoint_monitor: str = "validation/loss"
    checkpoint_mode: Literal["min", "max"] = "min"


class RunConfig(Strict):
    experiment: ExperimentConfig = Field(default_factory=ExperimentConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    pretrain: PretrainConfig | None = None
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)

    @model_validator(mode="after")
    def _consistent(self) -> RunConfig:
        modalities = set(self.model.encoders)
        unknown = sorted(set(self.data.missing_rate) - modalities)
        if unknown:
            raise ValueError(f"`data.missing_rate` names {unknown}, which have no encoder in `model.encoders`")
        if self.pretrain is not None and self.pretrain.modality not in modalities:
            raise ValueError(
                f"`pretrain.modality` is `{self.pretrain.modality}` but `model.encoders` has {sorted(modalities)}"
            )
        return self


def parse_override(text: str) -> tuple[list[str], Any]:
    """``'training.epochs=5'`` -> ``(['training', 'epochs'], 5)``; the value is read as YAML."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"Override `{text}` is not of the form `dotted.key=value` (e.g. `training.epochs=5`).")
    try:
        return key.strip().split("."), yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as error:  # also tags such as !!python/object, which safe_load refuses
        problem = str(getattr(error, "problem", None) or error).strip()
        raise ConfigError(f"Override `{text}`: the value `{raw}` is not valid YAML ({problem}); quote strings, "
                          "and write mappings and lists whole, e.g. `data.limit={train: 5}`.") from None


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Set each dotted key in a copy of ``raw``; intermediate sections are created as needed."""
    result = yaml.safe_load(yaml.safe_dump(raw)) or {}
    for text in overrides:
        path, value = parse_override(text)
        node = result
        for part in path[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[path[-1]] = value
    return result


def _fields_at(location: Sequence[str | int], root: type[BaseModel]) -> list[str]:
    """The valid keys of the section at ``location`` under ``root`` (for did-you-mean hints)."""
    node: Any = root
    for part in location:
        if isinstance(node, type) and issubclass(node, BaseModel):
            field = node.model_fields.get(str(part))
            if field is None:
                return []
            node = _section_type(field.annotation)
        elif getattr(node, "__origin__", None) is dict:  # `part` is a key such as a modality name
            node = _section_type(node.__args__[1])
        else:
            return []
    if getattr(node, "__origin__", None) is dict:
        return []
    return list(node.model_fields) if isinstance(node, type) and issubclass(node, BaseModel) else []


def _section_type(annotation: Any) -> Any:
    """Unwrap ``X | None`` to ``X``: the model or ``dict[...]`` a key path can descend into."""
    for candidate in (annotation, *getattr(annotation, "__args__", ())):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
        if getattr(candidate, "__origin__", None) is dict:
            return candidate
    return None


def explain_validation_error(error: ValidationError, source: str, root: type[BaseModel] | None = None,
                             kind: str = "config") -> ConfigError:
    """Turn pydantic's report into one paragraph naming the source, the keys and the fix.

    ``root`` is the model that was validated (a run config by default, a study spec too), so
    an unknown key is answered with the closest valid key of its own section.
    """
    problems = []
    for item in error.errors():
        loc = [p for p in item["loc"] if isinstance(p, str)]
        dotted = ".".join(str(p) for p in item["loc"]) or "(top level)"
        if item["type"] == "extra_forbidden":
            valid = _fields_at(loc[:-1], root or RunConfig)
            close = difflib.get_close_matches(loc[-1], valid, n=1, cutoff=0.5)
            hint = f"did you mean `{'.'.join([*loc[:-1], close[0]])}`?" if close else f"valid keys: {valid}"
            problems.append(f"unknown key `{dotted}` ({hint})")
        else:
            got = item.get("input")
            problems.append(f"`{dotted}`: {item['msg']} (got {got!r})")
    return ConfigError(f"Invalid {kind} {source}: " + "; ".join(problems) + ".")


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
        raise ConfigError(f"Config file `{file}` is empty; expected a YAML mapping of sections such as "
                          "configs/avdigits/late_fusion.yaml.")
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
