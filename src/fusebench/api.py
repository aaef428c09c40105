"""The Python API for notebooks and scripts: the typed objects the command line uses.

>>> import fusebench
>>> result = fusebench.train("configs/avdigits/late_fusion.yaml", ["training.epochs=1"])  # doctest: +SKIP
>>> result.test_metrics["audio+image"]["accuracy"]  # doctest: +SKIP
0.9431
>>> study = fusebench.load_study("studies/pretrain_vs_scratch")  # doctest: +SKIP
>>> study.to_frame().query("split == 'test' and metric == 'accuracy'")  # doctest: +SKIP

Every function raises the same one-paragraph errors as the CLI (:mod:`fusebench.errors`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fusebench.config import RunConfig, apply_overrides, load_config, validate_config
from fusebench.engine.run_result import RunResult, read_run_result
from fusebench.study.records import StudyRecord, load_results


def train(
    config: RunConfig | Mapping[str, Any] | str | Path,
    overrides: Sequence[str] = (),
    *,
    run_dir: str | Path | None = None,
    run_id: str | None = None,
    overwrite: bool = False,
    skip_test: bool = False,
) -> RunResult:
    """Train (or pre-train) a run config and test it on every modality pattern, as ``fusebench train``.

    Args:
        config: a config file, a raw config mapping, or a validated :class:`RunConfig`.
        overrides: dotted ``key=value`` changes (``["training.epochs=2"]``), applied before validation.
        run_dir: the run folder; default ``<experiment.runs_dir>/<experiment.name>/<run_id or a timestamp>``.
        run_id: the run folder's name when ``run_dir`` is not given.
        overwrite: clear a folder that already holds a run.
        skip_test: do not evaluate on the test split.

    Returns:
        The run's :class:`RunResult` (``.to_frame()`` for its long format).

    Raises:
        ConfigError: an invalid config, or one whose model or strategies cannot be built for its data.
        RunFolderError: the folder is in use or holds a run (without ``overwrite``).
    """
    from fusebench.engine.run import execute_run
    from fusebench.engine.run_folder import run_directory

    resolved = _resolve(config, overrides)
    folder = Path(run_dir) if run_dir is not None else run_directory(resolved, run_id)
    return execute_run(resolved, folder, skip_test=skip_test, overwrite=overwrite, command=["fusebench.train"])


def _resolve(config: RunConfig | Mapping[str, Any] | str | Path, overrides: Sequence[str]) -> RunConfig:
    if isinstance(config, str | Path):
        return load_config(config, overrides)
    raw = config.model_dump(mode="json") if isinstance(config, RunConfig) else dict(config)
    source = "<python>" + (f" with overrides {list(overrides)}" if overrides else "")
    return validate_config(apply_overrides(raw, overrides), source)


def run_study(
    spec_path: str | Path,
    *,
    workers: int = 1,
    resume: bool | None = False,
    study_root: str | Path = "studies",
    base: str | Path | None = None,
    name: str | None = None,
    overrides: Sequence[str] = (),
    backend: str = "local",
    address: str | None = None,
) -> StudyRecord:
    """Run a study spec as ``fusebench study``; return its records once every node has finished.

    Args:
        spec_path: the study spec YAML.
        workers: runs in parallel (local processes, or Ray CPUs).
        resume: continue the study folder (``None``: continue it if it exists).
        study_root: the study folder is ``<study_root>/<study name>``.
        base: run the spec on this base run config instead of its own.
        name: the study's name (its folder) instead of the spec's.
        overrides: dotted changes of the spec's keys (``["analysis.threshold=0.5"]``).
        backend: ``local`` or ``ray``.
        address: a Ray cluster address.

    Raises:
        SpecError: the spec, or a run it implies, is invalid (before any node runs).
    """
    from rich.console import Console

    from fusebench.study.execute import run_study as execute_study

    if backend not in ("local", "ray"):
        from fusebench.errors import ConfigError

        raise ConfigError(f"Expected `backend` `local` or `ray`, got `{backend}`.")
    study_dir = execute_study(
        spec_path,
        workers=workers,
        resume=resume,
        backend="ray" if backend == "ray" else "local",
        address=address,
        study_root=study_root,
        base=base,
        name=name,
        spec_overrides=overrides,
        console=Console(quiet=True),
    )
    return load_results(study_dir)


def load_run(run_dir: str | Path) -> RunResult:
    """A run folder's :class:`RunResult` (finished or not; ``.status`` says which)."""
    return read_run_result(run_dir)


def load_study(study_dir: str | Path) -> StudyRecord:
    """A study folder's :class:`StudyRecord`: ``results.json``, validated (rebuilt from the runs if missing)."""
    return load_results(study_dir)
