"""Reading a run's Lightning checkpoint safely: tensors only, and every bad file named with its fix.

Checkpoints are loaded with ``torch.load(..., weights_only=True)``, which refuses to build
Python objects, so a file that carries pickled code cannot run it. A file that is empty,
truncated, random bytes, pickles an object or holds another model's weights is one
:class:`CheckpointError` that names the file and says what to do — never torch's own
advice to retry with ``weights_only=False``.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

RETRAIN = "train the run again (`fusebench train ... --overwrite`)"


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used, explained in one paragraph."""


def read_checkpoint_state(path: Path) -> dict[str, Tensor]:
    """The ``state_dict`` of the fusebench checkpoint at ``path``.

    Raises:
        FileNotFoundError: there is no file at ``path``.
        CheckpointError: the file is empty, truncated, not a checkpoint, carries Python
            objects, or holds no ``state_dict`` of tensors.
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
    return state


def _unreadable(path: Path, error: BaseException) -> str:
    size = path.stat().st_size
    what = "is empty (0 bytes)" if size == 0 else f"is truncated or not a PyTorch checkpoint ({size} bytes)"
    return f"Checkpoint `{path}` {what}; torch could not read it ({type(error).__name__}). Re-create it: {RETRAIN}."


def load_model_state(model: nn.Module, path: Path, drop: Iterable[str] = ()) -> None:
    """Load the checkpoint at ``path`` into ``model`` (keys without Lightning's ``model.`` prefix).

    Args:
        model: the freshly built model of the run.
        path: the checkpoint.
        drop: top-level module names to leave out (training-only modules strategies attach).

    Raises:
        CheckpointError: unreadable, or its layers do not fit ``model`` (names the first few).
    """
    dropped = set(drop)
    state: Mapping[str, Tensor] = {
        key: value
        for key, value in ((k.removeprefix("model."), v) for k, v in read_checkpoint_state(path).items())
        if key.split(".")[0] not in dropped
    }
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    wrong = [k for k in sorted(set(own) & set(state)) if tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or wrong:
        raise CheckpointError(
            f"Checkpoint `{path}` does not fit this run's model (was `config.yaml` edited after training?): "
            f"missing layers {missing[:5]}, unexpected layers {unexpected[:5]}, layers of another shape "
            f"{[(k, tuple(state[k].shape), tuple(own[k].shape)) for k in wrong[:5]]}."
        )
    model.load_state_dict(state)
