"""Tiny real run configs on an AV-digits subset, shared by the engine and CLI tests.

The subset recipe builds its own small cache once (a few seconds), so tests exercise the
real data pipeline without building all 70,000 pairs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fusebench.config import RunConfig, apply_overrides, validate_config

TINY_SUBSET = 1200
TINY_LIMITS = {"train": 1200, "validation": 300, "test": 400}


def tiny_raw(runs_dir: Path, name: str = "tiny", **sections: Any) -> dict[str, Any]:
    """A small late-fusion config: CNN widths 8/16, 4 epochs, on the AV-digits subset."""
    raw: dict[str, Any] = {
        "experiment": {"name": name, "seed": 0, "runs_dir": str(runs_dir), "threads": 1},
        "data": {"recipe": {"subset": TINY_SUBSET}, "limit": dict(TINY_LIMITS), "batch_size": 64},
        "model": {
            "encoders": {
                "audio": {"kind": "cnn", "out_dim": 32, "widths": [8, 16]},
                "image": {"kind": "cnn", "out_dim": 32, "widths": [8, 16]},
            },
            "fusion": {"type": "late", "method": "concat", "hidden_dim": 64, "dropout": 0.1},
        },
        "training": {"epochs": 4, "optimizer": {"name": "adam", "lr": 0.003}},
        "logging": {"progress_bar": False},
    }
    for section, values in sections.items():
        raw.setdefault(section, {}).update(values)
    return raw


def tiny_config(runs_dir: Path, overrides: list[str] | None = None, **sections: Any) -> RunConfig:
    return validate_config(apply_overrides(tiny_raw(runs_dir, **sections), overrides or []))


def tiny_pretrain_config(runs_dir: Path, modality: str, overrides: list[str] | None = None) -> RunConfig:
    raw = tiny_raw(runs_dir, name=f"tiny_pretrain_{modality}")
    raw["model"] = {"encoders": {modality: raw["model"]["encoders"][modality]}}
    raw["pretrain"] = {"modality": modality}
    return validate_config(apply_overrides(raw, overrides or []))
