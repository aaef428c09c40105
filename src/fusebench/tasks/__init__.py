"""Tasks and metrics: what a model predicts, how it is trained and how it is judged."""

from fusebench.tasks import builtin_metrics  # noqa: F401 - registers the shipped metrics in METRICS
from fusebench.tasks.metrics import (
    METRICS,
    TASK_KINDS,
    Metric,
    MetricContext,
    TaskKind,
    get_metric,
    higher_is_better,
    metric_names,
    register_metric,
)
from fusebench.tasks.task import DEFAULT_LOSS, DEFAULT_PRIMARY, LossName, Task

__all__ = [
    "DEFAULT_LOSS",
    "DEFAULT_PRIMARY",
    "METRICS",
    "TASK_KINDS",
    "LossName",
    "Metric",
    "MetricContext",
    "Task",
    "TaskKind",
    "get_metric",
    "higher_is_better",
    "metric_names",
    "register_metric",
]
