"""Where a run trains: device, processes, nodes, strategy and precision, checked before Lightning sees them.

``experiment.devices``, ``experiment.strategy``, ``experiment.num_nodes`` and
``experiment.precision`` go to ``lightning.Trainer`` unchanged, after the checks Lightning
would otherwise answer with a silent fallback (fp16 AMP on a CPU becomes bf16) or a
traceback (FSDP without CUDA). Several processes share one run folder: only the global rank
0 process owns it (the lock, the status, every result file); the others — the processes
``strategy: ddp`` launches by re-running the command, and every process of a node other
than node 0 — only train with it (:func:`is_follower`).

On a GPU, batches are copied from pinned host memory without blocking the host
(:func:`pin_batches`), or the whole dataset is moved to the GPU once when it fits
(:func:`fits_on_device`) so an epoch is index slicing on the device.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from fusebench.config import RunConfig
from fusebench.errors import ConfigError

#: Share of the free GPU memory the dataset may take when it is moved there whole.
DEVICE_DATA_SHARE = 0.5
_RANK_VARIABLES = ("RANK", "NODE_RANK", "LOCAL_RANK", "SLURM_PROCID")


@dataclass(frozen=True)
class Placement:
    """The checked scale-out settings of one run (see :func:`placement`)."""

    device: str  # "cpu" or "cuda": where this process computes
    devices: int
    num_nodes: int
    strategy: str
    precision: str
    sync_batchnorm: bool

    @property
    def world_size(self) -> int:
        return self.devices * self.num_nodes

    @property
    def accelerator(self) -> str:
        return "gpu" if self.device == "cuda" else "cpu"

    def trainer_arguments(self) -> dict[str, Any]:
        """The keyword arguments of ``lightning.Trainer`` these settings stand for."""
        return {
            "accelerator": self.accelerator,
            "devices": self.devices,
            "num_nodes": self.num_nodes,
            "strategy": self.strategy,
            "precision": "32-true" if self.precision == "32" else self.precision,
            "sync_batchnorm": self.sync_batchnorm,
        }


def placement(config: RunConfig, device: str) -> Placement:
    """``config.experiment``'s scale-out keys for ``device`` (``cpu``/``cuda``, already resolved), checked.

    Raises:
        ConfigError: a combination that cannot run here, named with what would work.
    """
    experiment = config.experiment
    world = experiment.devices * experiment.num_nodes
    if world > 1 and config.training.strategy.gradient_blending == "auto":
        raise ConfigError(
            "`training.strategy.gradient_blending: auto` estimates its weights in one process before "
            "training; with several training processes (`experiment.devices` x `num_nodes` = "
            f"{world}), run the estimate with one device and pass the weights it found."
        )
    if experiment.strategy == "fsdp" and device != "cuda":
        raise ConfigError(
            "`experiment.strategy: fsdp` shards parameters across GPUs and needs "
            "`experiment.device: cuda`; on CPUs use `ddp` or `ddp_spawn`."
        )
    if experiment.precision == "16-mixed" and device != "cuda":
        raise ConfigError(
            "`experiment.precision: 16-mixed` (float16 autocast with loss scaling) needs "
            "`experiment.device: cuda`; on a CPU use `bf16-mixed` or `32`."
        )
    if device == "cuda" and experiment.devices > torch.cuda.device_count():
        raise ConfigError(
            f"`experiment.devices` is {experiment.devices} but this machine has "
            f"{torch.cuda.device_count()} CUDA device(s)."
        )
    return Placement(
        device=device,
        devices=experiment.devices,
        num_nodes=experiment.num_nodes,
        strategy=experiment.strategy,
        precision=experiment.precision,
        sync_batchnorm=experiment.sync_batchnorm and device == "cuda" and world > 1,
    )


def process_rank() -> int:
    """This process's global rank as the launcher set it (``0`` when nothing launched it as one of many).

    Lightning's ``ddp`` launcher gives its child processes ``LOCAL_RANK``; a multi-node job gives
    each machine ``NODE_RANK``; ``torchrun`` sets ``RANK`` and SLURM ``SLURM_PROCID``. Any of them
    above 0 means another process owns the run folder.
    """
    for name in _RANK_VARIABLES:
        value = os.environ.get(name, "0").strip() or "0"
        if not value.isdigit():
            raise ConfigError(f"Expected the environment variable `{name}` to be a rank (0, 1, ...), got `{value}`.")
        if int(value) > 0:
            return int(value)
    return 0


def is_follower() -> bool:
    """True in a process that trains with the others but leaves the run folder to global rank 0."""
    return process_rank() > 0


def pin_batches(device: str) -> bool:
    """Batches go to the GPU from pinned host memory with ``non_blocking`` copies (never on a CPU run)."""
    return device == "cuda" and torch.cuda.is_available()


def tensor_bytes(tensors: Mapping[str, torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors.values())


def fits_on_device(nbytes: int, device: str) -> bool:
    """True when ``nbytes`` of data may live on the GPU: at most :data:`DEVICE_DATA_SHARE` of its free memory."""
    if device != "cuda" or not torch.cuda.is_available():
        return False
    free, _total = torch.cuda.mem_get_info()
    return nbytes <= DEVICE_DATA_SHARE * free


@contextlib.contextmanager
def autocast(precision: str, device: str) -> Iterator[None]:
    """The autocast context Lightning trains ``precision`` under, for evaluation outside the Trainer."""
    if precision == "32":
        yield
        return
    dtype = torch.bfloat16 if precision == "bf16-mixed" else torch.float16
    with torch.autocast(device_type="cuda" if device == "cuda" else "cpu", dtype=dtype):
        yield
