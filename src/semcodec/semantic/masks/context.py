"""JBIG-style template contexts and the adaptive probability estimator of the mask coder.

Each pixel is predicted from already-coded neighbours (a *template*, as in JBIG1 / JBIG2 generic
regions). The neighbours' bits form an integer context ``c``; per context we keep adaptive counts
``(n0, n1)`` and mix them with a prior probability ``P1[c]`` learned offline on BSDS500 train/val
masks (``prior.py``)::

    p(1 | c) = (n1 + w * P1[c]) / (n0 + n1 + w)        counts halve when n0 + n1 > limit

Everything is integer arithmetic so the encoder (numba, whole mask at once) and the decoder (one
pixel at a time, plain Python) compute bit-identical 16-bit probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

PROB_BITS = 16
PROB_ONE = 1 << PROB_BITS

#: Template offsets (dy, dx), dy <= 0, and dx < 0 on the current row. Bit k of the context is
#: the pixel at TEMPLATE[k]. Row -2: x-2..x+2, row -1: x-3..x+3, row 0: x-4..x-1, plus two far pixels.
TEMPLATE_16: tuple[tuple[int, int], ...] = (
    (0, -1), (0, -2), (0, -3), (0, -4),
    (-1, -3), (-1, -2), (-1, -1), (-1, 0), (-1, 1), (-1, 2), (-1, 3),
    (-2, -2), (-2, -1), (-2, 0), (-2, 1), (-2, 2),
)

#: JBIG1's three-line 10-pixel template (without the adaptive AT pixel moved), for the no-prior mode.
TEMPLATE_10: tuple[tuple[int, int], ...] = (
    (0, -1), (0, -2), (0, -3), (0, -4),
    (-1, -2), (-1, -1), (-1, 0), (-1, 1), (-1, 2),
    (-2, 0),
)

TEMPLATES: dict[str, tuple[tuple[int, int], ...]] = {"t16": TEMPLATE_16, "t10": TEMPLATE_10}


@dataclass(frozen=True)
class EstimatorParams:
    """Integer estimator settings (counts are in units of ``inc`` per observed pixel)."""

    inc: int = 4  # count increment per pixel
    prior_weight: int = 8  # w above, in count units (8 = two pixels' worth)
    limit: int = 1024  # halve counts above this (tracks non-stationary statistics)


def template_pad(template: tuple[tuple[int, int], ...]) -> tuple[int, int, int]:
    """Padding (top, left, right) so every template pixel of every mask pixel is inside the array."""
    top = -min(dy for dy, _ in template)
    left = -min(dx for _, dx in template)
    right = max(0, max(dx for _, dx in template))
    return top, left, right


def contexts(mask: np.ndarray, template: tuple[tuple[int, int], ...]) -> np.ndarray:
    """Context of every pixel in raster order (int64, shape H*W); out-of-image neighbours are 0."""
    h, w = mask.shape
    top, left, right = template_pad(template)
    pad = np.zeros((h + top, w + left + right), dtype=np.int64)
    pad[top:, left : left + w] = mask
    ctx = np.zeros((h, w), dtype=np.int64)
    for k, (dy, dx) in enumerate(template):
        ctx |= pad[top + dy : top + dy + h, left + dx : left + dx + w] << k
    return ctx.reshape(-1)


@numba.njit(cache=True)
def _adaptive_probs(ctx, bits, prior, inc, w, limit):  # pragma: no cover - compiled
    n = ctx.shape[0]
    nctx = prior.shape[0]
    c0 = np.zeros(nctx, np.int64)
    c1 = np.zeros(nctx, np.int64)
    q = np.empty(n, np.int64)
    for i in range(n):
        c = ctx[i]
        tot = c0[c] + c1[c] + w
        p = ((c1[c] << 16) + w * prior[c]) // tot
        if p < 1:
            p = 1
        elif p > 65535:
            p = 65535
        q[i] = p
        if bits[i]:
            c1[c] += inc
        else:
            c0[c] += inc
        if c0[c] + c1[c] > limit:
            c0[c] = (c0[c] + 1) >> 1
            c1[c] = (c1[c] + 1) >> 1
    return q


def adaptive_probs(ctx: np.ndarray, bits: np.ndarray, prior: np.ndarray, est: EstimatorParams) -> np.ndarray:
    """16-bit probability of a 1 for every pixel, given all bits (encoder side, one pass)."""
    return _adaptive_probs(ctx.astype(np.int64), bits.astype(np.uint8), prior.astype(np.int64),
                           est.inc, est.prior_weight, est.limit)


class AdaptiveState:
    """Decoder-side twin of :func:`adaptive_probs`: same integer arithmetic, one pixel at a time."""

    __slots__ = ("c0", "c1", "prior", "inc", "w", "limit")

    def __init__(self, prior: np.ndarray, est: EstimatorParams):
        self.prior = prior.astype(np.int64).tolist()
        self.c0 = [0] * len(self.prior)
        self.c1 = [0] * len(self.prior)
        self.inc, self.w, self.limit = est.inc, est.prior_weight, est.limit

    def prob(self, c: int) -> int:
        p = ((self.c1[c] << 16) + self.w * self.prior[c]) // (self.c0[c] + self.c1[c] + self.w)
        return 1 if p < 1 else (65535 if p > 65535 else p)

    def update(self, c: int, bit: int) -> None:
        if bit:
            self.c1[c] += self.inc
        else:
            self.c0[c] += self.inc
        if self.c0[c] + self.c1[c] > self.limit:
            self.c0[c] = (self.c0[c] + 1) >> 1
            self.c1[c] = (self.c1[c] + 1) >> 1


def ideal_bits(q: np.ndarray, bits: np.ndarray) -> float:
    """Shannon code length of ``bits`` under the 16-bit probabilities ``q`` (for tuning/analysis)."""
    p = np.where(bits.astype(bool), q, PROB_ONE - q) / PROB_ONE
    return float(-np.log2(p).sum())
