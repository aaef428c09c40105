"""The ``training:`` section of a run config: optimiser, schedule, early stopping, strategies.

Part of the run schema (:mod:`fusebench.config` assembles it); every model here is strict,
so an unknown key is an error with the closest valid key, like the rest of the config.
``training.strategy.contrastive`` is a discriminated union keyed by ``kind`` and
``projector`` together: each combination takes exactly its own keys (``k``/``eps`` for the
hard-negative loss, ``dropout`` for the enhanced projector, ``dim`` for the linear one).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PositiveInt,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)


class Strict(BaseModel):
    """Unknown keys are errors; assignments are validated too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


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


ContrastiveKind = Literal["hard_negative", "infonce"]
ProjectorKind = Literal["enhanced", "linear", "none"]
DEFAULT_CONTRASTIVE = ("hard_negative", "enhanced")


class ContrastiveOptions(Strict):
    """What every contrastive setting has; defaults after "Early Fusion with Contrastive Learning".

    Defaults follow 003_*.txt, Sec. 3.2: one direction from the anchors to the enhanced
    ``other`` modality, weight 0.1, temperature 0.1, the residual Tanh projector on
    ``other``. ``anchors`` may be written as one name.
    """

    anchors: list[str] = Field(min_length=1, description="anchor modalities (their losses are averaged)")
    other: str = Field(description="the enhanced modality")
    kind: ContrastiveKind
    projector: ProjectorKind
    weight: float = Field(default=0.1, ge=0.0, allow_inf_nan=False, description="loss weight")
    temperature: float = Field(default=0.1, gt=0.0, allow_inf_nan=False, description="softmax temperature")
    symmetric: bool = Field(default=False, description="also contrast from `other` to the anchors")
    contrastive_epochs: int = Field(default=0, ge=0, description="leading epochs that train the contrastive loss alone")

    @field_validator("anchors", mode="before")
    @classmethod
    def _one_name_is_a_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _distinct(self) -> ContrastiveOptions:
        if len(set(self.anchors)) != len(self.anchors):
            raise ValueError(f"`anchors` must be distinct modality names, got {self.anchors}")
        if self.other in self.anchors:
            raise ValueError(f"`other` (`{self.other}`) must not be one of the `anchors` {self.anchors}")
        return self

    @property
    def tag(self) -> str:
        return f"{self.kind}/{self.projector}"


class HardNegativeKeys(Strict):
    k: PositiveInt = Field(default=5, description="hardest negatives per anchor row")
    eps: float = Field(default=1e-7, ge=0.0, allow_inf_nan=False, description="added inside the log")


class EnhancedProjectorKeys(Strict):
    dropout: float = Field(default=0.1, ge=0.0, lt=1.0, description="dropout on the projector's Tanh branch")


class LinearProjectorKeys(Strict):
    dim: PositiveInt | None = Field(default=None, description="common width; null: the smallest embedding width")


class HardNegativeEnhanced(HardNegativeKeys, EnhancedProjectorKeys, ContrastiveOptions):
    kind: Literal["hard_negative"] = "hard_negative"
    projector: Literal["enhanced"] = "enhanced"


class HardNegativeLinear(HardNegativeKeys, LinearProjectorKeys, ContrastiveOptions):
    kind: Literal["hard_negative"] = "hard_negative"
    projector: Literal["linear"]


class HardNegativeRaw(HardNegativeKeys, ContrastiveOptions):
    kind: Literal["hard_negative"] = "hard_negative"
    projector: Literal["none"]


class InfoNCEEnhanced(EnhancedProjectorKeys, ContrastiveOptions):
    kind: Literal["infonce"]
    projector: Literal["enhanced"] = "enhanced"


class InfoNCELinear(LinearProjectorKeys, ContrastiveOptions):
    kind: Literal["infonce"]
    projector: Literal["linear"]


class InfoNCERaw(ContrastiveOptions):
    kind: Literal["infonce"]
    projector: Literal["none"]


