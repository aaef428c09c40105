"""The encoder *views* of finished runs that :mod:`fusebench.engine.representations` compares.

For each run, each modality's encoder is read twice where it can be: as the run's best
checkpoint left it (``trained``) and, for an encoder the run loaded from
``model.pretrained``, as that file held it before the multimodal fine-tuning
(``pretrained``). Every such view embeds every split (all modalities present) and carries a
digest of the test inputs and targets, so only views of identical test samples are
compared. Loading runs and embedding their data is kept apart from the comparisons (CKA,
probes, projections), which only read the embeddings.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from torch import Tensor

from fusebench.config import RunConfig, load_config
from fusebench.engine.build import frozen_modalities, used_settings
from fusebench.engine.datasets import SPLITS, DataSplits, load_splits
from fusebench.engine.feature_cache import unwrap
from fusebench.engine.probe import LoadedRun, load_trained_run, split_embeddings
from fusebench.errors import ConfigError
from fusebench.models.contract import as_fusion_model
from fusebench.models.weights import load_encoder

Stage = Literal["trained", "pretrained"]
CKA_SPLIT = "test"


@dataclass(frozen=True)
class View:
    """One encoder as one run left it (or as its pre-trained file held it), with its embeddings.

    Attributes:
        key: ``<run>/<modality>`` (trained) or ``<run>/<modality>@pretrained`` (the file).
        run: the run's label (its folder name).
        modality: the encoder's modality.
        stage: ``trained`` (best checkpoint) or ``pretrained`` (``model.pretrained`` file).
        source: the checkpoint or the weights file the view was read from.
        frozen: whether the run kept this encoder frozen (then both stages are the same weights).
        embeddings: split -> ``[N, D]`` embeddings, every modality present.
        samples: digest of the test inputs and targets (views are compared only when equal).
    """

    key: str
    run: str
    modality: str
    stage: Stage
    source: str
    frozen: bool
    embeddings: dict[str, Tensor]
    samples: str

    @property
    def title(self) -> str:
        """How figures name the view: the run, the modality and which weights it shows."""
        stage = "pre-trained file (before fine-tuning)" if self.stage == "pretrained" else "trained"
        return f"{self.run} {self.modality}: {stage}"

    def describe(self) -> dict[str, Any]:
        """The view's entry in representations.json (no tensors)."""
        return {
            "key": self.key,
            "run": self.run,
            "modality": self.modality,
            "stage": self.stage,
            "source": self.source,
            "frozen": self.frozen,
            "dim": int(self.embeddings[CKA_SPLIT].shape[1]),
            "test_samples": int(self.embeddings[CKA_SPLIT].shape[0]),
        }


@dataclass(frozen=True)
class AnalysedRun:
    """A loaded run, its label and its encoder views."""

    label: str
    loaded: LoadedRun
    views: list[View]

    def describe(self) -> dict[str, Any]:
        """The run's entry in representations.json: where it is, its kind, seed and encoders' origin."""
        config = self.loaded.config
        return {
            "label": self.label,
            "run_dir": str(self.loaded.run_dir),
            "kind": "pretrain" if config.pretrain is not None else "fusion",
            "seed": config.experiment.seed,
            "pretrained": {v.modality: v.source for v in self.views if v.stage == "pretrained"},
            "frozen": frozen_modalities(config),
        }


class DataCache:
    """The splits of each distinct data config, loaded once (the runs of a study share them)."""

    def __init__(self) -> None:
        self._loaded: dict[str, DataSplits] = {}

    def splits(self, config: RunConfig) -> DataSplits:
        """The run's splits, loaded on the first call for its data config, modalities and seed."""
        key = json.dumps(
            [
                config.data.model_dump(mode="json"),
                list(config.modalities()),
                config.experiment.seed,
                config.task.model_dump(mode="json"),
            ],
            sort_keys=True,
        )
        if key not in self._loaded:
            self._loaded[key] = load_splits(
                config.data, config.modalities(), config.experiment.seed, task_settings=config.task
            )
        return self._loaded[key]


def locate_pretrained(path: Path, run_dir: Path) -> Path:
    """A run's ``model.pretrained`` file, also after its study folder was moved.

    Study runs name their encoders by absolute path (``<study>/runs/<node>/encoders/<m>.safetensors``);
    when that path is gone, the same node folder beside ``run_dir`` is tried.

    Raises:
        FileNotFoundError: neither exists.
    """
    if path.is_file():
        return path
    moved = run_dir.parent / path.parent.parent.name / path.parent.name / path.name
    if moved.is_file():
        return moved
    raise FileNotFoundError(
        f"`{run_dir}` was fine-tuned from the pre-trained encoder `{path}` (`model.pretrained` in its config.yaml), "
        f"which no longer exists (nor at `{moved}`); the before/after comparison needs that file."
    )


def _digest(tensors: Iterable[Tensor]) -> str:
    digest = hashlib.sha256()
    for tensor in tensors:
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().contiguous().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def analyse_run(run_dir: str | Path, label: str, cache: DataCache | None = None) -> AnalysedRun:
    """Load a finished run and embed every split with each of its encoders (and pre-trained files).

    Raises:
        RunFolderError: no best checkpoint.
        FileNotFoundError: a pre-trained file that is gone.
        ConfigError: a model without per-modality encoders (early/mid fusion tokenises inside the fusion).
    """
    run_dir = Path(run_dir)
    config = load_config(run_dir / "config.yaml")
    data = (cache or DataCache()).splits(config)
    loaded = load_trained_run(run_dir, data=data)
    encoders = as_fusion_model(unwrap(loaded.model)).encoder_modules()
    if encoders is None:
        raise ConfigError(
            f"`{run_dir}` has no per-modality encoders to analyse (its model is `{type(loaded.model).__name__}`, "
            "which tokenises inputs inside the fusion); analyse late-fusion or pre-training runs."
        )
    batch = config.data.eval_batch_size
    trained = {s: split_embeddings(loaded.model, getattr(data, s), batch) for s in SPLITS}
    frozen = set(frozen_modalities(config))
    samples = {m: _digest([data.test.inputs[m], data.test.target]) for m in encoders}
    checkpoint = str(run_dir / "checkpoints" / "best.ckpt")
    views: list[View] = []
    pretrained = used_settings(config, config.model.pretrained)
    for m in sorted(encoders):
        if m in pretrained:
            file = locate_pretrained(Path(pretrained[m]), run_dir)
            before = copy.deepcopy(loaded.model)
            copied = as_fusion_model(unwrap(before)).encoder_modules()
            if copied is None:  # cannot happen for a copy of a model with encoders; keeps the type narrow
                raise RuntimeError(f"The copy of `{run_dir}`'s model lost its encoders.")
            load_encoder(copied[m], file, m, kind=config.model.encoders[m].kind, input_shape=data.input_shapes[m])
            embedded: dict[str, Tensor] = {s: split_embeddings(before, getattr(data, s), batch)[m] for s in SPLITS}
            views.append(
                View(f"{label}/{m}@pretrained", label, m, "pretrained", str(file), m in frozen, embedded, samples[m])
            )
        views.append(
            View(
                f"{label}/{m}",
                label,
                m,
                "trained",
                checkpoint,
                m in frozen,
                {s: trained[s][m] for s in SPLITS},
                samples[m],
            )
        )
    return AnalysedRun(label, loaded, views)
