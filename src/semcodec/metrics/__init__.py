"""Image-quality metrics behind one small registry (see :mod:`semcodec.metrics.base`)."""

from .base import (
    METRICS,
    Metric,
    SetMetric,
    available_metrics,
    get_metric,
    metric_class,
    metric_classes,
)

__all__ = [
    "METRICS",
    "Metric",
    "SetMetric",
    "available_metrics",
    "get_metric",
    "metric_class",
    "metric_classes",
]
