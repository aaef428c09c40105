"""fusebench: pre-train encoders, fuse them, test every missing-modality pattern, report honestly."""

from fusebench.data.batch import Batch
from fusebench.data.patterns import Pattern, all_patterns, pattern_name

__all__ = ["Batch", "Pattern", "all_patterns", "pattern_name"]
__version__ = "0.1.0"
