"""Per-modality encoder weights in safetensors: saved by pre-training, loaded by name.

safetensors holds tensors only, so loading a file a user hands us cannot execute code.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from fusebench.io import atomic_write_bytes


def save_encoder(encoder: nn.Module, path: str | Path, metadata: Mapping[str, str] | None = None) -> Path:
    """Save ``encoder``'s state dict atomically with string ``metadata`` in the header."""
    from safetensors.torch import save

    state = {k: v.detach().contiguous().cpu() for k, v in encoder.state_dict().items()}
    return atomic_write_bytes(path, save(state, metadata=dict(metadata or {})))


def read_encoder_metadata(path: str | Path) -> dict[str, str]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        return dict(handle.metadata() or {})


def load_encoder(encoder: nn.Module, path: str | Path, modality: str) -> None:
    """Load weights into ``encoder``; every missing, unexpected or mis-shaped layer is an error naming it."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(
            f"Pre-trained weights for `{modality}` not found at `{file}`; expected the "
            f"`encoders/{modality}.safetensors` written by `fusebench pretrain`."
        )
    try:
        state = load_file(str(file))
    except (SafetensorError, OSError) as error:
        raise ValueError(
            f"Pre-trained weights for `{modality}` at `{file}` are not a safetensors file ({error})."
        ) from None
    own = encoder.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise ValueError(
            f"Pre-trained weights `{file}` do not fit the `{modality}` encoder: missing layers {missing[:5]}, "
            f"unexpected layers {unexpected[:5]}; was it pre-trained with the same encoder kind?"
        )
    for key, tensor in state.items():
        if tuple(tensor.shape) != tuple(own[key].shape):
            raise ValueError(
                f"Pre-trained weights `{file}` do not fit the `{modality}` encoder: layer `{key}` has shape "
                f"{tuple(tensor.shape)} in the file but {tuple(own[key].shape)} in the model."
            )
    encoder.load_state_dict(state)


__all__ = ["load_encoder", "read_encoder_metadata", "save_encoder", "save_file"]
