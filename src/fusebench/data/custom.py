"""Your own data: a folder of ``.npy`` arrays described by a ``dataset.yaml`` (dataset ``folder``).

Layout (docs/datasets/custom.md)::

    <root>/dataset.yaml          modalities (kind, shape, variable_length) and the task
    <root>/train/<modality>.npy  [N, *shape] per modality (or .npz holding one array)
    <root>/train/labels.npy      [N] class ids | [N, L] multi-hot | [N] float scores
    <root>/train/<modality>.lengths.npy   [N] valid steps, variable-length modalities only
    <root>/test/...              the same files
    <root>/validation/...        optional: else a seeded fraction of train

Every file is checked against ``dataset.yaml`` before anything trains: its per-sample
shape, its dtype, the label values for the task kind (:meth:`Task.check_target`), the
lengths, finite values, and that all files of a split hold the same number of samples.
Each problem is one error naming the file, what was expected and what was found.

``.npy`` files whose dtype needs no conversion (float32 inputs, int64 token ids) are
memory-mapped copy-on-write, so a dataset larger than memory trains by reading the rows
each batch needs; ``limit`` slices before anything is read. ``.npz`` files and converted
dtypes are read into memory.
"""

from __future__ import annotations

import difflib
import hashlib
from pathlib import Path
from typing import Literal

import torch
from pydantic import Field, field_validator

from fusebench.data.custom_arrays import SUFFIXES, check_finite, read_array, to_input, to_lengths, to_target
from fusebench.data.custom_spec import LAYOUT, SPEC_FILE, DatasetSpec, read_spec
from fusebench.data.options import SPLITS, DataOptions, SplitName
from fusebench.data.registry import DatasetEntry, DatasetInfo, LoadedDataset, Split, register_dataset
from fusebench.errors import DataError
from fusebench.tasks import Task

NAME = "folder"
#: Share of train held out for validation when the folder has no ``validation/``.
DEFAULT_VALIDATION_FRACTION = 0.1


