"""Training monitoring at epoch granularity: gradients, weights, updates and encoder activations.

The thesis' code base (MML_Suite, ../shared/papers/001_*.txt: "monitoring: gradient,
activation, and weight tracking settings", ``--disable-monitoring``) tracks training
dynamics to find slow convergence, overfitting or a modality that stops learning
(000_*.txt, Sec. 4, "Training Analysis"). fusebench records, per epoch:

- per module (each encoder / extractor / tokeniser per modality, the fusion, the head or
  classifier, strategy modules such as ``aux_heads.<modality>``): the L2 norm of its
  gradient, averaged over the epoch's steps (``grad_norm``) and its maximum
  (``grad_norm_max``), taken after strategies changed the gradients (OGM-GE) and before
  clipping; the L2 norm of its weights at the end of the epoch (``weight_norm``); and the
  epoch's update-to-weight ratio ``||theta_end - theta_start|| / ||theta_start||``
  (``update_ratio``);
- per modality: mean and standard deviation over all entries of its encoder's output on
  the epoch's training batches (``activations``), from the rows where it is present.
  Runs on cached frozen features have no encoder pass and no activation record.

Each record also holds ``seconds``, the time the monitor itself spent in that epoch
(host-side; on a GPU the queued kernels are not waited for). Records go to
``monitoring.jsonl`` in the run directory (one JSON object per epoch, rewritten
atomically after each epoch) and, when the ``tensorboard`` package is
installed, to ``tensorboard/`` as scalars. ``monitoring.enabled: false`` (the CLI's
``--disable-monitoring``) turns it off; ``benchmarks/monitoring_overhead.py`` measures the
cost.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, cast

import lightning as L
import torch
from torch import Tensor, nn
from torch.nn.utils import get_total_norm

from fusebench.engine.feature_cache import unwrap
from fusebench.errors import ConfigError
from fusebench.io import atomic_write_text
from fusebench.models.contract import as_fusion_model
from fusebench.models.early import TokenEarlyFusionModel
from fusebench.models.midfusion import WhereToFuseModel

MONITORING_FILE = "monitoring.jsonl"


def _unwrap(model: nn.Module) -> nn.Module:
    """The model inside a frozen-feature or frozen-token cache wrapper (its children are the ones that train)."""
    return unwrap(model)


def monitored_modules(model: nn.Module) -> dict[str, list[nn.Parameter]]:
    """Module name -> its trainable-or-not parameters: children of the model, dicts split per key.

    ``encoders`` becomes ``encoders.audio``, ``encoders.image``, ...; a parameter held by the
    model itself (e.g. a CLS token) is grouped under ``parameters``.
    """
    model = _unwrap(model)
    groups: dict[str, list[nn.Parameter]] = {}
    for name, child in model.named_children():
        if isinstance(child, (nn.ModuleDict, nn.ParameterDict)):
            for key in sorted(child.keys()):
                item = child[key]
                params = list(item.parameters()) if isinstance(item, nn.Module) else [item]
                if params:
                    groups[f"{name}.{key}"] = params
        else:
            params = list(child.parameters())
            if params:
                groups[name] = params
    own = list(model.parameters(recurse=False))
    if own:
        groups["parameters"] = own
    return groups


def activation_modules(model: nn.Module) -> dict[str, nn.Module]:
    """Modality -> the module whose output is that modality's encoder output."""
    model = _unwrap(model)
    if isinstance(model, TokenEarlyFusionModel | WhereToFuseModel):  # token models: the tokenisers' output
        return dict(model.tokenizers.items())
    encoders = as_fusion_model(model).encoder_modules()
    return dict(encoders.items()) if encoders is not None else {}


class _Moments:
    """Running sum, sum of squares and count of a tensor's entries (float64, on its device)."""

    def __init__(self) -> None:
        self.total: Tensor | None = None
        self.squares: Tensor | None = None
        self.count = 0

    def add(self, x: Tensor) -> None:
        x = x.detach().double()
        total, squares = x.sum(), x.square().sum()
        self.total = total if self.total is None else self.total + total
        self.squares = squares if self.squares is None else self.squares + squares
        self.count += x.numel()

    def summary(self) -> dict[str, float] | None:
        if self.total is None or self.squares is None or self.count == 0:
            return None
        mean = float(self.total) / self.count
        variance = max(float(self.squares) / self.count - mean * mean, 0.0)
        return {"mean": mean, "std": math.sqrt(variance), "count": self.count}


