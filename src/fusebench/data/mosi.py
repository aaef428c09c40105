"""CMU-MOSI and CMU-MOSEI in the dataset registry: audio, text and vision feature sequences.

Both datasets are read from the feature pickles that MultiBench or MMSA distribute
(layouts in :mod:`fusebench.data.mosi_layouts`), through the restricted unpickler of
:mod:`fusebench.data.safe_pickle`: a pickle that names anything but numpy arrays and
builtin containers is refused before it can run. Nothing is downloaded.

The file is ``<root>/<file>``: ``data.root`` (or, when unset, ``$FUSEBENCH_DATA/mosi`` resp.
``$FUSEBENCH_DATA/mosei``) and ``data.file`` (default ``mosi_raw.pkl`` / ``mosei_senti_data.pkl``,
MultiBench's names; an absolute ``file`` is used as is). ``data.format: auto`` tells the
layouts apart by the label key of the train split (``labels``: MultiBench,
``regression_labels``: MMSA).

Tasks derived from the sentiment score ``s`` in [-3, 3] (``data.task``):

- ``regression`` (default): ``s`` itself, L1 loss and MMSA's metrics (MAE, Pearson r, Acc-2
  has-zero / non-zero with their F1, Acc-5, Acc-7), as MMSA trains and reports MOSI;
- ``classification2``: negative (``s < 0``) vs non-negative (``s >= 0``), MMSA's "has-zero"
  binary reading (``binary_truth = test_truth >= 0`` in ``MetricsTop.__eval_mosei_regression``);
- ``classification3``: negative (``s < 0``), neutral (``s = 0``), positive (``s > 0``), the
  three classes of the source thesis (../shared/papers/000_87b8c67c0181efe3.txt, Section 4.3,
  "negative (score < 0), neutral (score = 0), and positive (score > 0)"; Table 4.1).

Non-finite feature values (MOSI's COVAREP audio has ``-inf``; MMSA and MultiBench both set
them to 0) are counted per split and modality, logged, and by default (``data.nonfinite:
zero``) replaced by 0; ``nonfinite: error`` refuses such a file instead. Labels must always be
finite and in [-3, 3].
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import Field

from fusebench.data.mosi_layouts import (
    MODALITIES,
    SPLIT_KEYS,
    Alignment,
    LayoutName,
    LengthRule,
    RawSplit,
    TextField,
    check_top_level,
    detect_layout,
    read_split,
)
from fusebench.data.options import DataOptions
from fusebench.data.registry import DatasetEntry, DatasetInfo, LoadedDataset, ModalityInfo, Split, register_dataset
from fusebench.data.safe_pickle import load_pickle
from fusebench.errors import DataError
from fusebench.tasks import Task

_log = logging.getLogger(__name__)
SentimentTask = Literal["regression", "classification2", "classification3"]
DATA_ENV_VAR = "FUSEBENCH_DATA"


class SentimentOptions(DataOptions):
    """``data:`` keys shared by ``mosi`` and ``mosei``."""

    root: str | None = Field(default=None, description="folder of the pickle; else $FUSEBENCH_DATA/<dataset>")
    file: str = Field(default="", description="pickle file name in `root` (or an absolute path)")
    format: Literal["auto", "multibench", "mmsa"] = Field(
        default="auto", description="pickle layout; auto: `labels` -> multibench, `regression_labels` -> mmsa"
    )
    task: SentimentTask = Field(default="regression", description="regression | classification2 | classification3")
    nonfinite: Literal["zero", "error"] = Field(
        default="zero", description="NaN/Inf feature values: replace by 0 (counted and logged), or refuse the file"
    )
    lengths: LengthRule = Field(
        default="padding", description="padding: per-sample lengths from the padding; full: every step is data"
    )
    multibench_alignment: Alignment = Field(
        default="aligned", description="MultiBench padding: text's leading zero rows (aligned) or each modality's"
    )
    text_field: TextField = Field(default="text", description="MMSA text: `text` features or `text_bert` token ids")


class MOSIOptions(SentimentOptions):
    """``data:`` for CMU-MOSI (2,199 clips; MultiBench/MMSA splits 1,284 / 229 / 686)."""

    dataset: Literal["mosi"] = "mosi"
    file: str = Field(default="mosi_raw.pkl", description="pickle file name in `root` (or an absolute path)")


class MOSEIOptions(SentimentOptions):
    """``data:`` for CMU-MOSEI (sentiment; MultiBench/MMSA splits 16,326 / 1,871 / 4,659)."""

    dataset: Literal["mosei"] = "mosei"
    file: str = Field(default="mosei_senti_data.pkl", description="pickle file name in `root` (or an absolute path)")


def sentiment_task(options: SentimentOptions) -> Task:
    """The task ``options.task`` names, without reading the file."""
    if options.task == "classification2":
        return Task("multiclass", 2, label_names=("negative", "non-negative"))
    if options.task == "classification3":
        return Task("multiclass", 3, label_names=("negative", "neutral", "positive"))
    return Task("regression", 1, target_range=(-3.0, 3.0))


def sentiment_target(scores: np.ndarray, task: SentimentTask) -> torch.Tensor:
    """The target of ``task`` from scores ``[N]``: the score, or the class (see the module docstring).

    >>> sentiment_target(np.array([-0.4, 0.0, 2.2], dtype=np.float32), "classification3").tolist()
    [0, 1, 2]
    >>> sentiment_target(np.array([-0.4, 0.0, 2.2], dtype=np.float32), "classification2").tolist()
    [0, 1, 1]
    """
    values = torch.from_numpy(np.ascontiguousarray(scores, dtype=np.float32))
    if task == "classification2":
        return (values >= 0).long()
    if task == "classification3":
        return (torch.sign(values) + 1).long()
    return values


def pickle_path(options: SentimentOptions) -> Path:
    """``<root>/<file>``; an absolute ``file`` wins, ``$FUSEBENCH_DATA/<dataset>`` is the default root."""
    file = Path(options.file).expanduser()
    if file.is_absolute():
        return file
    if options.root is not None:
        return Path(options.root).expanduser() / file
    env = os.environ.get(DATA_ENV_VAR)
    if env:
        return Path(env).expanduser() / options.dataset / file
    raise FileNotFoundError(
        f"Dataset `{options.dataset}` needs its feature pickle (`{options.file}`, MultiBench or MMSA layout); set "
        f"`data.root=/folder/with/it` (or `data.file=/absolute/path.pkl`), or put it at "
        f"`${DATA_ENV_VAR}/{options.dataset}/{options.file}`. fusebench does not download it."
    )


def load(options: SentimentOptions) -> LoadedDataset:
    """Read, check and convert the pickle into three splits with per-sample lengths."""
    path = pickle_path(options)
    if not path.is_file():
        raise FileNotFoundError(
            f"Expected the {options.dataset.upper()} feature pickle at `{path}` (a MultiBench `mosi_raw.pkl` / "
            f"`mosei_senti_data.pkl` or an MMSA `aligned_50.pkl` / `unaligned_50.pkl`: a dict with `train`, "
            "`valid` and `test` splits); found nothing there. Set `data.root` / `data.file`."
        )
    data = check_top_level(load_pickle(path), str(path))
    layout: LayoutName = detect_layout(data, str(path)) if options.format == "auto" else options.format
    raw = {
        name: read_split(
            data[key],
            f"`{path}`[`{key}`]",
            layout,
            alignment=options.multibench_alignment,
            lengths=options.lengths,
            text_field=options.text_field,
        )
        for name, key in SPLIT_KEYS.items()
    }
    _check_shapes(raw, path)
    _handle_nonfinite(raw, path, options.nonfinite)
    for note in (n for split in raw.values() for n in split.notes):
        _log.warning("%s", note)
    splits = {name: _to_split(split, options.task) for name, split in raw.items()}
    info = DatasetInfo(
        modalities={
            m: ModalityInfo("text" if x.ndim == 2 else "sequence", tuple(x.shape[1:]), options.lengths == "padding")
            for m, x in sorted(raw["train"].features.items())
        },
        task=sentiment_task(options),
    )
    return LoadedDataset(splits["train"], splits["validation"], splits["test"], info)


def _check_shapes(raw: dict[str, RawSplit], path: Path) -> None:
    """Every split must have the train split's per-sample shape (steps and features) in every modality."""
    for m in MODALITIES:
        shapes = {SPLIT_KEYS[name]: tuple(split.features[m].shape[1:]) for name, split in raw.items()}
        if len(set(shapes.values())) != 1:
            raise DataError(
                f"Expected `{path}` to have the same per-sample shape of `{m}` in every split, got {shapes} "
                "(steps, features)."
            )


