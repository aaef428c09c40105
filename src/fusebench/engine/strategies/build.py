"""``training.strategy`` -> the list of strategies the training module runs, in order.

Order matters only for ``transform_batch``: modality dropout runs first, so every loss and
the training metrics see the pattern each sample actually had. Modules that strategies
need to train (unimodal heads, contrastive projections) are attached to the model here,
before the training module builds its optimiser from ``model.parameters()``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from torch import nn

from fusebench.config import RunConfig, StrategyConfig
from fusebench.data.patterns import parse_pattern, pattern_name
from fusebench.engine.strategies.base import (
    TrainingStrategy,
    check_modalities,
    check_trainable,
)
from fusebench.engine.strategies.blending import GradientBlending
from fusebench.engine.strategies.contrastive import build_contrastive
from fusebench.engine.strategies.distill import TeacherDistillation, load_teacher
from fusebench.engine.strategies.dropout import ModalityDropout
from fusebench.engine.strategies.heads import AuxiliaryHeads, unimodal_heads
from fusebench.engine.strategies.ogm import OGMGE
from fusebench.engine.strategies.ogm_scores import fuse_of, head_shares_check
from fusebench.errors import ConfigError, quoted
from fusebench.tasks import Task


def _how_to_add(config: RunConfig, names: Sequence[str], dataset_modalities: Sequence[str]) -> str:
    """The keys that would give the run the dataset's other modalities ("" when it has none)."""
    left_out = sorted(set(dataset_modalities) - set(names))
    if not left_out:
        return ""
    unconfigured = [m for m in left_out if m not in config.model.encoders]
    excluded = [m for m in left_out if m in config.model.encoders]  # configured, left out by data.modalities
    ways = [f"configure {quoted(f'model.encoders.{m}' for m in unconfigured)}"] if unconfigured else []
    ways += [f"add {quoted(excluded)} to `data.modalities`"] if excluded else []
    return f"; the dataset also has {quoted(left_out)} ({' and '.join(ways)} to train on it)"


def build_strategies(
    config: RunConfig,
    model: nn.Module,
    modalities: Sequence[str],
    task: Task,
    *,
    load_files: bool = True,
    dataset_modalities: Sequence[str] = (),
) -> list[TrainingStrategy]:
    """The strategies ``config.training.strategy`` selects (none configured -> ``[]``).

    Args:
        config: the run config.
        model: the model to train; strategy modules are attached to it.
        modalities: the run's modalities (mask columns, sorted here).
        task: the run's task; its loss trains the unimodal heads, which are
            ``task.output_size`` wide.
        load_files: load the distillation teachers' weights; ``False`` checks everything
            else (a study validates its runs before the pre-trained files exist).
        dataset_modalities: every modality the dataset has; a multimodal strategy on a run
            left with one names the encoder keys that would give it more.

    Raises:
        ConfigError: for a setting that names an unknown modality or pattern, that the
            model cannot support, or a combination that is ambiguous.
    """
    settings = config.training.strategy
    names = tuple(sorted(modalities))
    loss, num_classes = task.compute_loss, task.output_size
    if settings.ogm_ge and task.kind != "multiclass":
        raise ConfigError(
            f"`training.strategy.ogm_ge` modulates by the softmax score of the true class (Peng et al., CVPR 2022), "
            f"which needs a multiclass task; this dataset's task is {task.kind}."
        )
    seed = config.experiment.seed
    for key, used in (("modality_dropout", settings.modality_dropout > 0), ("ogm_ge", settings.ogm_ge)):
        if used and len(names) < 2:
            raise ConfigError(
                f"`training.strategy.{key}` needs at least two modalities; this run has "
                f"{quoted(names)} (`model.encoders`, or `data.modalities` where set)"
                f"{_how_to_add(config, names, dataset_modalities)}."
            )
    strategies: list[TrainingStrategy] = []
    if settings.modality_dropout > 0:
        drop = settings.modality_dropout_of or "any"  # the config refuses a rate without it
        strategies.append(ModalityDropout(settings.modality_dropout, names, seed, drop))
    if settings.aux_heads and settings.gradient_blending:
        raise ConfigError(
            "Set either `training.strategy.aux_heads` or `training.strategy.gradient_blending`: "
            "both weight the same unimodal heads (gradient blending also re-weights the fused "
            f"loss), got aux_heads={settings.aux_heads} and "
            f"gradient_blending={settings.gradient_blending}."
        )
    if settings.aux_heads:
        check_modalities("aux_heads", list(settings.aux_heads), names)
        unimodal_heads(model, sorted(settings.aux_heads), num_classes)
        strategies.append(AuxiliaryHeads(settings.aux_heads, loss))
    if settings.gradient_blending == "auto":
        raise ValueError(
            "`training.strategy.gradient_blending: auto` is resolved before the strategies are built: "
            "`fusebench train` (`execute_run`) estimates the weights with "
            "`fusebench.engine.strategies.blending_auto.estimate_auto_blending`; pass them as a mapping here."
        )
    if settings.gradient_blending:
        fused_weight, weights = blending_weights(settings.gradient_blending, names)
        if weights:
            unimodal_heads(model, sorted(weights), num_classes)
        strategies.append(GradientBlending(fused_weight, weights, loss))
    if settings.distill:
        strategies.append(_distillation(config, settings, model, names, load_files))
    if settings.contrastive is not None:
        strategies.append(
            build_contrastive(
                settings.contrastive,
                model,
                names,
                epochs=config.training.epochs,
                early_stopping=config.training.early_stopping.enabled,
            )
        )
    if settings.ogm_ge:
        fuse_of(model)  # the strategy calls it
        check_trainable(model, names, "ogm_ge")
        strategy = OGMGE(
            names,
            settings.ogm_alpha,
            settings.ogm_noise,
            seed,
            coefficient=settings.ogm_coefficient,
            scores=settings.ogm_scores,
            parameters=settings.ogm_parameters,
            start_epoch=settings.ogm_start_epoch,
            end_epoch=settings.ogm_end_epoch,
        )
        if settings.ogm_scores == "head_share":
            head_shares_check(model, names)
        strategies.append(strategy)
    return strategies


