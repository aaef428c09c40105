"""fusebench: pre-train encoders, fuse them, test every missing-modality pattern, report honestly."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fusebench.data.batch import Batch
    from fusebench.data.patterns import Pattern, all_patterns, pattern_name

__all__ = ["Batch", "Pattern", "all_patterns", "pattern_name"]
__version__ = "0.1.0"

#: Imported on first use, so `import fusebench` (and `python -m fusebench`, which must install its signal
#: handlers before the seconds torch takes to import) stays instant.
_LAZY = {"Batch": "fusebench.data.batch", "Pattern": "fusebench.data.patterns",
         "all_patterns": "fusebench.data.patterns", "pattern_name": "fusebench.data.patterns"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module `fusebench` has no attribute `{name}`")
