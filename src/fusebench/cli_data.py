"""``fusebench data``: list the registered datasets, prepare or check one."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from fusebench.cli_common import console, user_errors
from fusebench.errors import ConfigError

data_app = typer.Typer(no_args_is_help=True, help="List, prepare and check datasets.")


def dataset_options(dataset: str, settings: list[str] | None, **given: Any) -> Any:
    """The validated options of ``dataset`` from ``--set key=value`` items and explicit values."""
    from pydantic import ValidationError

    from fusebench.config import explain_validation_error, parse_override
    from fusebench.data.registry import get_dataset

    entry = get_dataset(dataset)
    raw: dict[str, Any] = {"dataset": dataset, **{k: str(v) for k, v in given.items() if v is not None}}
    for item in settings or []:
        path, value = parse_override(item)
        node = raw
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    try:
        return entry.options.model_validate(raw)
    except ValidationError as error:
        raise explain_validation_error(
            error, f"for dataset `{dataset}` (from --set)", root=entry.options, kind="data options"
        ) from None


@data_app.command("list")
@user_errors
def data_list() -> None:
    """The registered datasets (built in and from `fusebench.datasets` entry points)."""
    from fusebench.data.registry import broken_entry_points, dataset_names, get_dataset

    table = Table(title="datasets (`data.dataset`)")
    for column in ("name", "description"):
        table.add_column(column)
    for name in dataset_names():
        table.add_row(name, get_dataset(name).summary)
    for name, why in sorted(broken_entry_points().items()):
        if name not in dataset_names():
            table.add_row(name, f"[red]unavailable:[/] {escape(why)}")
    console.print(table)


@data_app.command("prepare")
@user_errors
def data_prepare(
    dataset: Annotated[str, typer.Argument()] = "avdigits",
    root: Annotated[Path | None, typer.Option(help="source data folder")] = None,
    cache_dir: Annotated[Path | None, typer.Option(help="cache folder (AV-digits)")] = None,
    force: Annotated[bool, typer.Option(help="rebuild even if the cache is current (AV-digits)")] = False,
    settings: Annotated[
        list[str] | None, typer.Option("--set", help="dataset option key=value, e.g. recipe.snr_db=0")
    ] = None,
) -> None:
    """Build AV-digits' cache, or read and check any other dataset's files; prints what it holds."""
    from fusebench.data.registry import get_dataset

    start = time.perf_counter()
    if dataset == "avdigits":
        from fusebench.data.avdigits import prepare_avdigits

        options = dataset_options(dataset, settings, root=root, cache_dir=cache_dir)
        folder = prepare_avdigits(
            options.recipe, source_root=options.root, cache_dir=options.cache_dir, force=force, progress=True
        )
        console.print(f"avdigits ready in {time.perf_counter() - start:.1f} s: {folder}", highlight=False)
        return
    if force or cache_dir is not None:
        raise ConfigError(f"`--force` and `--cache-dir` apply to the AV-digits cache only, not to `{dataset}`.")
    options = dataset_options(dataset, settings, root=root)
    loaded = get_dataset(dataset).load(options)
    sizes = ", ".join(f"{name} {len(loaded.split(name))}" for name in ("train", "validation", "test"))
    console.print(
        f"{dataset} read and checked in {time.perf_counter() - start:.1f} s: {sizes}; {loaded.info.describe()}",
        highlight=False,
        soft_wrap=True,
    )


@data_app.command("export")
@user_errors
def data_export(
    dataset: Annotated[str, typer.Argument(help="the dataset to export (avdigits)")],
    out_dir: Annotated[Path, typer.Argument(help="folder to write the files into")],
    *,
    format: Annotated[str, typer.Option("--format", help="the layout to write (avmnist)")] = "avmnist",
    root: Annotated[Path | None, typer.Option(help="AV-digits source data folder")] = None,
    cache_dir: Annotated[Path | None, typer.Option(help="AV-digits cache folder")] = None,
    dtype: Annotated[str, typer.Option(help="float32 (MultiBench's loader needs it) or uint8")] = "float32",
    keep_all: Annotated[bool, typer.Option(help="write every pair, not MultiBench's 11 train : 1 validation")] = False,
    force: Annotated[bool, typer.Option(help="overwrite AV-MNIST files already in the folder")] = False,
    settings: Annotated[
        list[str] | None, typer.Option("--set", help="AV-digits option key=value, e.g. recipe.subset=1200")
    ] = None,
) -> None:
    """Write AV-digits in another dataset's on-disk layout (AV-MNIST: MultiBench's .npy files, 0-255)."""
    if dataset != "avdigits":
        raise ConfigError(f"Only `avdigits` can be exported, got `{dataset}`.")
    if format != "avmnist":
        raise ConfigError(f"Expected `--format avmnist` (the only export layout), got `{format}`.")
    from fusebench.data.export import export_avmnist

    start = time.perf_counter()
    options = dataset_options(dataset, settings, root=root, cache_dir=cache_dir)
    result = export_avmnist(
        options.recipe,
        out_dir,
        source_root=options.root,
        cache_dir=options.cache_dir,
        dtype=dtype,  # type: ignore[arg-type]
        keep_all=keep_all,
        force=force,
        progress=True,
    )
    counts = result.counts
    read_back = (
        ""
        if result.validation_size is None
        else f"; its validation split is not the last 1/12, so read it with "
        f"data.validation_size={result.validation_size}"
    )
    dropped = ", ".join(f"{n} {split}" for split, n in result.dropped.items() if n)
    console.print(
        f"wrote AV-digits in the AV-MNIST layout to {result.folder} in {time.perf_counter() - start:.1f} s: "
        f"train_data {counts['train'] + counts['validation']} rows (the last {counts['validation']} are AV-digits' "
        f"validation pairs), test_data {counts['test']} rows, {dtype} on 0-255"
        + (f"; left out {dropped} pairs to keep 11:1" if dropped else "")
        + read_back
        + f". Train on it with data.dataset=avmnist data.root={result.folder}.",
        highlight=False,
        soft_wrap=True,
    )
