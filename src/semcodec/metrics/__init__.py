"""Image-quality metrics behind one small registry (see :mod:`semcodec.metrics.base`)."""

from .base import (
    METRIC_MODULES,
    Metric,
    SetMetric,
    available_metrics,
    get_metric,
    metric_class,
    metric_classes,
    register_metric,
)

__all__ = [
    "METRIC_MODULES",
    "Metric",
    "SetMetric",
    "available_metrics",
    "get_metric",
    "metric_class",
    "metric_classes",
    "register_metric",
]
