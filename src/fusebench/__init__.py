"""fusebench: pre-train encoders, fuse them, test every missing-modality pattern, report honestly."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fusebench.api import load_run, load_study, run_study, train
    from fusebench.data.batch import Batch
    from fusebench.data.patterns import Pattern, all_patterns, pattern_name
    from fusebench.engine.run_result import RunResult
    from fusebench.study.records import StudyRecord

__all__ = [
    "Batch",
    "Pattern",
    "RunResult",
    "StudyRecord",
    "all_patterns",
    "load_run",
    "load_study",
    "pattern_name",
    "run_study",
    "train",
]
__version__ = "0.1.0"

#: Imported on first use, so `import fusebench` (and `python -m fusebench`, which must install its signal
#: handlers before the seconds torch takes to import) stays instant.
_LAZY = {
    "Batch": "fusebench.data.batch",
    "Pattern": "fusebench.data.patterns",
    "all_patterns": "fusebench.data.patterns",
    "pattern_name": "fusebench.data.patterns",
    "train": "fusebench.api",
    "run_study": "fusebench.api",
    "load_run": "fusebench.api",
    "load_study": "fusebench.api",
    "RunResult": "fusebench.engine.run_result",
    "StudyRecord": "fusebench.study.records",
}


def __getattr__(name: str) -> Any:
    """PEP 562 lazy attributes: the module-level ``getattr`` the import machinery calls for a missing name."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module `fusebench` has no attribute `{name}`")
