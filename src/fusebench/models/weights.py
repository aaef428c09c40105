"""Per-modality encoder weights in safetensors: saved by pre-training, loaded by name.

safetensors holds tensors only, so loading a file a user hands us cannot execute code.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from fusebench.errors import CheckpointError
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


def _describe(metadata: dict[str, str]) -> str:
    parts = [f"`{metadata[k]}`" for k in ("modality", "kind") if metadata.get(k)]
    source = f" from run `{metadata['source_run']}`" if metadata.get("source_run") else ""
    return (" ".join(parts) + " encoder" if parts else "an encoder of unknown kind") + source


def check_encoder_metadata(
    metadata: dict[str, str], file: Path, key: str, modality: str, kind: str | None, input_shape: Sequence[int] | None
) -> None:
    """Refuse weights saved for another modality, encoder kind or input shape, naming both sides.

    Layer names and shapes alone cannot tell an audio CNN from an image CNN of the same
    widths (adaptive pooling makes them identical), so the header written at save time is
    compared first. Files without a header entry (saved elsewhere) skip that comparison.

    Raises:
        ValueError: a recorded modality, kind or input shape differs from the model's.
    """
    saved = _describe(metadata)
    recorded = metadata.get("modality")
    if recorded and recorded != modality:
        raise CheckpointError(
            f"`{key}` is `{file}`, the {saved}, but it is loaded into the `{modality}` encoder; point `{key}` at "
            f"an `{modality}` encoder (encoders/{modality}.safetensors of a pre-training with "
            f"`pretrain.modality: {modality}`)."
        )
    if kind is not None and metadata.get("kind") and metadata["kind"] != kind:
        raise CheckpointError(
            f"`{key}` is `{file}`, the {saved}, but this model's `{modality}` encoder is `{kind}` "
            f"(`model.encoders.{modality}.kind`); pre-train a `{kind}` encoder or set the kind to "
            f"`{metadata['kind']}`."
        )
    if input_shape is not None and metadata.get("input_shape"):
        try:
            trained_on = [int(n) for n in json.loads(metadata["input_shape"])]
        except (ValueError, TypeError):
            trained_on = None
        if trained_on is not None and trained_on != [int(n) for n in input_shape]:
            raise CheckpointError(
                f"`{key}` is `{file}`, the {saved}, trained on inputs of shape {trained_on}, but this run's "
                f"`{modality}` inputs have shape {list(input_shape)}; pre-train on the same data recipe."
            )


def load_encoder(
    encoder: nn.Module,
    path: str | Path,
    modality: str,
    *,
    kind: str | None = None,
    input_shape: Sequence[int] | None = None,
    key: str | None = None,
) -> None:
    """Load weights into ``encoder``; another modality, kind, input shape, or any missing, unexpected or
    mis-shaped layer is an error naming the file's encoder and the model's.

    Args:
        encoder: the model's encoder for ``modality``.
        path: a ``.safetensors`` file written by :func:`save_encoder`.
        modality: the modality the encoder serves.
        kind: the model's encoder kind (``model.encoders.<m>.kind``), checked against the file's header.
        input_shape: the run's input shape for ``modality``, checked against the file's header.
        key: the config key that named ``path`` (for the message); ``model.pretrained.<m>`` by default.
    """
    file = Path(path)
    key = key or f"model.pretrained.{modality}"
    if not file.is_file():
        raise FileNotFoundError(
            f"Pre-trained weights for `{modality}` not found at `{file}`; expected the "
            f"`encoders/{modality}.safetensors` written by `fusebench pretrain`."
        )
    try:
        state = load_file(str(file))
        metadata = read_encoder_metadata(file)
    except (SafetensorError, OSError) as error:
        raise CheckpointError(
            f"Pre-trained weights for `{modality}` at `{file}` are not a safetensors file ({error})."
        ) from None
    check_encoder_metadata(metadata, file, key, modality, kind, input_shape)
    own = encoder.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mine = f"the model's `{modality}` encoder" + (f" (`{kind}`)" if kind else "")
    if missing or unexpected:
        raise CheckpointError(
            f"Pre-trained weights `{file}` ({_describe(metadata)}) do not fit {mine}: missing layers "
            f"{missing[:5]}, unexpected layers {unexpected[:5]}; was it pre-trained with the same encoder kind?"
        )
    for name, tensor in state.items():
        if tuple(tensor.shape) != tuple(own[name].shape):
            raise CheckpointError(
                f"Pre-trained weights `{file}` ({_describe(metadata)}) do not fit {mine}: the `{modality}` "
                f"encoder: layer `{name}` has shape {tuple(tensor.shape)} in the file but "
                f"{tuple(own[name].shape)} in the model (compare `model.encoders.{modality}` with the "
                "pre-training's)."
            )
    encoder.load_state_dict(state)


__all__ = ["load_encoder", "read_encoder_metadata", "save_encoder", "save_file"]
