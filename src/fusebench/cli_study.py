"""``fusebench study``, ``demo`` and ``report``: run a study over seeds and conditions, render its report."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer

from fusebench.cli_common import console, user_errors
from fusebench.errors import ConfigError

if TYPE_CHECKING:
    from fusebench.study.execute import Backend

Workers = Annotated[
    int, typer.Option("--workers", min=1, help="runs in parallel (local processes or Ray CPUs); 1 gives clean timings")
]
Resume = Annotated[bool, typer.Option("--resume", help="continue the study folder; completed runs are kept")]
BackendOption = Annotated[str, typer.Option("--backend", help="local (process pool) or ray")]
Address = Annotated[str | None, typer.Option("--address", help="Ray cluster: auto, host:port; default local")]
Root = Annotated[Path, typer.Option("--root", help="studies are written to ROOT/<study name>")]
Base = Annotated[
    Path | None,
    typer.Option("--base", help="run the spec on this run config instead of its `base` (e.g. another dataset's)"),
]
Name = Annotated[str | None, typer.Option("--name", help="study name (folder) instead of the spec's")]
Settings = Annotated[
    list[str] | None, typer.Option("--set", help="change a spec key, e.g. analysis.threshold=0.5 (repeatable)")
]
DEMO_SPEC = Path(__file__).resolve().parents[2] / "configs" / "studies" / "pretrain_vs_scratch.yaml"


@dataclass(frozen=True, kw_only=True)
class StudyOptions:
    """How to run a study spec: the command line's options, checked by typer, in one record.

    ``resume=None`` continues a study folder that exists and starts one otherwise (the demo).
    """

    workers: int = 1
    resume: bool | None = False
    backend: str = "local"
    address: str | None = None
    root: Path = Path("studies")
    base: Path | None = None
    name: str | None = None
    settings: Sequence[str] = ()


@user_errors
def study(
    spec: Path,
    *,
    workers: Workers = 1,
    resume: Resume = False,
    backend: BackendOption = "local",
    address: Address = None,
    root: Root = Path("studies"),
    base: Base = None,
    name: Name = None,
    settings: Settings = None,
) -> None:
    """Run a study: pre-training nodes, then every condition x seed (x axis value); results after each run.

    One spec fits any dataset: `--base configs/mosi/late_fusion.yaml --name mosi_pretraining` runs it on
    another dataset's config (its encoders are pre-trained from that config unless the spec names files).
    """
    options = StudyOptions(
        workers=workers,
        resume=resume,
        backend=backend,
        address=address,
        root=root,
        base=base,
        name=name,
        settings=tuple(settings or ()),
    )
    run_study_command(spec, options)


@user_errors
def demo(workers: Workers = 2, root: Root = Path("studies")) -> None:
    """Pre-trained vs scratch encoders on AV-digits, 5 seeds (configs/studies/pretrain_vs_scratch.yaml)."""
    if not DEMO_SPEC.is_file():
        raise FileNotFoundError(
            f"The demo runs `{DEMO_SPEC}`, which is only in a source checkout of fusebench; "
            "clone the repository and run `make demo` there."
        )
    run_study_command(DEMO_SPEC, StudyOptions(workers=workers, resume=None, root=root))


def run_study_command(spec: Path, options: StudyOptions) -> None:
    """Run ``spec``, then print its headline table and where the report and results are."""
    from fusebench.study.execute import run_study

    started = time.perf_counter()
    try:
        study_dir = run_study(
            spec,
            workers=options.workers,
            resume=options.resume,
            backend=cast("Backend", options.backend),  # run_study refuses anything else by name
            address=options.address,
            study_root=options.root,
            console=console,
            base=options.base,
            name=options.name,
            spec_overrides=options.settings,
        )
    except ModuleNotFoundError as error:  # the optional `ray` extra
        raise ConfigError(str(error)) from None
    except KeyboardInterrupt:
        console.print(
            f"[bold yellow]interrupted:[/] finished runs are kept; continue with `fusebench study {spec} --resume`.",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(code=130) from None
    console.print(f"study finished in {time.perf_counter() - started:.0f} s: {study_dir}", highlight=False)
    _print_report(study_dir)
    console.print(
        f"results: {study_dir / 'results.json'} and {study_dir / 'results.csv'}", highlight=False, soft_wrap=True
    )


@user_errors
def report(study_dir: Path) -> None:
    """Re-render a study's analysis.json, figures and report.html / report.md from its results."""
    _print_report(study_dir)


def _print_report(study_dir: Path) -> None:
    """Render the report, then print its headline table and where it is."""
    from fusebench.study.report import headline_table, render_report

    html, markdown = render_report(study_dir)
    console.print(headline_table(study_dir), highlight=False, markup=False, soft_wrap=True)
    console.print(f"report: {html} ({markdown})", highlight=False, soft_wrap=True)
