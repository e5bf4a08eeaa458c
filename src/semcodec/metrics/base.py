"""The metric contract and its registry table.

Two kinds of metric exist::

    per-image   Metric.compute(reference, decoded, **context) -> float     (PSNR, MS-SSIM, LPIPS, NIQE ...)
    set-level   SetMetric.compute_set([references], [decodeds]) -> float    (FID, KID)

Both take H×W×3 uint8 arrays. ``availability()`` returns ``None`` when the metric can run here, else
a sentence naming the file / environment variable / package to provide: a metric whose weights are
absent is reported as unavailable, it never returns a made-up number.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from ..errors import MissingComponentError
from ..registry import Entry, Registry

#: Every metric, by name (one line each; a lookup imports only that metric's module).
METRICS: Registry = Registry("metric", {
    "psnr": Entry(None, "semcodec.metrics.pixel:PSNR"),
    "ms-ssim": Entry(None, "semcodec.metrics.pixel:MSSSIM"),
    "lpips-alex": Entry(None, "semcodec.metrics.lpips:LPIPSAlex"),
    "lpips-vgg": Entry(None, "semcodec.metrics.lpips:LPIPSVGG"),
    "dists": Entry(None, "semcodec.metrics.dists:DISTS"),
    "fid": Entry(None, "semcodec.metrics.fid:FID"),
    "kid": Entry(None, "semcodec.metrics.fid:KID"),
    "clip-i2i": Entry(None, "semcodec.metrics.clip:CLIPI2I"),
    "clip-score": Entry(None, "semcodec.metrics.clip:CLIPScore"),
    "clip-iqa": Entry(None, "semcodec.metrics.clip:CLIPIQA"),
    "niqe": Entry(None, "semcodec.metrics.niqe:NIQE"),
})


class _MetricInfo(ABC):
    name: ClassVar[str]  # from the METRICS table
    higher_is_better: ClassVar[bool]
    description: ClassVar[str] = ""
    #: "full-reference", "no-reference" (only the decoded image is used) or "text" (needs a caption).
    kind: ClassVar[str] = "full-reference"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        METRICS.bind(cls)

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


def metric_classes() -> dict[str, type[_MetricInfo]]:
    return METRICS.load_all()


def metric_class(name: str) -> type[_MetricInfo]:
    """One metric's class (imports its module only); unknown names list the valid ones."""
    return METRICS.get(name)


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
