"""The MMPT mixture-of-models grid (``../shared/papers/004_d6fb5191247edfc1.txt``, Appendix B, Figure 4).

Appendix B builds the ``p_train x p_test`` profile of two modalities from saved test
outputs, by logit fusion of two models: "if we are missing the modality m_1 with a
probability p_train during training-time and missing the modality m_2 with a probability
p_test during test-time, we [take] the logits of the model trained on (1 - p_train) of the
modalities m_1 and m_2 at (1 - p_test) and the logits of the model trained on (1 - p_train)
of the modality m_1 at p_test", and when the same modality is missing at train and test
time, "the unimodal logits of the non-missing modality trained at 100% training data" with
the multimodal model trained on ``(1 - p_train)`` of the pairs. So for a modality ``r``
missing in training and ``t`` missing at test time (four panels for two modalities), with
``o`` the modality left at test time:

- the multimodal model is the one trained on ``1 - p_train`` of the pairs
  (``data.train_fraction``);
- the expert is a unimodal model of ``o`` (a pre-training run, ``study.experts``) trained on
  ``1 - p_train`` of the data when ``o == r`` (the paper's example: text missing in training
  at 90%, image missing at test: the text expert trained on 10% of the text), else on all
  of it (``o`` was never missing in training).

Each test sample takes the expert's outputs with probability ``p_test`` and the multimodal
model's full-pattern outputs otherwise (stochastic logit fusion, section 2.2), so a cell is
the expected test metric when each sample loses ``t`` with probability ``p_test``: exactly
``(1 - p_test) * metric(multimodal) + p_test * metric(expert)`` for accuracy and the other
per-sample metrics (:func:`fusebench.engine.mmpt.mmpt_curve`), a seeded Monte Carlo average
otherwise. Cells are averaged over the seeds that have both models.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from fusebench.data.patterns import pattern_name
from fusebench.engine.mmpt import DEFAULT_P_GRID, mmpt_curve
from fusebench.study.analysis_groups import run_config
from fusebench.study.analysis_modality import SavedOutputs, axis_changing, load_logits
from fusebench.study.analysis_pairs import axes_key
from fusebench.study.records import RunRecord
from fusebench.tasks import Task

FRACTION_DIGITS = 6
Experts = dict[tuple[str, float], dict[int, RunRecord]]  # (modality, fraction) -> seed -> run


def effective_fraction(config: Mapping[str, Any]) -> float | None:
    """Share of the training split a run trained on: ``data.train_fraction`` x ``pretrain.data_fraction``.

    Both select the same seeded subset for the same product (``engine.datasets.load_splits``),
    so an expert and a multimodal run with equal fractions and seeds saw the same samples.
    """
    if not config:
        return None
    data = config.get("data") or {}
    pretrain = config.get("pretrain") or {}
    fraction = float(data.get("train_fraction", 1.0)) * float(pretrain.get("data_fraction", 1.0))
    return round(fraction, FRACTION_DIGITS)


def mixture_expert(
    train_missing: str, test_missing: str, p_train: float, modalities: Sequence[str]
) -> tuple[str, float]:
    """The expert Appendix B mixes in: ``(modality, training fraction)``.

    The modality left at test time; trained on ``1 - p_train`` of the data if that is the
    modality missing in training, else on all of it.

    >>> mixture_expert("text", "image", 0.9, ["image", "text"])  # the paper's example
    ('text', 0.1)
    >>> mixture_expert("text", "text", 0.9, ["image", "text"])
    ('image', 1.0)
    """
    names = sorted(modalities)
    if len(names) != 2 or train_missing not in names or test_missing not in names:
        raise ValueError(
            f"Expected two modalities and missing modalities among them, got {names}, "
            f"train `{train_missing}`, test `{test_missing}`."
        )
    remaining = next(m for m in names if m != test_missing)
    fraction = round(1.0 - p_train, FRACTION_DIGITS) if remaining == train_missing else 1.0
    return remaining, fraction


def mixture_curve(
    full: Tensor,
    expert: Tensor,
    target: Tensor,
    modalities: Sequence[str],
    test_missing: str,
    p_grid: Sequence[float],
    metric: str,
    task: Task,
) -> list[float]:
    """Expected test ``metric`` per ``p_test``: the multimodal model's ``full`` outputs mixed with the expert's.

    A sample losing ``test_missing`` (probability ``p_test``) takes ``expert`` (the outputs of
    a unimodal model of the other modality), else ``full``; see the module docstring.
    """
    names = sorted(modalities)
    remaining = next(m for m in names if m != test_missing)
    outputs = {pattern_name(names): full, remaining: expert}
    return [p.value for p in mmpt_curve(outputs, target, names, test_missing, p_grid=p_grid, metric=metric, task=task)]


class OutputCache:
    """Saved test outputs per run directory, each file read once."""

    def __init__(self, study_dir: Path) -> None:
        self.study_dir = study_dir
        self.cache: dict[str, SavedOutputs | None] = {}

    def __call__(self, run: RunRecord) -> SavedOutputs | None:
        key = str(run.run_dir)
        if key not in self.cache:
            self.cache[key] = load_logits(self.study_dir, run)
        return self.cache[key]


def experts_by_key(study_dir: Path, runs: Sequence[RunRecord]) -> Experts:
    """Completed pre-training runs (the unimodal experts): ``{(modality, fraction): {seed: run}}``."""
    found: Experts = {}
    for run in runs:
        if run.kind == "pretrain" and run.completed and run.modality:
            fraction = effective_fraction(run_config(study_dir, run))
            if fraction is not None:
                found.setdefault((run.modality, fraction), {}).setdefault(run.seed, run)
    return found


def group_fractions(
    study_dir: Path, groups: Sequence[Mapping[str, Any]], by_group: Mapping[str, Sequence[RunRecord]]
) -> dict[str, float]:
    """``{group: training fraction}`` read from each group's first run with a config."""
    fractions = {}
    for group in groups:
        for run in by_group[group["name"]]:
            fraction = effective_fraction(run_config(study_dir, run))
            if fraction is not None:
                fractions[group["name"]] = fraction
                break
    return fractions


