"""Bjøntegaard delta rate and delta metric (VCEG-M33, 2001; piecewise-cubic variant of VCEG-AH11).

Both compare two RD curves over the range where they overlap::

    BD-rate   : fit log10(rate) as a function of quality, average the gap over the common quality range,
                report 10^gap - 1 in percent (negative = the test codec needs fewer bits).
    BD-metric : fit quality as a function of log10(rate), average the gap over the common log-rate range
                (positive = better quality for higher-is-better metrics).

``method="pchip"`` (default) uses monotone piecewise-cubic Hermite interpolation, as in the current
JVET/AOM reporting templates; ``method="cubic"`` is the original 3rd-order polynomial fit (needs ≥ 4
points). Instead of extrapolating or guessing, every case that is not well defined returns NaN with
a reason: too few points, non-finite values, repeated rates, a quality that is not strictly
monotone in rate (BD-rate only), or curves that do not overlap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BDResult:
    value: float  # percent for BD-rate, metric units for BD-metric; NaN when undefined
    reason: str | None = None  # why ``value`` is NaN

    @property
    def ok(self) -> bool:
        return self.reason is None and math.isfinite(self.value)


def _clean(rates, values, label: str, min_points: int) -> tuple[np.ndarray, np.ndarray] | str:
    r = np.asarray(rates, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if r.shape != v.shape or r.ndim != 1:
        return f"{label}: rates and values must be 1-D of equal length"
    keep = np.isfinite(r) & np.isfinite(v) & (r > 0)
    r, v = r[keep], v[keep]
    if len(r) < min_points:
        return f"{label}: {len(r)} usable point(s), need at least {min_points}"
    order = np.argsort(r, kind="stable")
    r, v = r[order], v[order]
    if np.any(np.diff(r) <= 0):
        return f"{label}: repeated rate values"
    return np.log10(r), v


def _integral(x: np.ndarray, y: np.ndarray, lo: float, hi: float, method: str) -> float:
    if method == "pchip":
        from scipy.interpolate import PchipInterpolator

        return float(PchipInterpolator(x, y).integrate(lo, hi))
    if method == "cubic":
        poly = np.polyint(np.polyfit(x, y, 3))
        return float(np.polyval(poly, hi) - np.polyval(poly, lo))
    raise ValueError(f"unknown BD method {method!r} (pchip or cubic)")


#: Below this many rate points per curve a BD number is shown with :func:`few_points_caveat`: the
#: interpolation (and the overlap range) then rests on too few operating points to be trusted.
RELIABLE_POINTS = 4


def few_points_caveat(*curves: tuple) -> str | None:
    """A caveat when any ``(rates, values)`` curve has fewer than :data:`RELIABLE_POINTS` usable points."""

    def usable(rates, values) -> int:
        r = np.asarray(rates, dtype=np.float64)
        v = np.asarray(values, dtype=np.float64)
        return int((np.isfinite(r) & np.isfinite(v) & (r > 0)).sum()) if r.shape == v.shape else 0

    n = min(usable(r, v) for r, v in curves)
    if n >= RELIABLE_POINTS:
        return None
    return f"from {n} rate point(s), fewer than {RELIABLE_POINTS}: indicative only"


def _min_points(method: str) -> int:
    return 4 if method == "cubic" else 2


def bd_rate(anchor_rates, anchor_values, test_rates, test_values, *, higher_is_better: bool = True,
            method: str = "pchip") -> BDResult:
    """Average rate difference (%) of ``test`` against ``anchor`` at equal quality."""
    a = _clean(anchor_rates, anchor_values, "anchor", _min_points(method))
    t = _clean(test_rates, test_values, "test", _min_points(method))
    for c in (a, t):
        if isinstance(c, str):
            return BDResult(math.nan, c)
    (ar, av), (tr, tv) = a, t  # type: ignore[misc]
    sign = 1.0 if higher_is_better else -1.0
    av, tv = sign * av, sign * tv
    for label, v in (("anchor", av), ("test", tv)):
        if np.any(np.diff(v) <= 0):
            return BDResult(math.nan, f"{label}: quality is not strictly increasing with rate, BD-rate undefined")
    lo, hi = max(av.min(), tv.min()), min(av.max(), tv.max())
    if not hi > lo:
        return BDResult(math.nan, "the curves do not overlap in quality")
    # Interpolate log-rate as a function of quality (x = quality, y = log10 rate).
    gap = (_integral(tv, tr, lo, hi, method) - _integral(av, ar, lo, hi, method)) / (hi - lo)
    return BDResult(float((10.0**gap - 1.0) * 100.0))


def bd_metric(anchor_rates, anchor_values, test_rates, test_values, *, method: str = "pchip") -> BDResult:
    """Average quality difference (test − anchor, metric units) at equal rate."""
    a = _clean(anchor_rates, anchor_values, "anchor", _min_points(method))
    t = _clean(test_rates, test_values, "test", _min_points(method))
    for c in (a, t):
        if isinstance(c, str):
            return BDResult(math.nan, c)
    (ar, av), (tr, tv) = a, t  # type: ignore[misc]
    lo, hi = max(ar.min(), tr.min()), min(ar.max(), tr.max())
    if not hi > lo:
        return BDResult(math.nan, "the curves do not overlap in rate")
    return BDResult(float((_integral(tr, tv, lo, hi, method) - _integral(ar, av, lo, hi, method)) / (hi - lo)))