def blending_weights(weights: Mapping[str, float], modalities: Sequence[str]) -> tuple[float, dict[str, float]]:
    """``{pattern: weight}`` -> (fused weight, ``{modality: weight}``), checked.

    The full pattern (e.g. ``audio+image``) is required; the others must be single
    modalities, the only heads gradient blending trains besides the fused one.
    """
    full = pattern_name(modalities)
    if len(modalities) < 2:
        raise ConfigError(
            f"`training.strategy.gradient_blending` needs at least two modalities, got {list(modalities)}."
        )
    allowed = [full, *modalities]
    fused: float | None = None
    unimodal: dict[str, float] = {}
    for key, weight in weights.items():
        try:
            pattern = parse_pattern(key, modalities)
        except ValueError:
            raise ConfigError(
                f"`training.strategy.gradient_blending` keys must be in {allowed}, got `{key}`."
            ) from None
        if len(pattern) == len(modalities):
            fused = float(weight)
        elif len(pattern) == 1:
            unimodal[pattern[0]] = float(weight)
        else:
            raise ConfigError(
                f"`training.strategy.gradient_blending` keys must be in {allowed} (the fused head "
                f"or one unimodal head), got the sub-pattern `{key}`."
            )
    if fused is None:
        raise ConfigError(
            f"`training.strategy.gradient_blending` must weigh the fused head `{full}`, got keys {sorted(weights)}."
        )
    return fused, unimodal


def _distillation(
    config: RunConfig, settings: StrategyConfig, model: nn.Module, modalities: Sequence[str], load_files: bool
) -> TeacherDistillation:
    check_modalities("distill", list(settings.distill), modalities)
    teachers = {}
    for m in sorted(settings.distill):
        check_trainable(model, [m], f"distill.{m}")
        path = settings.distill_teachers.get(m) or config.model.pretrained.get(m)
        if path is None:
            raise ConfigError(
                f"`training.strategy.distill.{m}` needs a teacher: set "
                f"`training.strategy.distill_teachers.{m}` or `model.pretrained.{m}` to an "
                f"`encoders/{m}.safetensors` written by `fusebench pretrain`."
            )
        teachers[m] = load_teacher(model, m, path if load_files else None)
    return TeacherDistillation(teachers, settings.distill)
