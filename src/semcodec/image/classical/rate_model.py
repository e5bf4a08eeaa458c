"""A per-codec model of coded size versus quality, used to aim the rate control's encoder calls.

Bisection needs ~8 encodes per scale and opens with the two most expensive ones (``qmin``, ``qmax``).
Coded size is instead close to a fixed curve per codec, shifted by how busy the image is::

    ln(size − header) ≈ ln(pixels) + g(q) + r

``g`` is :data:`CURVES` (the mean over 8 Kodak images × scales 2..16, piecewise linear in ``q``),
``r`` the image's offset. Before any encode ``r`` comes from a neighbouring scale (``r`` grows by
``kappa · ln`` of the scale ratio: smaller images have more detail per pixel) or from the prior.
After encodes it is interpolated between the measured qualities (a secant in ``g`` space), so the
search lands on the largest fitting quality in about 2–4 encodes. The model only chooses which
quality to try: every answer is a measured encode, and the search stops only on a measured pair
"fits / next level does not", so it returns what bisection returns whenever size is monotone in
quality.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Curve:
    """``g`` at ``knots`` (piecewise linear between them), the header estimate and the scale slope."""

    header: int  # bytes not proportional to pixels (container boxes, tables); about 0.9 × a tiny file
    kappa: float  # d r / d ln(downscale factor)
    knots: tuple[int, ...]
    values: tuple[float, ...]

    def g(self, q: float) -> float:
        k, v = self.knots, self.values
        if q <= k[0]:
            return v[0]
        for i in range(1, len(k)):
            if q <= k[i]:
                t = (q - k[i - 1]) / (k[i] - k[i - 1])
                return v[i - 1] + t * (v[i] - v[i - 1])
        return v[-1]

    def offset(self, size: int, q: int, pixels: int) -> float:
        """The ``r`` a measured ``size`` implies."""
        return math.log(max(size - self.header, 1) / pixels) - self.g(q)

    def predict(self, q: int, pixels: int, r: float) -> float:
        return self.header + pixels * math.exp(self.g(q) + r)


_Q5 = (0, 1, 2, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60, 65, 70, 75, 80, 85, 90, 95, 98, 99, 100)

#: Fitted once from the codecs' own output (see module docstring); a poor fit costs encodes, never
#: the budget or the choice.
CURVES: dict[str, Curve] = {
    "jpeg": Curve(225, 0.30, (1, 2, 3) + _Q5[3:], (
        -4.54, -4.53, -4.43, -4.08, -3.52, -3.21, -2.99, -2.83, -2.71, -2.60, -2.52, -2.44, -2.37,
        -2.31, -2.24, -2.16, -2.06, -1.97, -1.84, -1.67, -1.46, -1.13, -0.82, -0.65, -0.57)),
    "webp": Curve(36, 0.33, _Q5, (
        -4.38, -3.96, -3.84, -3.63, -3.43, -3.27, -3.13, -3.02, -2.91, -2.82, -2.73, -2.65, -2.59,
        -2.52, -2.45, -2.39, -2.33, -2.26, -2.06, -1.84, -1.58, -1.28, -1.08, -1.01, -1.00)),
    "avif": Curve(260, 0.42, _Q5, (
        -5.27, -5.08, -5.08, -4.80, -4.46, -4.23, -3.91, -3.68, -3.44, -3.23, -3.01, -2.80, -2.61,
        -2.38, -2.21, -2.08, -1.96, -1.85, -1.71, -1.49, -1.26, -0.95, -0.63, -0.63, -0.18)),
    "jxl": Curve(45, 0.33, _Q5, (
        -4.12, -4.11, -4.06, -3.97, -3.81, -3.55, -3.33, -3.14, -3.02, -2.96, -2.89, -2.82, -2.74,
        -2.65, -2.54, -2.43, -2.29, -2.15, -1.98, -1.79, -1.55, -1.20, -0.85, -0.67, 0.41)),
    "j2k": Curve(110, 0.54, (15, 16, 17, 20, 25, 30, 35, 40, 45, 50, 55, 60, 65, 70, 75, 78, 79, 80), (
        -6.29, -6.27, -6.19, -5.68, -4.27, -3.08, -2.29, -1.73, -1.32, -1.04, -0.89, -0.83, -0.81,
        -0.81, -0.80, -0.80, -0.80, -0.80)),
    "heif": Curve(380, 0.41, _Q5, (
        -5.31, -5.20, -5.20, -4.94, -4.65, -4.24, -3.96, -3.57, -3.30, -2.93, -2.70, -2.39, -2.20,
        -1.94, -1.79, -1.58, -1.45, -1.27, -1.15, -0.99, -0.90, -0.80, -0.80, -0.80, -0.80)),
}
#: For a codec without a fitted curve: a straight line (about 4 % more bytes per quality step).
DEFAULT_CURVE = Curve(100, 0.4, (0, 100), (-4.5, -0.5))


#: Size, relative to the budget, that the first probe of a scale that may be dropped aims at: over
#: the model's typical error, so the probe is almost surely too large and bounds the scale's score.
LOSER_PROBE_OVERSHOOT = 1.15


@dataclass
class Trials:
    """Measured encodes at one scale (quality → stream), shared by every search at that scale."""

    encode: Callable[[int], bytes]
    streams: dict[int, bytes] = field(default_factory=dict)

    def __call__(self, q: int) -> bytes:
        if q not in self.streams:
            self.streams[q] = self.encode(q)
        return self.streams[q]


def _offset_at(q: int, points: Sequence[tuple[int, float]], curve: Curve, prior: float) -> float:
    """``r`` at ``q``: linear in ``g`` between the measured neighbours, flat beyond them."""
    if not points:
        return prior
    below = [p for p in points if p[0] <= q]
    above = [p for p in points if p[0] >= q]
    if not below:
        return above[0][1]
    if not above:
        return below[-1][1]
    (qa, ra), (qb, rb) = below[-1], above[0]
    ga, gb = curve.g(qa), curve.g(qb)
    if qa == qb or gb - ga < 1e-9:
        return ra
    return ra + (rb - ra) * (curve.g(q) - ga) / (gb - ga)


def fit_quality_model(
    trials: Trials,
    levels: Sequence[int],
    budget: int,
    pixels: int,
    curve: Curve,
    prior: float,
    max_calls: int,
    give_up: Callable[[bytes], bool] | None = None,
) -> tuple[int, bytes] | None:
    """Largest of ``levels`` (ascending) whose measured stream is ≤ ``budget`` bytes, or ``None``.

    Keeps the invariant ``levels[lo]`` fits, ``levels[hi]`` does not (``lo = -1`` / ``hi = len``
    while unknown) and probes the level the model predicts to be the last that fits; when the same
    side moved twice running inside a two-sided bracket it bisects instead, so a bad model costs
    at most the bisection's encodes. At most ``max_calls`` new encodes.

    ``give_up`` is asked about every stream that does not fit; if it says yes the search returns
    ``None`` at once. (The scale search uses it to drop a scale whose too-large stream already
    scores below the best so far.) With it the first probe aims above the budget
    (:data:`LOSER_PROBE_OVERSHOOT`), so that a losing scale is usually dropped after one encode.
    """
    lo, hi = -1, len(levels)
    for k, q in enumerate(levels):  # what earlier searches at this scale already measured
        if q in trials.streams:
            if len(trials.streams[q]) <= budget:
                lo = max(lo, k)
            else:
                hi = min(hi, k)
    hi = max(hi, lo + 1)  # a non-monotone earlier measurement: trust the fitting one
    sides: list[bool] = []
    calls = 0
    while hi - lo > 1 and calls < max_calls:
        if len(sides) >= 2 and sides[-1] == sides[-2] and lo >= 0 and hi < len(levels):
            k = (lo + hi) // 2
        else:
            points = sorted((q, curve.offset(len(d), q, pixels)) for q, d in trials.streams.items())
            # With ``give_up`` the first probe aims clearly over budget (a sure upper bound).
            target = budget * (LOSER_PROBE_OVERSHOOT if give_up is not None and not sides else 1.0)
            k = lo + 1
            for j in range(hi - 1, lo, -1):
                q = levels[j]
                if curve.predict(q, pixels, _offset_at(q, points, curve, prior)) <= target:
                    k = j
                    break
            if give_up is not None and not sides and k + 1 < hi:
                k += 1
        calls += 1
        data = trials(levels[k])
        fits = len(data) <= budget
        sides.append(fits)
        if fits:
            lo = k
        else:
            hi = k
            if give_up is not None and give_up(data):
                return None
    if lo < 0:
        return None
    q = levels[lo]
    return q, trials.streams[q]