def _handle_nonfinite(raw: dict[str, RawSplit], path: Path, rule: str) -> None:
    counts = {
        f"{SPLIT_KEYS[name]}/{m}": int((~np.isfinite(x)).sum())
        for name, split in raw.items()
        for m, x in split.features.items()
        if x.dtype.kind == "f"
    }
    counts = {where: n for where, n in counts.items() if n}
    if not counts:
        return
    total, detail = sum(counts.values()), ", ".join(f"{where}: {n}" for where, n in counts.items())
    if rule == "error":
        raise DataError(
            f"Expected finite features in `{path}`, got {total} NaN/Inf values ({detail}); set "
            "`data.nonfinite=zero` to replace them by 0."
        )
    for split in raw.values():
        for m, x in split.features.items():
            if x.dtype.kind == "f":
                split.features[m] = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    _log.warning("%s: %d NaN/Inf feature values (%s) replaced by 0 (data.nonfinite=zero).", path, total, detail)


def _to_split(split: RawSplit, task: SentimentTask) -> Split:
    inputs = {m: torch.from_numpy(np.ascontiguousarray(x)) for m, x in sorted(split.features.items())}
    inputs = {m: x.long() if x.ndim == 2 else x.float() for m, x in inputs.items()}
    lengths = None if split.lengths is None else {m: torch.from_numpy(v) for m, v in sorted(split.lengths.items())}
    return Split(inputs, sentiment_target(split.scores, task), lengths)


_SUMMARY = (
    "{name} sentiment: audio + text + vision feature sequences from the MultiBench or MMSA pickle "
    "(data.root); regression in [-3, 3] (MAE, Acc-2/5/7) or 2/3 classes"
)
MOSI_ENTRY = register_dataset(
    DatasetEntry(
        name="mosi",
        options=MOSIOptions,
        load=load,
        task=sentiment_task,
        summary=_SUMMARY.format(name="CMU-MOSI"),
    )
)
MOSEI_ENTRY = register_dataset(
    DatasetEntry(
        name="mosei",
        options=MOSEIOptions,
        load=load,
        task=sentiment_task,
        summary=_SUMMARY.format(name="CMU-MOSEI"),
    )
)
