"""The metric contract and its registry.

Two kinds of metric exist::

    per-image   Metric.compute(reference, decoded, **context) -> float     (PSNR, MS-SSIM, LPIPS, NIQE ...)
    set-level   SetMetric.compute_set([references], [decodeds]) -> float    (FID, KID)

Both take H×W×3 uint8 arrays. ``availability()`` returns ``None`` when the metric can run here, else
a sentence naming the file / environment variable / package to provide: a metric whose weights are
absent is reported as unavailable, it never returns a made-up number.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, TypeVar

import numpy as np

from ..errors import MissingComponentError


class _MetricInfo(ABC):
    name: ClassVar[str]
    higher_is_better: ClassVar[bool]
    description: ClassVar[str] = ""
    #: "full-reference", "no-reference" (only the decoded image is used) or "text" (needs a caption).
    kind: ClassVar[str] = "full-reference"

    @classmethod
    def availability(cls) -> str | None:
        """``None`` if usable here, else what is missing and how to provide it."""
        return None


class Metric(_MetricInfo):
    """A per-image metric. Heavy models are loaded lazily on first ``compute`` and kept on the instance."""

    @abstractmethod
    def compute(self, reference: np.ndarray, decoded: np.ndarray, **context: Any) -> float:
        """Score one pair of H×W×3 uint8 images (same shape)."""


class SetMetric(_MetricInfo):
    """A metric over a whole set of pairs (distribution distances such as FID/KID)."""

    @abstractmethod
    def compute_set(self, references: list[np.ndarray], decodeds: list[np.ndarray]) -> float:
        """Score the decoded set against the reference set."""


M = TypeVar("M", bound=type[_MetricInfo])

_REGISTRY: dict[str, type[_MetricInfo]] = {}

#: Modules whose import registers metrics (one per concept).
METRIC_MODULES: list[str] = [
    "semcodec.metrics.pixel",
    "semcodec.metrics.lpips",
    "semcodec.metrics.dists",
    "semcodec.metrics.fid",
    "semcodec.metrics.clip",
    "semcodec.metrics.niqe",
]

_loaded = False


def register_metric(cls: M) -> M:
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"metric {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    import importlib

    for mod in METRIC_MODULES:
        importlib.import_module(mod)


def metric_classes() -> dict[str, type[_MetricInfo]]:
    _load_all()
    return dict(_REGISTRY)


def metric_class(name: str) -> type[_MetricInfo]:
    _load_all()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise MissingComponentError(f"unknown metric {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None


def get_metric(name: str) -> Metric | SetMetric:
    """Instantiate an available metric; raises :class:`MissingComponentError` with the reason otherwise."""
    cls = metric_class(name)
    reason = cls.availability()
    if reason:
        raise MissingComponentError(f"metric {name!r} is not available here: {reason}")
    return cls()  # type: ignore[abstract]


def available_metrics() -> dict[str, str | None]:
    """Every known metric with ``None`` (available) or the reason it is not."""
    return {name: cls.availability() for name, cls in sorted(metric_classes().items())}


def check_pair(reference: np.ndarray, decoded: np.ndarray) -> None:
    for a in (reference, decoded):
        if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
            raise ValueError(f"metrics take H×W×3 uint8 images, got {a.shape} {a.dtype}")
    if reference.shape != decoded.shape:
        raise ValueError(f"image shapes differ: {reference.shape} vs {decoded.shape}")


def torch_threads(n: int = 1):
    """Run metric networks on ``n`` threads (see :mod:`semcodec.determinism`).

    On a shared 2-core machine extra intra-op threads only spin against other processes (a 2-thread
    MS-SSIM was 15× slower than 1 thread under load), and a fixed count keeps scores reproducible.
    """
    from ..determinism import fixed_threads

    return fixed_threads(n)
