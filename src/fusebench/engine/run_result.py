"""A run folder read back as one typed record: :class:`RunResult`, what ``fusebench train`` measured.

The record holds the same numbers as the folder's files (``status.json``,
``test_metrics.json``, ``epoch_metrics.json``, ``timing.json``, ``data.json``): a finished
training returns it, and :func:`read_run_result` reads it from any run folder later (a
notebook's ``fusebench.load_run``). ``to_frame()`` is its long format as a pandas
DataFrame (``pip install 'fusebench[pandas]'``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fusebench.engine.run_folder import STATUS_FILE, RunState, recorded_state
from fusebench.errors import RunFolderError
from fusebench.io import read_json, read_json_object

if TYPE_CHECKING:
    import pandas


@dataclass(frozen=True)
class RunResult:
    """What a run measured (the numbers of its run directory's files).

    Attributes:
        run_dir: the run folder.
        status: its training state (``status.json``).
        test_metrics: pattern -> metric -> value on the test split (empty when not tested).
        epoch_metrics: one record per epoch (``epoch_metrics.json``).
        timing: seconds per phase (``timing.json``).
        primary_metric: the metric the run checkpointed and reported on.
    """

    run_dir: Path
    status: RunState
    test_metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    epoch_metrics: list[dict[str, Any]] = field(default_factory=list)
    timing: dict[str, Any] = field(default_factory=dict)
    primary_metric: str = "accuracy"

    def rows(self) -> list[dict[str, Any]]:
        """Long format: ``split`` (test, train, validation, timing), ``epoch``, ``pattern``, ``metric``, ``value``."""
        rows = [
            {"split": "test", "epoch": None, "pattern": p, "metric": m, "value": v}
            for p, metrics in self.test_metrics.items()
            for m, v in metrics.items()
        ]
        for record in self.epoch_metrics:
            for split in ("train", "validation"):
                for pattern, metrics in (record.get(split) or {}).items():
                    if isinstance(metrics, dict) and pattern != "timing":
                        rows += [
                            {"split": split, "epoch": record.get("epoch"), "pattern": pattern, "metric": m, "value": v}
                            for m, v in metrics.items()
                        ]
        rows += [
            {"split": "timing", "epoch": None, "pattern": None, "metric": k, "value": v}
            for k, v in self.timing.items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        ]
        return rows

    def to_frame(self) -> pandas.DataFrame:
        """:meth:`rows` as a pandas DataFrame.

        Raises:
            ModuleNotFoundError: pandas is not installed (``pip install 'fusebench[pandas]'``).
        """
        from fusebench.study.records import long_frame

        return long_frame(self.rows())


def read_run_result(run_dir: str | Path) -> RunResult:
    """The :class:`RunResult` of a run folder written by ``fusebench train`` (finished or not).

    Raises:
        RunFolderError: ``run_dir`` holds no run (no ``status.json``).
        DamagedFileError: one of its JSON files is damaged.
    """
    folder = Path(run_dir)
    state = recorded_state(folder)
    if state is RunState.MISSING:
        raise RunFolderError(
            f"`{folder}` holds no run: expected `{folder / STATUS_FILE}`, written by "
            "`fusebench train` or `fusebench pretrain`."
        )

    def optional(name: str, empty: Any) -> Any:
        return read_json(folder / name) if (folder / name).is_file() else empty

    data = optional("data.json", {})
    primary = ((data.get("metrics") or {}).get("primary") if isinstance(data, dict) else None) or "accuracy"
    epochs = optional("epoch_metrics.json", [])
    if not isinstance(epochs, list):
        raise RunFolderError(
            f"Expected a list of epoch records in `{folder / 'epoch_metrics.json'}`, got {json.dumps(epochs)[:40]}."
        )
    tests = read_json_object(folder / "test_metrics.json") if (folder / "test_metrics.json").is_file() else {}
    timing = read_json_object(folder / "timing.json") if (folder / "timing.json").is_file() else {}
    return RunResult(folder, state, tests, epochs, timing, primary)