def mixture_grids(
    study_dir: Path,
    groups: Sequence[Mapping[str, Any]],
    by_group: Mapping[str, Sequence[RunRecord]],
    all_runs: Sequence[RunRecord],
    modalities: Sequence[str],
    metric: str,
    p_grid: Sequence[float] = DEFAULT_P_GRID,
) -> list[dict[str, Any]]:
    """The four Appendix B panels for every scope with at least two training fractions and some expert.

    A scope is a condition at fixed values of the axes that do not change the training
    fraction; its rows are its groups by ``p_train = 1 - training fraction``.
    """
    names = sorted(modalities)
    if len(names) != 2:
        return []
    fractions = group_fractions(study_dir, groups, by_group)
    experts = experts_by_key(study_dir, all_runs)
    if not experts:
        return []
    changing = set(axis_changing(groups, sorted({a for g in groups for a in g["axes"]}), fractions))
    scopes: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for group in (g for g in groups if g["name"] in fractions):
        rest = {k: v for k, v in group["axes"].items() if k not in changing}
        scopes.setdefault((group["condition"], axes_key(rest)), []).append(group)
    outputs = OutputCache(study_dir)
    grids = []
    for (condition, rest), members in scopes.items():
        rows = sorted(members, key=lambda g: -fractions[g["name"]])  # p_train ascending
        if len({fractions[g["name"]] for g in rows}) < 2:
            continue
        notes: list[str] = []
        panels = [
            _panel(
                r,
                t,
                rows,
                fractions=fractions,
                by_group=by_group,
                experts=experts,
                outputs=outputs,
                names=names,
                metric=metric,
                p_grid=p_grid,
                notes=notes,
            )
            for r in names
            for t in names
        ]
        grids.append(
            {
                "scope": "|".join([str(condition), *(f"{k}={v}" for k, v in rest)]),
                "condition": condition,
                "modalities": names,
                "p_test": list(p_grid),
                "panels": panels,
                "notes": notes,
            }
        )
    return grids


def _panel(
    train_missing: str,
    test_missing: str,
    rows: Sequence[Mapping[str, Any]],
    *,
    fractions: Mapping[str, float],
    by_group: Mapping[str, Sequence[RunRecord]],
    experts: Experts,
    outputs: OutputCache,
    names: Sequence[str],
    metric: str,
    p_grid: Sequence[float],
    notes: list[str],
) -> dict[str, Any]:
    values, counts, expert_fractions, p_trains = [], [], [], []
    remaining = next(m for m in names if m != test_missing)
    for group in rows:
        p_train = round(1.0 - fractions[group["name"]], FRACTION_DIGITS)
        _, fraction = mixture_expert(train_missing, test_missing, p_train, names)
        chosen = experts.get((remaining, fraction), {})
        curves = []
        for run in sorted((r for r in by_group[group["name"]] if r.completed), key=lambda r: r.seed):
            expert_run = chosen.get(run.seed)
            mm, expert = outputs(run), outputs(expert_run) if expert_run is not None else None
            if mm is None or expert is None or pattern_name(names) not in mm.logits or remaining not in expert.logits:
                continue
            if not torch.equal(mm.target, expert.target):
                notes.append(
                    f"seed {run.seed}: the {remaining} expert was tested on other samples than "
                    f"`{group['name']}`; left out"
                )
                continue
            curves.append(
                mixture_curve(
                    mm.logits[pattern_name(names)],
                    expert.logits[remaining],
                    mm.target,
                    names,
                    test_missing,
                    p_grid,
                    metric,
                    mm.task,
                )
            )
        if not curves:
            note = f"no {remaining} expert on training fraction {fraction:g} for `{group['name']}`"
            if note not in notes:
                notes.append(note + " (add it to `study.experts.data_fractions`)")
        p_trains.append(p_train)
        expert_fractions.append(fraction)
        values.append(
            np.mean(np.array(curves, dtype=float), axis=0).tolist() if curves else [float("nan")] * len(p_grid)
        )
        counts.append(len(curves))
    return {
        "train_missing": train_missing,
        "test_missing": test_missing,
        "remaining": remaining,
        "groups": [g["name"] for g in rows],
        "p_train": p_trains,
        "expert_fraction": expert_fractions,
        "values": values,
        "n": counts,
    }
