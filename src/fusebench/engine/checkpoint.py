"""The one reader of a run's Lightning checkpoint: tensors only, the config that trained them, named errors.

Checkpoints are loaded with ``torch.load(..., weights_only=True)``, which refuses to build
Python objects, so a file that carries pickled code cannot run it. A file that is empty,
truncated, random bytes, pickles an object or holds another model's weights is one
:class:`CheckpointError` that names the file and says what to do — never torch's own
advice to retry with ``weights_only=False``.

Every checkpoint a run writes also holds its resolved config as YAML text
(:class:`StoreConfig`, under :data:`CONFIG_KEY`), the nanoGPT practice of saving the config
that built the model beside its weights: :func:`load_trained_model` rebuilds the model
from that config, so the weights always fit their architecture even if the run folder's
``config.yaml`` was edited afterwards (e.g. to point ``data.root`` at data that moved).
Checkpoints written before the config was stored are rebuilt from ``config.yaml``.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
import yaml
from torch import Tensor, nn

from fusebench.config import RunConfig, dump_config, validate_config
from fusebench.errors import CheckpointError

RETRAIN = "train the run again (`fusebench train ... --overwrite`)"
#: the checkpoint key holding the resolved run config (YAML text)
CONFIG_KEY = "fusebench_config"


@dataclass(frozen=True)
class Checkpoint:
    """A fusebench checkpoint's tensors and, where it stored one, the config that trained them."""

    path: Path
    state: dict[str, Tensor]
    config: RunConfig | None


class StoreConfig(L.Callback):
    """Writes the run's resolved config into every checkpoint Lightning saves."""

    def __init__(self, config: RunConfig) -> None:
        self.text = dump_config(config)

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        checkpoint[CONFIG_KEY] = self.text


def read_checkpoint(path: Path) -> Checkpoint:
    """The tensors and the stored config of the fusebench checkpoint at ``path``.

    Raises:
        FileNotFoundError: there is no file at ``path``.
        CheckpointError: the file is empty, truncated, not a checkpoint, carries Python
            objects, holds no ``state_dict`` of tensors, or a stored config that is not valid.
    """
    if not path.is_file():
        raise FileNotFoundError(f"Expected a trained checkpoint at `{path}`, but there is none.")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        found = re.search(r"unsupported global:? (?:GLOBAL )?([\w.]+)", str(error), flags=re.IGNORECASE)
        if found:
            raise CheckpointError(
                f"Checkpoint `{path}` holds a Python object (`{found.group(1)}`) besides tensors. fusebench loads "
                "checkpoints as tensors only and will not run code from a file; a checkpoint written by fusebench "
                f"never holds one, so this file was replaced or tampered with: {RETRAIN}."
            ) from None
        raise CheckpointError(_unreadable(path, error)) from None
    except Exception as error:  # noqa: BLE001 - torch raises RuntimeError, EOFError, IndexError... for bad bytes
        raise CheckpointError(_unreadable(path, error)) from None
    state = checkpoint.get("state_dict") if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, Tensor) for k, v in state.items()):
        raise CheckpointError(
            f"Checkpoint `{path}` holds no `state_dict` of tensors; expected a checkpoint written by fusebench "
            f"training: {RETRAIN}."
        )
    return Checkpoint(path, state, _stored_config(path, checkpoint.get(CONFIG_KEY)))


def _stored_config(path: Path, text: object) -> RunConfig | None:
    if text is None:
        return None
    try:
        raw = yaml.safe_load(text) if isinstance(text, str) else None
    except yaml.YAMLError:
        raw = None
    if not isinstance(raw, dict):
        raise CheckpointError(f"Checkpoint `{path}` holds a damaged `{CONFIG_KEY}` (not a YAML mapping): {RETRAIN}.")
    return validate_config(raw, f"stored in checkpoint `{path}`")


def read_checkpoint_state(path: Path) -> dict[str, Tensor]:
    """The ``state_dict`` of the fusebench checkpoint at ``path`` (see :func:`read_checkpoint`)."""
    return read_checkpoint(path).state