_CONTRASTIVE: dict[str, type[ContrastiveOptions]] = {
    "hard_negative/enhanced": HardNegativeEnhanced,
    "hard_negative/linear": HardNegativeLinear,
    "hard_negative/none": HardNegativeRaw,
    "infonce/enhanced": InfoNCEEnhanced,
    "infonce/linear": InfoNCELinear,
    "infonce/none": InfoNCERaw,
}


def _contrastive_tag(value: Any) -> str:
    if isinstance(value, ContrastiveOptions):
        return value.tag
    kind, projector = DEFAULT_CONTRASTIVE
    if isinstance(value, Mapping):
        kind, projector = value.get("kind", kind), value.get("projector", projector)
    return f"{kind}/{projector}"


if TYPE_CHECKING:
    ContrastiveConfig = ContrastiveOptions
else:  # keyed by `kind/projector`: each combination takes its own keys
    ContrastiveConfig = Annotated[
        Union[tuple(Annotated[model, Tag(tag)] for tag, model in _CONTRASTIVE.items())],  # noqa: UP007
        Discriminator(_contrastive_tag),
    ]


class StrategyConfig(Strict):
    """Training strategies (``fusebench.engine.strategies``); all off by default, and they combine.

    Modality names and pattern keys are checked against the model's modalities when the
    strategies are built; here each value is checked on its own.
    """

    modality_dropout: float = Field(
        default=0.0, ge=0.0, lt=1.0, description="per-sample probability p of modality dropout"
    )
    modality_dropout_of: str | None = Field(
        default=None,
        description="the one modality dropped (MMPT 004 Sec. 4.1, p = 0.5 unless set; one model "
        "per modality); `any`: fusebench's variant, a uniformly chosen present modality",
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
        default="head_share",
        description="per-modality logits: head_share W_m z_m + b/M (the paper, sum fusion); "
        "masked_fuse: the fused logits with only that modality present (any fusion)",
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
    contrastive: ContrastiveConfig | None = Field(
        default=None,
        description="{anchors: [..], other, kind: hard_negative|infonce, weight, temperature, symmetric, "
        "projector: enhanced|linear|none, dropout (enhanced), dim (linear), contrastive_epochs, k, eps "
        "(hard_negative)}; null (or {}) = off",
    )

    @field_validator("contrastive", mode="before")
    @classmethod
    def _empty_is_off(cls, value: Any) -> Any:
        return None if isinstance(value, Mapping) and not value else value

    @model_validator(mode="before")
    @classmethod
    def _paper_dropout_rate(cls, data: Any) -> Any:
        """``modality_dropout_of: <modality>`` alone is the MMPT protocol (004 Sec. 4.1): p = 0.5."""
        if (
            isinstance(data, dict)
            and data.get("modality_dropout_of") not in (None, "any")
            and "modality_dropout" not in data
        ):
            return {**data, "modality_dropout": 0.5}
        return data

    @model_validator(mode="after")
    def _dropout_names_what_it_drops(self) -> StrategyConfig:
        if self.modality_dropout > 0 and self.modality_dropout_of is None:
            raise ValueError(
                f"`training.strategy.modality_dropout: {self.modality_dropout}` needs `modality_dropout_of`: a "
                "modality name (the MMPT paper's protocol, 004 Sec. 4.1: that one modality is dropped, one model "
                "per modality) or `any` (fusebench's variant: a uniformly chosen present modality per sample)"
            )
        if self.modality_dropout == 0 and self.modality_dropout_of is not None:
            raise ValueError(
                f"`training.strategy.modality_dropout_of: {self.modality_dropout_of}` with "
                "`training.strategy.modality_dropout` 0 (or unset) drops nothing; set a probability > 0 or remove "
                "`modality_dropout_of`"
            )
        return self

    @field_validator("aux_heads", "distill", "gradient_blending")
    @classmethod
    def _weights_are_nonnegative(cls, value: dict[str, float] | str, info: ValidationInfo) -> dict[str, float] | str:
        if isinstance(value, str):
            return value
        for key, weight in value.items():
            if not 0.0 <= weight < float("inf"):
                raise ValueError(
                    f"`training.strategy.{info.field_name}.{key}` must be a finite weight >= 0, got {weight}"
                )
        return value

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
