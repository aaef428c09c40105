"""The ``fusebench`` command line: data, pretrain, train, evaluate, study, report, demo."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from fusebench.cli_analyze import analyze
from fusebench.cli_common import console, user_errors
from fusebench.cli_data import data_app
from fusebench.cli_study import demo, report, study
from fusebench.engine.run_folder import RunState, run_directory
from fusebench.errors import ConfigError

if TYPE_CHECKING:  # the schema imports torch (its registries); commands import it when they run
    from fusebench.config import RunConfig

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__, pretty_exceptions_enable=False)
app.add_typer(data_app, name="data")

Overrides = Annotated[list[str] | None, typer.Argument(help="dotted overrides, e.g. training.epochs=5")]
RunId = Annotated[str | None, typer.Option("--run-id", help="run folder name (default: a timestamp)")]
SkipTrain = Annotated[bool, typer.Option("--skip-train", help="load the run's best checkpoint, do not train")]
SkipTest = Annotated[bool, typer.Option("--skip-test", help="do not evaluate on the test split")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="build everything, print config and model, stop")]
NoMonitoring = Annotated[bool, typer.Option("--disable-monitoring", help="no logger, no per-epoch resource records")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="delete the run folder's earlier run, then train")]


def _load(config_path: Path, overrides: Sequence[str] | None, disable_monitoring: bool) -> RunConfig:
    from fusebench.config import load_config

    extra = ["monitoring.enabled=false"] if disable_monitoring else []
    return load_config(config_path, [*(overrides or []), *extra])


def _dry_run(config: RunConfig) -> None:
    from fusebench.config import dump_config
    from fusebench.engine.datasets import run_splits, run_task
    from fusebench.engine.preflight import RunInputs, preflight

    console.print(dump_config(config), highlight=False)
    data = run_splits(config)
    names, primary = run_task(config, data.task)
    model = preflight(config, RunInputs.of(data))
    console.print(model)
    console.print(
        f"dataset `{config.data.dataset}`: task {data.task.describe()}; metrics {names} (primary {primary})",
        highlight=False,
    )
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    console.print(
        f"parameters: {total:,} ({trainable:,} trainable); train/validation/test samples: "
        f"{len(data.train)}/{len(data.validation)}/{len(data.test)}; input shapes {data.input_shapes}"
    )


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    """The options ``pretrain`` and ``train`` share, checked by typer, in one record."""

    run_id: str | None = None
    skip_train: bool = False
    skip_test: bool = False
    dry_run: bool = False
    disable_monitoring: bool = False
    overwrite: bool = False


def _run(config_path: Path, overrides: Sequence[str] | None, options: RunOptions, *, pretrain: bool) -> None:
    from fusebench.engine.run import execute_run

    skip_train, overwrite = options.skip_train, options.overwrite
    config = _load(config_path, overrides, options.disable_monitoring)
    if pretrain and config.pretrain is None:
        raise ConfigError(
            f"`{config_path}` has no `pretrain:` section (e.g. `pretrain: {{modality: audio}}`); "
            "use `fusebench train` for multimodal configs."
        )
    if not pretrain and config.pretrain is not None:
        raise ConfigError(f"`{config_path}` is a pre-training config (it has `pretrain:`); use `fusebench pretrain`.")
    if options.dry_run:
        _dry_run(config)
        return
    if skip_train and overwrite:
        raise ConfigError("`--skip-train` re-tests a finished run and `--overwrite` deletes it; pass one of them.")
    run_dir = run_directory(config, options.run_id)
    try:
        result = execute_run(
            config, run_dir, skip_train=skip_train, skip_test=options.skip_test, command=sys.argv, overwrite=overwrite
        )
    except KeyboardInterrupt:
        what = "re-evaluation" if skip_train else "run"
        console.print(
            f"[bold yellow]interrupted:[/] {what} `{run_dir}` marked interrupted; its files are kept.",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(code=130) from None
    if result.status is RunState.FOLLOWER:  # a DDP process of rank > 0: rank 0 reports the run
        return
    if result.test_metrics:
        print_pattern_table({run_dir.name: result.test_metrics}, result.primary_metric, title="test")
    if config.pretrain is not None:
        console.print(f"encoder: {run_dir / 'encoders' / (config.pretrain.modality + '.safetensors')}")
    console.print(f"results: {run_dir}")


def _run_command(*, pretrain: bool, doc: str) -> Callable[..., None]:
    """The ``pretrain`` or ``train`` command: one signature (typer reads it) for the options both take."""

    def command(
        config: Path,
        overrides: Overrides = None,
        run_id: RunId = None,
        skip_train: SkipTrain = False,
        skip_test: SkipTest = False,
        dry_run: DryRun = False,
        disable_monitoring: NoMonitoring = False,
        overwrite: Overwrite = False,
    ) -> None:
        options = RunOptions(
            run_id=run_id,
            skip_train=skip_train,
            skip_test=skip_test,
            dry_run=dry_run,
            disable_monitoring=disable_monitoring,
            overwrite=overwrite,
        )
        _run(config, overrides, options, pretrain=pretrain)

    command.__doc__ = doc
    return command


app.command(name="pretrain")(
    user_errors(
        _run_command(
            pretrain=True,
            doc="Pre-train one modality's encoder with a linear head; saves encoders/<modality>.safetensors.",
        )
    )
)
app.command(name="train")(
    user_errors(_run_command(pretrain=False, doc="Train a multimodal model and evaluate it on every modality pattern."))
)


@app.command()
@user_errors
def evaluate(run_dir: Path) -> None:
    """Re-evaluate a finished run's best checkpoint on every pattern of the test split (evaluation.json)."""
    from fusebench.config import load_config
    from fusebench.engine.run import execute_run
    from fusebench.engine.run_folder import require_completed_training

    require_completed_training(run_dir)
    config = load_config(run_dir / "config.yaml")
    try:
        result = execute_run(config, run_dir, skip_train=True, command=sys.argv)
    except KeyboardInterrupt:
        console.print(
            f"[bold yellow]interrupted:[/] the re-evaluation of `{run_dir}` stopped; its training and "
            "earlier test results are unchanged.",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(code=130) from None
    print_pattern_table({run_dir.name: result.test_metrics}, result.primary_metric, title="test")


def print_pattern_table(results: dict[str, dict[str, dict[str, float]]], metric: str, title: str) -> None:
    """A table of ``metric`` per pattern (rows) and result (columns)."""
    patterns = list(next(iter(results.values())).keys()) if results else []
    table = Table(title=f"{title} {metric} per modality pattern")
    table.add_column("pattern")
    for name in results:
        table.add_column(name, justify="right")
    for pattern in patterns:
        table.add_row(pattern, *(f"{results[name].get(pattern, {}).get(metric, float('nan')):.4f}" for name in results))
    console.print(table)


def main() -> None:  # pragma: no cover - console entry point
    app()


@app.command()
@user_errors
def probe(
    run_dir: Path,
    expert: Annotated[
        list[str] | None,
        typer.Option("--expert", help="MODALITY=RUN_DIR of a `fusebench pretrain` run to compare with (repeatable)"),
    ] = None,
    export_encoders: Annotated[
        bool,
        typer.Option("--export-encoders", help="also write encoders/<modality>.safetensors (contrastive pre-training)"),
    ] = False,
) -> None:
    """Linear-probe a finished run's frozen encoder embeddings (MMPT protocol); writes probe_metrics.json."""
    from fusebench.engine import probe as probing

    experts = probing.parse_experts(expert or [])
    loaded = probing.load_trained_run(run_dir)
    result = probing.probe_run(run_dir, experts, loaded=loaded)
    metric = result["primary_metric"]
    table = Table(title=f"linear probes: test {metric} (L2 chosen on validation)")
    for column in ("probe", "dim", "l2", f"test {metric}"):
        table.add_column(column, justify="left" if column == "probe" else "right")
    for name, entry in result["probes"].items():
        table.add_row(name, str(entry["dim"]), f"{entry['l2']:g}", f"{entry['test'][metric]:.4f}")
    console.print(table)
    for modality, entry in result["experts"].items():
        gap = entry.get("gap", {}).get(metric)
        console.print(
            f"expert {modality}: test {metric} {entry['test'][metric]:.4f}; multimodal `{modality}` pattern gap "
            f"{'-' if gap is None else f'{gap:+.4f}'}; probe gap {entry['probe_gap'][metric]:+.4f}",
            highlight=False,
        )
    if export_encoders:
        for modality, path in probing.export_encoders(run_dir, loaded=loaded).items():
            console.print(f"encoder {modality}: {path}", highlight=False)
    console.print(f"results: {run_dir / probing.PROBE_FILE}", highlight=False)


# after the run commands, in the order of the workflow: train, probe, analyse, run studies, report
app.command(name="analyze")(analyze)
app.command()(study)
app.command()(demo)
app.command()(report)

if __name__ == "__main__":  # `python -m fusebench.cli`
    main()