def _unreadable(path: Path, error: BaseException) -> str:
    size = path.stat().st_size
    what = "is empty (0 bytes)" if size == 0 else f"is truncated or not a PyTorch checkpoint ({size} bytes)"
    return f"Checkpoint `{path}` {what}; torch could not read it ({type(error).__name__}). Re-create it: {RETRAIN}."


def _canonical(key: str) -> str:
    """A state key without Lightning's ``model.`` prefix and the feature-cache wrapper's ``inner.`` prefix.

    A run that trained on cached frozen features saved ``model.inner.<layer>``; the model a
    probe or a re-evaluation rebuilds may or may not be wrapped again, so keys are matched
    without both prefixes.
    """
    return key.removeprefix("model.").removeprefix("inner.")


def load_model_state(model: nn.Module, checkpoint: Path | Checkpoint, drop: Iterable[str] = ()) -> None:
    """Load a checkpoint into ``model``, wrapped by the frozen-feature cache or not.

    Args:
        model: the freshly built model of the run.
        checkpoint: the checkpoint file, or one already read.
        drop: top-level module names to leave out (training-only modules strategies attach).

    Raises:
        CheckpointError: unreadable, or its layers do not fit ``model`` (names the first few).
    """
    read = checkpoint if isinstance(checkpoint, Checkpoint) else read_checkpoint(checkpoint)
    dropped = set(drop)
    own = model.state_dict()
    by_canonical = {_canonical(k): k for k in own}
    state: Mapping[str, Tensor] = {
        by_canonical.get(_canonical(key), _canonical(key)): value
        for key, value in read.state.items()
        if _canonical(key).split(".")[0] not in dropped
    }
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    wrong = [k for k in sorted(set(own) & set(state)) if tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or wrong:
        raise CheckpointError(
            f"Checkpoint `{read.path}` does not fit this run's model (was `config.yaml` edited after training?): "
            f"missing layers {missing[:5]}, unexpected layers {unexpected[:5]}, layers of another shape "
            f"{[(k, tuple(state[k].shape), tuple(own[k].shape)) for k in wrong[:5]]}."
        )
    model.load_state_dict(state)


def trained_config(checkpoint: Checkpoint, config: RunConfig) -> RunConfig:
    """The config whose model the checkpoint holds: ``config`` with the checkpoint's stored ``model`` and
    ``pretrain`` sections (``config`` alone for a checkpoint written before configs were stored).

    ``model.pretrained`` is emptied: the checkpoint holds every weight, and the pre-trained
    files it started from may have moved or gone.
    """
    source = checkpoint.config or config
    model = source.model.model_copy(update={"pretrained": {}})
    return config.model_copy(update={"model": model, "pretrain": source.pretrain})


def load_trained_model(
    checkpoint: Path | Checkpoint,
    config: RunConfig,
    input_shapes: Mapping[str, Sequence[int]],
    output_size: int,
    modality_info: Mapping[str, Any] | None = None,
    drop: Iterable[str] = (),
) -> nn.Module:
    """The model the checkpoint's config describes, with the checkpoint's weights, in train mode.

    Args:
        checkpoint: the run's ``checkpoints/best.ckpt`` (or one already read).
        config: the run folder's ``config.yaml`` (its data may have moved since training).
        input_shapes, output_size, modality_info: the data's facts (``DataSplits``).
        drop: top-level module names strategies attached during training, left out.

    Raises:
        CheckpointError: unreadable, or its weights do not fit the stored config's model.
    """
    from fusebench.engine.build import build_model

    read = checkpoint if isinstance(checkpoint, Checkpoint) else read_checkpoint(checkpoint)
    model = build_model(trained_config(read, config), input_shapes, output_size, modality_info)
    if not isinstance(model, nn.Module):
        raise TypeError(f"Expected `build_model` to return an nn.Module, got `{type(model).__name__}`.")
    load_model_state(model, read, drop)
    return model
