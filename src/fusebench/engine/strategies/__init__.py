"""Training strategies selected in ``training.strategy``: robustness to missing modalities
and balance between modalities.

Each strategy follows ``fusebench.engine.module.TrainingStrategy`` (``transform_batch``,
``extra_losses``, ``after_backward``); ``build_strategies`` turns the config into the list
the training module runs. All are off by default and they combine:

========================  ==========================================================
``modality_dropout``      ``dropout.ModalityDropout`` (mask only, seeded per step; MMPT Sec. 4.1)
``aux_heads``             ``heads.AuxiliaryHeads`` (unimodal heads on ``model.aux_heads``)
``gradient_blending``     ``blending.GradientBlending`` (+ ``estimate_blending_weights``)
``distill``               ``distill.TeacherDistillation`` (frozen unimodal teachers)
``contrastive``           ``contrastive.ContrastiveAlignment`` (present pairs only)
``ogm_ge``                ``ogm.OGMGE`` (gradient modulation of the encoders)
========================  ==========================================================
"""

from __future__ import annotations

from fusebench.engine.strategies.base import ATTACHED_MODULES, Strategy
from fusebench.engine.strategies.blending import (
    GradientBlending,
    blending_weights_from_runs,
    estimate_blending_weights,
)
from fusebench.engine.strategies.build import blending_weights, build_strategies
from fusebench.engine.strategies.contrastive import ContrastiveAlignment, build_contrastive
from fusebench.engine.strategies.distill import TeacherDistillation, feature_distance, load_teacher
from fusebench.engine.strategies.dropout import ModalityDropout, drop_chosen_modality, drop_one_modality
from fusebench.engine.strategies.heads import AuxiliaryHeads, unimodal_heads, unimodal_losses
from fusebench.engine.strategies.ogm import OGMGE
from fusebench.engine.strategies.ogm_scores import discrepancy_ratios, head_shares, modality_scores, ogm_coefficients

__all__ = [
    "ATTACHED_MODULES",
    "OGMGE",
    "AuxiliaryHeads",
    "ContrastiveAlignment",
    "GradientBlending",
    "ModalityDropout",
    "Strategy",
    "TeacherDistillation",
    "blending_weights",
    "blending_weights_from_runs",
    "build_contrastive",
    "build_strategies",
    "discrepancy_ratios",
    "drop_chosen_modality",
    "drop_one_modality",
    "estimate_blending_weights",
    "feature_distance",
    "head_shares",
    "load_teacher",
    "modality_scores",
    "ogm_coefficients",
    "unimodal_heads",
    "unimodal_losses",
]
