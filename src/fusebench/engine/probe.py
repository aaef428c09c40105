"""Linear probing of a finished run's frozen encoder embeddings, and encoder export.

The linear-probe protocol (as in MMPT, and in self-supervised representation learning
since Zhang et al., ECCV 2016): freeze the run's encoders, compute each split's
embeddings once, and fit a linear classifier on each modality's embedding and on their
concatenation. It measures what each encoder learned, independently of the fusion and
head on top, so a multimodal model's audio branch can be compared with a unimodal expert
(``fusebench pretrain``) trained on audio alone: a lower probe accuracy means a lazier
branch. The probes themselves are fitted by :mod:`fusebench.engine.linear_probe`
(deterministic; the L2 strength chosen on validation); the comparison with experts is in
:mod:`fusebench.engine.probe_experts`.

``export_encoders`` writes a finished run's encoders as ``encoders/<modality>.safetensors``,
which is how a multimodal (e.g. contrastive) run becomes a pre-training run for others.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from fusebench.config import RunConfig, load_config
from fusebench.data.loader import as_compute
from fusebench.data.patterns import pattern_modalities, pattern_name
from fusebench.engine.checkpoint import load_trained_model, read_checkpoint, trained_config
from fusebench.engine.datasets import SPLITS, DataSplits, Split, load_splits, run_task
from fusebench.engine.linear_probe import DEFAULT_L2_GRID, MAX_ITER, probe_features
from fusebench.engine.probe_experts import expert_gaps, read_experts
from fusebench.engine.strategies.base import ATTACHED_MODULES
from fusebench.errors import ConfigError, RunFolderError
from fusebench.io import atomic_write_json, read_json
from fusebench.models.contract import as_fusion_model
from fusebench.models.weights import save_encoder
from fusebench.tasks import Task

PROBE_FILE = "probe_metrics.json"


@dataclass(frozen=True)
class LoadedRun:
    """A finished run's config, its best-checkpoint model (eval mode) and its data."""

    run_dir: Path
    config: RunConfig
    model: nn.Module
    data: DataSplits


def load_trained_run(run_dir: str | Path, data: DataSplits | None = None) -> LoadedRun:
    """Rebuild a finished run's model and load ``checkpoints/best.ckpt`` (:mod:`fusebench.engine.checkpoint`).

    The model comes from the config stored in the checkpoint, the data from the run's
    ``config.yaml``. The train split is the full configured one (``pretrain.data_fraction``
    is not applied), so the probes of every run on a dataset are fitted on the same samples.
    """
    run_dir = Path(run_dir)
    path = run_dir / "checkpoints" / "best.ckpt"
    if not path.is_file():
        raise RunFolderError(f"No trained checkpoint at `{path}`; is `{run_dir}` a finished run?")
    checkpoint = read_checkpoint(path)
    config = trained_config(checkpoint, load_config(run_dir / "config.yaml"))
    if data is None:
        data = load_splits(config.data, config.modalities(), config.experiment.seed, task_settings=config.task)
    model = load_trained_model(
        checkpoint, config, data.input_shapes, data.task.output_size, data.modality_info, drop=ATTACHED_MODULES
    )
    model.eval()
    return LoadedRun(run_dir, config, model, data)


@torch.no_grad()
def split_embeddings(model: nn.Module, split: Split, batch_size: int) -> dict[str, Tensor]:
    """modality -> ``[N, D_m]`` encoder embeddings of every sample, all modalities present."""
    chunks: dict[str, list[Tensor]] = {}
    for start in range(0, len(split), batch_size):
        part = split.rows(torch.arange(start, min(start + batch_size, len(split))))
        mask = torch.ones(len(part), len(part.inputs), dtype=torch.bool)
        inputs = {m: as_compute(x) for m, x in part.inputs.items()}  # float16 storage is computed at float32
        for m, z in model(inputs, mask, part.lengths).embeddings.items():
            chunks.setdefault(m, []).append(z.float())
    return {m: torch.cat(parts) for m, parts in chunks.items()}


def weakness_scores(probes: Mapping[str, Mapping[str, Any]], modalities: Sequence[str]) -> dict[str, dict[str, float]]:
    """MMPT weakness score (Definition 3, ``../shared/papers/004_d6fb5191247edfc1.txt`` Eq. 3).

    ``W(m1 vs m2) = l(phi_m1, T_train without m2) / l(phi_m2, T_train without m1)``: the
    ratio of the two encoders' linear-probe losses on the *training* set (cross-entropy
    for classification, as in the paper; the task loss otherwise). Below 1, ``m1`` is the
    dominant modality; above 1, ``m2`` is. Returned for every ordered pair of modalities.
    """
    names = sorted(modalities)
    loss = {m: float(probes[m]["train_loss"]) for m in names}
    return {a: {b: loss[a] / loss[b] for b in names if b != a and loss[b] > 0} for a in names}