class TrainingMonitor(L.Callback):
    """The Lightning callback that writes ``monitoring.jsonl`` (see the module docstring).

    Args:
        run_dir: the run directory.
        tensorboard: write TensorBoard scalars when the package is installed (``None``: if
            installed; ``False``: never).
    """

    def __init__(self, run_dir: str | Path, tensorboard: bool | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.records: list[dict[str, Any]] = []
        self._tensorboard = tensorboard
        self._writer: Any = None
        self._groups: dict[str, list[nn.Parameter]] = {}
        self._start: dict[str, list[Tensor]] = {}
        self._grad_sum: dict[str, Tensor] = {}
        self._grad_max: dict[str, Tensor] = {}
        self._steps = 0
        self._moments: dict[str, _Moments] = {}
        self._hooks: list[torch.utils.hooks.RemovableHandle] = []
        self._in_training_step = False
        self._seconds = 0.0  # time spent in this callback's hooks during the current epoch

    # ------------------------------------------------------------------ lifecycle
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        model = cast(nn.Module, pl_module.model)
        self._groups = monitored_modules(model)
        for modality, module in activation_modules(model).items():
            self._hooks.append(module.register_forward_hook(self._activation_hook(modality)))
        if self._tensorboard is not False and getattr(trainer, "is_global_zero", True):
            self._writer = _summary_writer(self.run_dir / "tensorboard", required=bool(self._tensorboard))

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.close()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self.close()

    def close(self) -> None:
        for hook in self._hooks:
            hook.remove()
        self._hooks = []
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _activation_hook(self, modality: str) -> Any:
        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            if self._in_training_step and isinstance(output, Tensor):
                started = time.perf_counter()
                self._moments.setdefault(modality, _Moments()).add(output)
                self._seconds += time.perf_counter() - started

        return hook

    # --------------------------------------------------------------------- epochs
    @torch.no_grad()
    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        started = time.perf_counter()
        self._start = {name: [p.detach().clone() for p in params] for name, params in self._groups.items()}
        self._grad_sum, self._grad_max, self._steps = {}, {}, 0
        self._moments = {}
        self._seconds = time.perf_counter() - started

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._in_training_step = True

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self._in_training_step = False

    @torch.no_grad()
    def on_before_optimizer_step(
        self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        self._in_training_step = False  # the optimiser closure's forward is over; no activation after it
        started = time.perf_counter()
        for name, params in self._groups.items():
            grads = [p.grad for p in params if p.grad is not None]
            if not grads:
                continue
            norm = get_total_norm(grads)
            self._grad_sum[name] = self._grad_sum[name] + norm if name in self._grad_sum else norm
            self._grad_max[name] = torch.maximum(self._grad_max[name], norm) if name in self._grad_max else norm
        self._steps += 1
        self._seconds += time.perf_counter() - started

    @torch.no_grad()
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        started = time.perf_counter()
        record = self.epoch_record(pl_module.current_epoch + 1)
        record["seconds"] = self._seconds + time.perf_counter() - started  # the monitor's own cost (CPU side)
        self.records.append(record)
        if not getattr(trainer, "is_global_zero", True):  # under DDP the run folder is global rank 0's
            return
        text = "".join(json.dumps(r, allow_nan=False) + "\n" for r in self.records)
        atomic_write_text(self.run_dir / MONITORING_FILE, text)
        if self._writer is not None:
            for tag, value in _scalars(record):
                self._writer.add_scalar(tag, value, record["epoch"])
            self._writer.flush()

    def epoch_record(self, epoch: int) -> dict[str, Any]:
        """The record of the epoch that just ended (NaN-free: unknown values are ``None``)."""
        modules: dict[str, dict[str, Any]] = {}
        for name, params in self._groups.items():
            weights = [p.detach() for p in params]
            weight_norm = float(get_total_norm(weights))
            start = self._start.get(name)
            update = float(get_total_norm([w - s for w, s in zip(weights, start, strict=True)])) if start else None
            start_norm = float(get_total_norm(start)) if start else None
            entry: dict[str, Any] = {
                "parameters": sum(p.numel() for p in params),
                "trainable": any(p.requires_grad for p in params),
                "grad_norm": float(self._grad_sum[name]) / self._steps if name in self._grad_sum else None,
                "grad_norm_max": float(self._grad_max[name]) if name in self._grad_max else None,
                "weight_norm": weight_norm,
                "update_ratio": update / start_norm if update is not None and start_norm else None,
            }
            modules[name] = entry
        activations = {m: s for m, moments in sorted(self._moments.items()) if (s := moments.summary()) is not None}
        return {"epoch": epoch, "steps": self._steps, "modules": modules, "activations": activations}


def _scalars(record: Mapping[str, Any]) -> Iterator[tuple[str, float]]:
    for name, entry in record["modules"].items():
        for key in ("grad_norm", "grad_norm_max", "weight_norm", "update_ratio"):
            if entry.get(key) is not None:
                yield f"monitoring/{key}/{name}", float(entry[key])
    for modality, stats in record["activations"].items():
        for key in ("mean", "std"):
            yield f"monitoring/activation_{key}/{modality}", float(stats[key])


def _summary_writer(folder: Path, required: bool) -> Any:
    """``torch.utils.tensorboard.SummaryWriter`` on ``folder`` when tensorboard is installed, else ``None``."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        if required:
            raise ConfigError(
                "TensorBoard monitoring was asked for, but the `tensorboard` package is not installed; "
                "install it (pip install tensorboard) or leave TensorBoard off."
            ) from None
        return None
    folder.mkdir(parents=True, exist_ok=True)
    return SummaryWriter(log_dir=str(folder))


def read_monitoring(run_dir: str | Path) -> list[dict[str, Any]]:
    """The records of ``run_dir/monitoring.jsonl`` (empty when the run was not monitored)."""
    file = Path(run_dir) / MONITORING_FILE
    if not file.is_file():
        return []
    return [json.loads(line) for line in file.read_text().splitlines() if line.strip()]
