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
        raise explain_validation_error(error, f"for dataset `{dataset}` (from --set)", root=entry.options,
                                       kind="data options") from None


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
def data_prepare(dataset: Annotated[str, typer.Argument()] = "avdigits",
                 root: Annotated[Path | None, typer.Option(help="source data folder")] = None,
                 cache_dir: Annotated[Path | None, typer.Option(help="cache folder (AV-digits)")] = None,
                 force: Annotated[bool, typer.Option(help="rebuild even if the cache is current (AV-digits)")] = False,
                 settings: Annotated[list[str] | None, typer.Option(
                     "--set", help="dataset option key=value, e.g. recipe.snr_db=0")] = None) -> None:
    """Build AV-digits' cache, or read and check any other dataset's files; prints what it holds."""
    from fusebench.data.registry import get_dataset

    start = time.perf_counter()
    if dataset == "avdigits":
        from fusebench.data.avdigits import prepare_avdigits

        options = dataset_options(dataset, settings, root=root, cache_dir=cache_dir)
        folder = prepare_avdigits(options.recipe, source_root=options.root, cache_dir=options.cache_dir, force=force,
                                  progress=True)
        console.print(f"avdigits ready in {time.perf_counter() - start:.1f} s: {folder}", highlight=False)
        return
    if force or cache_dir is not None:
        raise ConfigError(f"`--force` and `--cache-dir` apply to the AV-digits cache only, not to `{dataset}`.")
    options = dataset_options(dataset, settings, root=root)
    loaded = get_dataset(dataset).load(options)
    sizes = ", ".join(f"{name} {len(loaded.split(name))}" for name in ("train", "validation", "test"))
    console.print(f"{dataset} read and checked in {time.perf_counter() - start:.1f} s: {sizes}; "
                  f"{loaded.info.describe()}", highlight=False, soft_wrap=True)
