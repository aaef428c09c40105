"""The YAML run schema as pydantic models: load a file, apply dotted overrides, validate.

Validation is strict: an unknown key is an error that names the file, the key and the
closest valid key, because a silently ignored key is how an experiment ends up testing
something other than what its author wrote.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import UnionType
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, field_validator, model_validator

from fusebench.data.avdigits_dataset import AVDigitsOptions
from fusebench.data.options import DataOptions
from fusebench.data.registry import broken_entry_points, options_union
from fusebench.errors import ConfigError
from fusebench.models.encoder_specs import CNNOptions, EncoderOptions, encoder_options_union, get_encoder
from fusebench.models.missing import MissingStrategyName
from fusebench.tasks import LossName, get_metric


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


class FusionConfig(Strict):
    type: Literal["late", "early", "mid"] = "late"
    method: str = "concat"
    hidden_dim: int = Field(default=128, ge=1)
    dropout: float = Field(default=0.2, ge=0.0, lt=1.0)
    params: dict[str, Any] = Field(default_factory=dict, description="method-specific arguments")


class ModelConfig(Strict):
    encoders: dict[str, EncoderConfig] = Field(
        default_factory=lambda: {"audio": CNNOptions(), "image": CNNOptions()}
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


class BlendingEstimateConfig(Strict):
    """Offline G-Blend (Wang et al., CVPR 2020, Sec. 3.3, Algorithm 1) run by ``gradient_blending: auto``."""

    epochs: int = Field(default=3, ge=1, description="epochs each unimodal branch and the fused model train")
    holdout_fraction: float = Field(
        default=0.2, gt=0.0, lt=1.0, description="share of the training split held out to measure generalisation"
    )
    overfitting: Literal["delta", "final"] = Field(
        default="delta", description="delta: O(N) - O(0) (the paper); final: O(N) (MultiBench's variant)"
    )


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
    ogm_coefficient: Literal["eq10", "continuous"] = Field(
        default="eq10",
        description="eq10: 1 - tanh(alpha rho) if rho > 1 (the paper); continuous: 1 - tanh(alpha relu(rho - 1))",
    )
    ogm_scores: Literal["head_share", "masked_fuse"] = Field(
        default="head_share", description="per-modality logits: head_share W_m z_m + b/M (the paper, sum fusion); "
        "masked_fuse: the fused logits with only that modality present (any fusion)"
    )
    ogm_parameters: Literal["all", "weights"] = Field(
        default="all", description="modulate all encoder parameters or only weight tensors (ndim >= 2)"
    )
    ogm_start_epoch: int = Field(default=1, ge=1, description="first epoch (1-based) with modulation")
    ogm_end_epoch: int | None = Field(default=None, ge=1, description="last epoch with modulation; null = the end")
    gradient_blending: dict[str, float] | Literal["auto"] = Field(
        default_factory=dict,
        description="pattern -> loss weight: the full pattern (audio+image) for the fused head, a "
        "modality for its unimodal head (Wang et al., CVPR 2020); `auto` estimates them first",
    )
    gradient_blending_auto: BlendingEstimateConfig = Field(
        default_factory=lambda: BlendingEstimateConfig(),
        description="how `gradient_blending: auto` estimates the weights (offline G-Blend)",
    )
    contrastive: dict[str, Any] = Field(
        default_factory=dict,
        description="{anchors: [..], other, kind: hard_negative|infonce, weight, temperature, symmetric, "
        "projector: enhanced|linear|none, dropout (enhanced), dim (linear), contrastive_epochs, k, eps}",
    )

    @field_validator("aux_heads", "distill", "gradient_blending")
    @classmethod
    def _weights_are_nonnegative(cls, value: dict[str, float] | str, info: Any) -> dict[str, float] | str:
        if isinstance(value, str):
            return value
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
        """Check the settings and fill the defaults, so the resolved config says what ran.

        Defaults follow "Early Fusion with Contrastive Learning" (003_*.txt, Sec. 3.2): one
        direction from the anchors, eps 1e-7, the residual Tanh projector on ``other``.
        """
        if not value:
            return value
        where = "`training.strategy.contrastive"
        if "anchor" in value:
            raise ValueError(f"{where}.anchor` is now `anchors`, a list (e.g. `anchors: [{value['anchor']}]`)")
        kind = value.get("kind", "hard_negative")
        loss_keys = {"hard_negative": ["k", "eps"], "infonce": []}
        if kind not in loss_keys:
            raise ValueError(f"{where}.kind` must be one of {list(loss_keys)}, got {kind!r}")
        projector = value.get("projector", "enhanced")
        projector_keys = {"enhanced": ["dropout"], "linear": ["dim"], "none": []}
        if projector not in projector_keys:
            raise ValueError(f"{where}.projector` must be one of {list(projector_keys)}, got {projector!r}")
        allowed = ["anchors", "other", "kind", "weight", "temperature", "symmetric", "projector",
                   "contrastive_epochs", *loss_keys[kind], *projector_keys[projector]]
        unknown = sorted(set(value) - set(allowed))
        if unknown:
            raise ValueError(f"{where}` ({kind}, projector {projector}) takes keys {allowed}, got unknown {unknown}")
        anchors = value.get("anchors")
        resolved = {"anchors": [anchors] if isinstance(anchors, str) else anchors, "other": value.get("other"),
                    "kind": kind, "weight": value.get("weight", 0.1), "temperature": value.get("temperature", 0.1),
                    "symmetric": value.get("symmetric", False), "projector": projector,
                    "contrastive_epochs": value.get("contrastive_epochs", 0)}
        if projector == "enhanced":
            resolved["dropout"] = value.get("dropout", 0.1)
        if projector == "linear":
            resolved["dim"] = value.get("dim")
        if kind == "hard_negative":
            resolved |= {"k": value.get("k", 5), "eps": value.get("eps", 1e-7)}

        def number(x: Any) -> bool:
            return isinstance(x, (int, float)) and not isinstance(x, bool)

        def count(x: Any, least: int = 1) -> bool:
            return isinstance(x, int) and not isinstance(x, bool) and x >= least

        names = resolved["anchors"]
        checks = {
            "anchors": (isinstance(names, list) and bool(names) and all(isinstance(a, str) for a in names)
                        and len(set(names)) == len(names), "a non-empty list of distinct modality names"),
            "other": (isinstance(resolved["other"], str), "a modality name"),
            "weight": (number(resolved["weight"]) and resolved["weight"] >= 0, "a number >= 0"),
            "temperature": (number(resolved["temperature"]) and resolved["temperature"] > 0,
                            "a number > 0"),
            "symmetric": (isinstance(resolved["symmetric"], bool), "true or false"),
            "contrastive_epochs": (count(resolved["contrastive_epochs"], 0), "an int >= 0"),
            "dropout": (number(resolved.get("dropout", 0.0)) and 0 <= resolved.get("dropout", 0.0) < 1,
                        "a number in [0, 1)"),
            "dim": (resolved.get("dim") is None or count(resolved["dim"]), "an int >= 1 or null"),
            "k": (count(resolved.get("k", 1)), "an int >= 1"),
            "eps": (number(resolved.get("eps", 0.0)) and resolved.get("eps", 0.0) >= 0, "a number >= 0"),
        }
        for key, (ok, expected) in checks.items():
            if not ok:
                raise ValueError(f"{where}.{key}` must be {expected}, got {resolved.get(key)!r}")
        if resolved["other"] in names:
            raise ValueError(f"{where}.other` (`{resolved['other']}`) must not be one of the `anchors` {names}")
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
            raise ValueError(f"`data.missing_rate` names {unknown}, which are not among the run's modalities "
                             f"{sorted(used)}")
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
        problem = str(getattr(error, "problem", None) or error).strip()
        raise ConfigError(f"Override `{text}`: the value `{raw}` is not valid YAML ({problem}); quote strings, "
                          "and write mappings and lists whole, e.g. `data.limit={train: 5}`.") from None


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


def _tagged_members(annotation: Any, metadata: Sequence[Any] = ()) -> dict[str, Any] | None:
    """``{tag: member type}`` of a discriminated union (``Annotated[Union[Annotated[X, Tag]...], Discriminator]``)."""
    extra: list[Any] = list(metadata)
    if get_origin(annotation) is Annotated:
        annotation, *more = get_args(annotation)
        extra += more
    if not any(isinstance(item, Discriminator) for item in extra):
        return None
    choices = get_args(annotation) if get_origin(annotation) in (Union, UnionType) else (annotation,)
    members: dict[str, Any] = {}
    for choice in choices:
        inner, tags = (get_args(choice)[0], get_args(choice)[1:]) if get_origin(choice) is Annotated else (choice, ())
        for tag in [*tags, *extra]:
            if isinstance(tag, Tag):
                members[tag.tag] = inner
                break
    return members


def _fields_of(node: Any) -> dict[str, tuple[Any, Sequence[Any]]] | None:
    """Field name -> (annotation, metadata) of a pydantic model or dataclass; None for anything else."""
    if isinstance(node, type) and issubclass(node, BaseModel):
        return {name: (f.annotation, f.metadata) for name, f in node.model_fields.items()}
    if isinstance(node, type) and dataclasses.is_dataclass(node):
        return {f.name: (f.type, ()) for f in dataclasses.fields(node)}
    return None


def _resolve(location: Sequence[str | int], root: type[BaseModel]) -> tuple[list[str], Any]:
    """Walk ``location`` (a pydantic error's ``loc``) from ``root``.

    Returns the user's dotted path (union tags such as ``data.<dataset>`` dropped, as the
    user never writes them) and the type found at its end (None where the walk left the schema).
    """
    node: Any = root
    metadata: Sequence[Any] = ()
    path: list[str] = []
    node = _section_type(node) if node is not root else node
    for part in location:
        members = _tagged_members(node, metadata) if node is not None else None
        metadata = ()
        if members is not None:
            node = members.get(str(part))
            if node is not None:
                continue  # the tag of a discriminated union
            path.append(str(part))
            continue
        fields = _fields_of(node)
        path.append(str(part))
        if fields is not None:
            annotation, metadata = fields.get(str(part), (None, ()))
            if any(isinstance(item, Discriminator) for item in metadata):  # pydantic moved the union's tags here
                annotation, metadata = Annotated[(annotation, *metadata)], ()
            node = _section_type(annotation)
        elif get_origin(node) in (dict, list):
            node = _section_type(get_args(node)[-1])
        else:
            node = None
    return path, node


def _section_type(annotation: Any) -> Any:
    """Unwrap ``X | None`` to ``X``: the model, dataclass, ``dict``/``list`` or union a key path can descend into."""
    if annotation is None:
        return None
    if _tagged_members(annotation) is not None:
        return annotation
    for candidate in (annotation, *get_args(annotation)):
        if _fields_of(candidate) is not None or get_origin(candidate) in (dict, list):
            return candidate
        if _tagged_members(candidate) is not None:
            return candidate
    return None


def _valid_keys(node: Any) -> list[str]:
    fields = _fields_of(node)
    return list(fields) if fields is not None else []


def explain_validation_error(error: ValidationError, source: str, root: type[BaseModel] | None = None,
                             kind: str = "config") -> ConfigError:
    """Turn pydantic's report into one paragraph naming the source, the keys and the fix.

    ``root`` is the model that was validated (a run config by default, a study spec too), so
    an unknown key is answered with the closest valid key of its own section; keys inside a
    dataset's options are found through the ``data.dataset`` union.
    """
    problems = []
    for item in error.errors():
        path, _ = _resolve(item["loc"], root or RunConfig)
        dotted = ".".join(path) or "(top level)"
        if item["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
            _, parent = _resolve(item["loc"][:-1], root or RunConfig)
            valid = _valid_keys(parent)
            close = difflib.get_close_matches(path[-1], valid, n=1, cutoff=0.5)
            hint = f"did you mean `{'.'.join([*path[:-1], close[0]])}`?" if close else f"valid keys: {valid}"
            problems.append(f"unknown key `{dotted}` ({hint})")
        elif item["type"] == "union_tag_invalid":
            tag = str(item.get("ctx", {}).get("tag"))
            _, union = _resolve(item["loc"], root or RunConfig)
            members = _tagged_members(union) or {}
            close = difflib.get_close_matches(tag, list(members), n=1, cutoff=0.5)
            hint = f"did you mean `{close[0]}`?" if close else f"expected one of {sorted(members)}"
            broken = broken_entry_points().get(tag) if _tag_key(members) == "dataset" else None
            hint = broken or hint
            problems.append(f"`{dotted}.{_tag_key(members)}` is `{tag}`, which is not registered ({hint})")
        else:
            got = item.get("input")
            message = str(item["msg"]).removeprefix("Value error, ")
            problems.append(f"`{dotted}`: {message} (got {got!r})")
    return ConfigError(f"Invalid {kind} {source}: " + "; ".join(problems) + ".")


def _tag_key(members: Mapping[str, Any]) -> str:
    """The field a discriminated union is keyed by: the one whose ``Literal`` holds each member's tag."""
    for tag, member in members.items():
        for name, (annotation, _) in (_fields_of(member) or {}).items():
            if get_origin(annotation) is Literal and tag in get_args(annotation):
                return name
    return "type"


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