class FolderOptions(DataOptions):
    """``data:`` for a dataset folder in the documented layout."""

    dataset: Literal["folder"] = "folder"
    root: str | None = Field(default=None, description="the dataset folder (holds dataset.yaml); e.g. data.root=/path")
    validation_fraction: float | None = Field(
        default=None,
        gt=0.0,
        lt=1.0,
        description=f"held-out share of train when the folder has no validation/ (default "
        f"{DEFAULT_VALIDATION_FRACTION}); an error when it has one",
    )
    split_seed: int = Field(
        default=0,
        description="seed of that held-out draw (not the run seed: every run of a study validates on the same samples)",
    )
    memory_map: bool = Field(default=True, description="memory-map .npy files that need no dtype conversion")
    check_finite: bool = Field(default=True, description="refuse float inputs holding NaN or Inf")

    @field_validator("root")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        """Relative to where the config is used (the resolved config.yaml then says which folder ran)."""
        return None if value is None else str(Path(value).expanduser().absolute())

    def content_options(self) -> dict[str, object]:
        skip = {"memory_map", "check_finite"}
        return {k: v for k, v in super().content_options().items() if k not in skip}

    def digest(self) -> str:
        """Options plus a fingerprint of the folder (dataset.yaml's bytes, each array's size and mtime),
        so a study's ``--resume`` notices files rewritten in place."""
        fingerprint = hashlib.sha256(super().digest().encode())
        root = Path(self.root) if self.root else None
        if root is not None and (root / SPEC_FILE).is_file():
            fingerprint.update((root / SPEC_FILE).read_bytes())
            for file in sorted(p for p in root.glob("*/*") if p.suffix in SUFFIXES):
                stat = file.stat()
                fingerprint.update(f"{file.relative_to(root)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
        return f"{NAME}:{fingerprint.hexdigest()[:16]}"


def dataset_root(options: FolderOptions) -> Path:
    if options.root is None:
        raise DataError(
            f"Dataset `folder` needs its folder: set `data.root` (e.g. the override "
            f"`data.root=/path/to/mydata`). {LAYOUT}"
        )
    return Path(options.root)


def folder_task(options: FolderOptions) -> Task:
    """The task ``dataset.yaml`` declares; reads nothing else."""
    return read_spec(dataset_root(options)).build_task()


def _split_files(root: Path, split: SplitName, spec: DatasetSpec) -> dict[str, Path] | None:
    """``{stem: file}`` of a split folder (``None`` if there is no such folder); unknown array files are errors."""
    folder = root / split
    if not folder.is_dir():
        return None
    expected = ["labels", *spec.modalities, *(f"{m}.lengths" for m, s in spec.modalities.items() if s.variable_length)]
    found: dict[str, Path] = {}
    for file in sorted(folder.iterdir()):
        if file.suffix not in SUFFIXES:
            continue
        stem = file.name[: -len(file.suffix)]
        if stem not in expected:
            close = difflib.get_close_matches(stem, expected, n=1, cutoff=0.6)
            hint = f"did you mean `{close[0]}{file.suffix}`?" if close else f"expected {expected} (.npy or .npz)"
            if stem.endswith(".lengths") and stem.removesuffix(".lengths") in spec.modalities:
                hint = f"`{stem.removesuffix('.lengths')}` is not `variable_length` in `{root / SPEC_FILE}`"
            raise DataError(f"`{file}` is not part of the dataset declared in `{root / SPEC_FILE}` ({hint}).")
        if stem in found:
            raise DataError(f"`{found[stem]}` and `{file}` both hold `{stem}`; keep one of them.")
        found[stem] = file
    missing = [stem for stem in expected if stem not in found]
    if missing:
        raise FileNotFoundError(f"Split folder `{folder}` lacks {[f'{s}.npy' for s in missing]} (or .npz). {LAYOUT}")
    return found


def _read_split(
    root: Path, split: SplitName, files: dict[str, Path], spec: DatasetSpec, task: Task, options: FolderOptions
) -> Split:
    mmap = options.memory_map
    arrays = {stem: read_array(file, mmap) for stem, file in files.items()}
    counts = {files[stem].name: int(a.shape[0]) if a.ndim else 0 for stem, a in arrays.items()}
    if len(set(counts.values())) > 1:
        raise DataError(
            f"Expected every file of split `{split}` in `{root / split}` to hold the same number of "
            f"samples, got {counts}."
        )
    limit = options.limit.get(split) if split != "train" or (root / "validation").is_dir() else None
    if limit is not None:  # read only the first rows (views of a memory map)
        arrays = {stem: a[:limit] for stem, a in arrays.items()}
    inputs, lengths = {}, {}
    for m, modality in sorted(spec.modalities.items()):
        inputs[m] = to_input(arrays[m], modality, files[m], m, root / SPEC_FILE)
        if options.check_finite:
            check_finite(inputs[m], files[m])
        if modality.variable_length:
            lengths[m] = to_lengths(arrays[f"{m}.lengths"], modality.shape[0], files[f"{m}.lengths"])
    target = to_target(arrays["labels"], task, files["labels"])
    return Split(inputs, target, lengths or None)


def _carve(train: Split, fraction: float, seed: int, where: Path) -> tuple[Split, Split]:
    """``(train, validation)``: a seeded ``fraction`` of ``train`` held out, both kept in their file order."""
    n = len(train)
    held = round(fraction * n)
    if not 1 <= held < n:
        raise DataError(
            f"`data.validation_fraction` {fraction} of the {n} samples in `{where}` holds out {held}; "
            "expected at least 1 sample held out and 1 left for training."
        )
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return train.rows(torch.sort(order[held:]).values), train.rows(torch.sort(order[:held]).values)


def load_folder(options: FolderOptions) -> LoadedDataset:
    """Read and check every split of the folder ``options.root``.

    Raises:
        FileNotFoundError: no folder, no dataset.yaml, no train/ or test/, or a missing file.
        ValueError: a file that does not fit dataset.yaml (one error naming it).
    """
    root = dataset_root(options)
    spec = read_spec(root)
    task = spec.build_task()
    files = {split: _split_files(root, split, spec) for split in SPLITS}
    for split in ("train", "test"):
        if files[split] is None:
            raise FileNotFoundError(f"Dataset folder `{root}` has no `{split}/` folder. {LAYOUT}")
    splits = {
        split: _read_split(root, split, found, spec, task, options)
        for split, found in files.items()
        if found is not None
    }
    if "validation" in splits:
        if options.validation_fraction is not None:
            raise DataError(
                f"`data.validation_fraction` is {options.validation_fraction}, but `{root}` has its own "
                "`validation/` split; remove one of the two."
            )
    else:
        fraction = options.validation_fraction or DEFAULT_VALIDATION_FRACTION
        splits["train"], splits["validation"] = _carve(splits["train"], fraction, options.split_seed, root / "train")
    return LoadedDataset(splits["train"], splits["validation"], splits["test"], DatasetInfo(spec.modality_info(), task))


ENTRY = register_dataset(
    DatasetEntry(
        name=NAME,
        options=FolderOptions,
        load=load_folder,
        task=folder_task,
        summary="your own data: one .npy per modality per split plus labels, described by dataset.yaml "
        "(docs/datasets/custom.md); any task kind",
    )
)

__all__ = ["ENTRY", "FolderOptions", "folder_task", "load_folder"]