def probe_run(
    run_dir: str | Path,
    experts: Mapping[str, str | Path] | None = None,
    *,
    loaded: LoadedRun | None = None,
    l2_grid: Sequence[float] = DEFAULT_L2_GRID,
) -> dict[str, Any]:
    """Probe each modality's embedding and their concatenation; write ``probe_metrics.json``.

    Args:
        run_dir: a finished ``fusebench train`` or ``fusebench pretrain`` run.
        experts: modality -> a ``fusebench pretrain`` run of that modality on the same data.
        loaded: the already loaded run (saves loading it again).
        l2_grid: L2 strengths tried, the best on validation accuracy is kept.

    Returns:
        ``{"protocol": ..., "probes": {name: {dim, l2, validation, test}}, "experts": ...}``
        with probe names ``audio``, ``image`` and ``audio+image`` (the concatenation).
    """
    run = loaded if loaded is not None else load_trained_run(run_dir)
    checked = read_experts(run.config, run.run_dir, experts or {})
    with probe_threads(run.config.experiment.threads):
        probes, primary = _fit_probes(run, l2_grid)
    kind = (
        "ridge regression (closed form)"
        if run.data.task.kind == "regression"
        else "logistic regression, full-batch L-BFGS"
    )
    result: dict[str, Any] = {
        "protocol": {
            "classifier": f"linear: {kind} on standardised frozen embeddings",
            "l2_grid": list(l2_grid),
            "selection": f"validation {primary}",
            "max_iter": MAX_ITER,
            "checkpoint": "checkpoints/best.ckpt",
            "samples": {s: len(run.data.split(s)) for s in SPLITS},
        },
        "primary_metric": primary,
        "probes": probes,
        "experts": expert_gaps(run.run_dir, probes, checked),
    }
    modalities = sorted(run.data.modalities)
    if len(modalities) > 1:
        result["weakness"] = weakness_scores(probes, modalities)
        full = pattern_name(modalities)
        tests = {name: probes[name]["test"] for name in [full, *modalities]}
        result["mmpt_profile_probes"] = {  # MMPT section 3.2 steps 2-3: the profile from linear probes
            metric: {"full": tests[full][metric], "unimodal": {m: tests[m][metric] for m in modalities}}
            for metric in tests[full]
            if metric != "count"
        }
    names, _ = run_task(run.config, run.data.task)
    profile = run_mmpt_profile(Path(run.run_dir), names)
    if profile is not None:
        result["mmpt_profile"] = profile
    atomic_write_json(Path(run.run_dir) / PROBE_FILE, result)
    return result


def run_mmpt_profile(run_dir: Path, metrics: Sequence[str]) -> dict[str, Any] | None:
    """MMPT profile (full-modal, unimodal, modality weakness) per metric from the run's test logits.

    None for a one-modality run or a run tested before logits were saved.
    """
    from dataclasses import asdict

    from safetensors.torch import load_file

    from fusebench.engine.mmpt import mmpt_profile

    path = run_dir / "test_logits.safetensors"
    if not path.is_file():
        return None
    saved = load_file(str(path))
    logits = {k.removeprefix("logits/"): v for k, v in saved.items() if k.startswith("logits/")}
    modalities = sorted({m for name in logits for m in pattern_modalities(name)})
    if len(modalities) < 2:
        return None
    described = read_json(run_dir / "data.json").get("task") if (run_dir / "data.json").is_file() else None
    task = Task.from_description(described) if described else None
    constant = saved.get("constant")
    return {
        metric: asdict(mmpt_profile(logits, saved["target"], modalities, metric, task, constant=constant))
        for metric in metrics
    }


@contextmanager
def probe_threads(count: int | None) -> Iterator[None]:
    """``experiment.threads`` while probing (small L-BFGS steps crawl on oversubscribed cores)."""
    before = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _fit_probes(run: LoadedRun, l2_grid: Sequence[float]) -> tuple[dict[str, Any], str]:
    names, primary = run_task(run.config, run.data.task)
    batch = run.config.data.eval_batch_size
    embedded = {split: split_embeddings(run.model, run.data.split(split), batch) for split in SPLITS}
    modalities = sorted(embedded["train"])
    groups = {m: [m] for m in modalities}
    if len(modalities) > 1:
        groups[pattern_name(modalities)] = modalities
    probes: dict[str, Any] = {}
    for name, members in groups.items():
        train, validation, test = (torch.cat([embedded[s][m] for m in members], dim=1) for s in SPLITS)
        probes[name] = probe_features(train, validation, test, run.data, names, l2_grid, select_on=primary)
    return probes, primary


def export_encoders(run_dir: str | Path, *, loaded: LoadedRun | None = None) -> dict[str, Path]:
    """Write ``encoders/<modality>.safetensors`` for every encoder of a finished run.

    The weights are the best checkpoint's; the header records the run and, as
    ``pretraining_seconds``, its data plus fit time, so a study that loads these encoders
    with ``model.pretrained`` accounts for what producing them cost.
    """
    run = loaded if loaded is not None else load_trained_run(run_dir)
    timing_file = run.run_dir / "timing.json"
    timing = read_json(timing_file) if timing_file.is_file() else {}
    seconds = float(timing.get("fit", float("nan"))) + float(timing.get("data", 0.0))
    encoders = as_fusion_model(run.model).encoder_modules()
    if encoders is None:
        raise ConfigError(
            f"`{run.run_dir}` has no per-modality encoders to export (its model is "
            f"`{type(run.model).__name__}`, which tokenises inputs inside the fusion)."
        )
    paths: dict[str, Path] = {}
    for m, encoder in sorted(encoders.items()):
        path = run.run_dir / "encoders" / f"{m}.safetensors"
        metadata = {
            "modality": m,
            "kind": run.config.model.encoders[m].kind,
            "source_run": str(run.run_dir),
            "pretraining_seconds": f"{seconds:.3f}",
            "exported_from": "fusebench probe --export-encoders",
        }
        paths[m] = save_encoder(encoder, path, metadata)
    return paths


def parse_experts(items: Sequence[str]) -> dict[str, Path]:
    """``["audio=runs/pre/1"]`` -> ``{"audio": Path("runs/pre/1")}``."""
    experts: dict[str, Path] = {}
    for item in items:
        modality, sep, path = item.partition("=")
        if not sep or not modality.strip() or not path.strip():
            raise ConfigError(f"`--expert` takes MODALITY=RUN_DIR (e.g. `audio=runs/pre/1`), got `{item}`.")
        experts[modality.strip()] = Path(path.strip())
    return experts
