"""What a trained model costs to keep and to run: size on disk, peak memory, inference throughput.

The thesis reports training cost next to accuracy (000_*.txt, Sec. 7.2.7 "Efficiency vs
Performance Trade-off", Sec. 7.3.1); these are the deployment-side numbers that go with
them, measured per run and written to ``resources.json``:

- ``weights_bytes``: the model's weights as one safetensors file (what evaluation loads;
  strategy-only modules such as auxiliary heads excluded); ``checkpoint_bytes``: the size
  of ``checkpoints/best.ckpt`` (weights plus optimiser state);
- ``peak_rss_bytes``: the process's peak resident memory during the run. On Linux the peak
  is reset when the run starts (``/proc/self/clear_refs``), so it is the run's own
  (``peak_rss_scope: run``); elsewhere it is the process's lifetime peak (``process``).
  ``peak_cuda_bytes``: ``torch.cuda.max_memory_allocated`` since the run started (CUDA only);
- ``inference_samples_per_second``: test samples per second of one eval-mode forward pass
  with every modality present, from raw inputs (frozen encoders included even when
  training used cached features), after one warm-up batch.
"""

from __future__ import annotations

import re
import resource
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save as save_tensors
from torch import nn

from fusebench.data.loader import TensorLoader
from fusebench.data.patterns import pattern_mask

RESOURCES_FILE = "resources.json"
_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")


def reset_peak_memory(device: str) -> str:
    """Start a run's memory peak; returns the scope the RSS peak will have (``run`` or ``process``)."""
    if device == "cuda" and torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    try:
        _CLEAR_REFS.write_text("5")  # Linux: reset the peak RSS (VmHWM) of this process
        return "run"
    except OSError:
        return "process"


def peak_memory(device: str, scope: str) -> dict[str, Any]:
    """Peak resident memory (bytes) since ``reset_peak_memory`` (or of the process), and CUDA's peak."""
    rss: int | None = None
    if scope == "run":
        match = re.search(r"VmHWM:\s+(\d+)\s+kB", _STATUS.read_text()) if _STATUS.is_file() else None
        rss = int(match.group(1)) * 1024 if match else None
    if rss is None:
        scope = "process"
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        rss = int(peak) if sys.platform == "darwin" else int(peak) * 1024  # bytes on macOS, kB on Linux
    cuda = int(torch.cuda.max_memory_allocated()) if device == "cuda" and torch.cuda.is_available() else None
    return {"peak_rss_bytes": rss, "peak_rss_scope": scope, "peak_cuda_bytes": cuda}


def weights_bytes(model: nn.Module, skip: Sequence[str] = ()) -> int:
    """Bytes of ``model``'s state dict as one safetensors file, without top-level modules in ``skip``."""
    state = {
        k: v.detach().cpu().clone().contiguous() for k, v in model.state_dict().items() if k.split(".")[0] not in skip
    }
    return len(save_tensors(state))


#: Samples the inference throughput is timed on (the first ones of the test split): enough
#: batches for a stable rate, without a second pass over a large test split in every run
#: (on the demo that pass cost as much as the test itself; ``benchmarks/results.md``).
THROUGHPUT_SAMPLES = 1024


@torch.no_grad()
def inference_throughput(
    model: nn.Module,
    inputs: Mapping[str, torch.Tensor],
    target: torch.Tensor,
    modalities: Sequence[str],
    batch_size: int,
    device: str,
    lengths: Mapping[str, torch.Tensor] | None = None,
    max_samples: int | None = THROUGHPUT_SAMPLES,
) -> dict[str, Any]:
    """Samples per second of eval-mode forward passes over (the first ``max_samples`` of) ``inputs``.

    Every modality is present. Only the forward passes are timed (each batch is cut and moved
    to ``device`` before its clock starts), in inference mode: no autograd records, and no
    float32 copy of the whole split at once (the split may be a float16 memory map).
    """
    if max_samples is not None and len(target) > max_samples:
        inputs = {m: x[:max_samples] for m, x in inputs.items()}
        target = target[:max_samples]
        lengths = None if lengths is None else {m: v[:max_samples] for m, v in lengths.items()}
    loader = TensorLoader(inputs, target, batch_size, shuffle=False, lengths=lengths)
    was_training = model.training
    model.eval()
    seconds, warm = 0.0, False
    try:
        with torch.inference_mode():
            for batch in loader:
                batch = batch.to(device)
                mask = pattern_mask(tuple(modalities), batch.modalities, batch.size).to(device)
                if not warm:  # warm-up: first-call allocations and kernel selection are not throughput
                    model(batch.inputs, mask, batch.lengths)
                    warm = True
                _synchronize(device)
                started = time.perf_counter()
                model(batch.inputs, mask, batch.lengths)
                _synchronize(device)
                seconds += time.perf_counter() - started
    finally:
        model.train(was_training)
    samples = int(len(target))
    return {
        "inference_samples_per_second": samples / seconds if seconds > 0 else None,
        "inference_seconds": seconds,
        "inference_samples": samples,
        "inference_batch_size": batch_size,
        "inference_device": device,
    }


def _synchronize(device: str) -> None:
    if device == "cuda" and torch.cuda.is_available():
        torch.cuda.synchronize()
