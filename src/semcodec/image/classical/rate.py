"""Rate control: the best decoded image whose IMAGE stream (framing included) fits a byte budget.

For one scale, quality is binary-searched to the largest value whose file fits (codec sizes are
non-decreasing in quality; a non-monotone step only costs optimality, never the budget, because
every accepted candidate is measured).

With several candidate scales (``downscale="auto"``) the decoded, upscaled result with the best
PSNR against the input wins. Instead of trying every scale, a hill climb over the sorted scales
starts where the budget gives about :data:`START_BPP` bits per *downscaled* pixel, and moves to the
finer or coarser neighbour while PSNR improves (PSNR is unimodal in the scale in practice; a scale
where nothing fits counts as worst). Typically 3-5 scales are coded, each with its own quality search
bracketed by what the neighbours achieved (a finer scale affords no higher quality, a coarser one no
lower).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ...container import stream_cost
from ...errors import RateError
from .codecs import CodecAdapter
from .resample import downscale, scaled_size, upscale

#: Cap on encoder calls per scale in the quality search (covers 0..100 to one step in 8 calls).
MAX_SEARCH_STEPS = 8
#: Bits per downscaled pixel where the scale search starts (the PSNR-best scales of the six codecs on
#: Kodak sit between ~0.2 and ~0.8 bpp of the small image).
START_BPP = 0.35


def payload_budget(max_bytes: int) -> int:
    """Largest payload length ``n`` with ``stream_cost(n) <= max_bytes`` (−1 if none)."""
    n = max_bytes - stream_cost(0)
    while n >= 0 and stream_cost(n) > max_bytes:
        n -= 1
    return n


def fit_quality(
    encode: Callable[[int], bytes], qmin: int, qmax: int, budget: int, max_steps: int = MAX_SEARCH_STEPS
) -> tuple[int, bytes] | None:
    """Largest quality in ``[qmin, qmax]`` whose output is ≤ ``budget`` bytes, or ``None``."""
    lo_data = encode(qmin)
    if qmax <= qmin:
        return (qmin, lo_data) if len(lo_data) <= budget else None
    if len(lo_data) > budget:
        return None
    best = (qmin, lo_data)
    hi_data = encode(qmax)
    if len(hi_data) <= budget:
        return qmax, hi_data
    lo, hi = qmin, qmax
    for _ in range(max_steps):
        if hi - lo <= 1:
            break
        mid = (lo + hi) // 2
        data = encode(mid)
        if len(data) <= budget:
            lo, best = mid, (mid, data)
        else:
            hi = mid
    return best


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


@dataclass(frozen=True)
class Choice:
    """The operating point rate control picked (reported by tools such as the acceptance script)."""

    factor: float
    quality: int
    data: bytes
    psnr: float


def choose(
    codec: CodecAdapter,
    image: np.ndarray,
    max_bytes: int,
    scales: Sequence[float],
    max_steps: int = MAX_SEARCH_STEPS,
) -> Choice:
    """Best-PSNR operating point over ``scales`` whose framed stream is ≤ ``max_bytes``."""
    budget = payload_budget(max_bytes)
    h, w = image.shape[:2]
    by_size: dict[tuple[int, int], float] = {}
    for f in sorted(scales):  # finest first; factors that give the same size are tried once
        by_size.setdefault(scaled_size(w, h, f), f)
    factors = list(by_size.values())
    results: dict[int, Choice | None] = {}

    def evaluate(i: int) -> Choice | None:
        if i in results:
            return results[i]
        lo, hi = codec.qmin, codec.qmax
        finer = [results[j] for j in results if j < i and results[j] is not None]
        coarser = [results[j] for j in results if j > i and results[j] is not None]
        if finer:
            lo = max(c.quality for c in finer)  # type: ignore[union-attr]
        if coarser:
            hi = min(c.quality for c in coarser)  # type: ignore[union-attr]
        small = downscale(image, factors[i])

        def enc(q: int) -> bytes:
            return codec.encode(small, q)

        found = fit_quality(enc, lo, max(lo, hi), budget, max_steps) if budget >= 0 else None
        if found is None and lo > codec.qmin:  # the bracket was only a hint
            found = fit_quality(enc, codec.qmin, max(lo, hi), budget, max_steps)
        if found is None:
            results[i] = None
        elif len(factors) == 1:
            results[i] = Choice(factors[i], found[0], found[1], float("nan"))
        else:
            score = psnr(upscale(codec.decode(found[1]), w, h), image)
            results[i] = Choice(factors[i], found[0], found[1], score)
        return results[i]

    def score(i: int) -> float:
        if not 0 <= i < len(factors):
            return float("-inf")
        c = evaluate(i)
        return float("-inf") if c is None else c.psnr

    if len(factors) == 1:
        best = evaluate(0)
    else:
        target_pixels = max(1.0, 8 * max(budget, 1) / START_BPP)
        want = (w * h / target_pixels) ** 0.5
        i = min(range(len(factors)), key=lambda k: abs(np.log(factors[k] / max(want, 1.0))))
        while i < len(factors) - 1 and evaluate(i) is None:  # too fine: go coarser until something fits
            i += 1
        while True:
            here = score(i)
            step = max((-1, 1), key=lambda d: score(i + d))
            if score(i + step) > here:
                i += step
            else:
                break
        best = evaluate(i)
    if best is None:
        if budget < 0:
            detail = "not even the stream framing fits"
        else:
            smallest = scaled_size(w, h, max(scales))
            detail = f"even quality {codec.qmin} at {smallest[0]}x{smallest[1]} pixels needs more"
        hint = "" if codec.name in ("webp", "jxl") else " or use a profile with smaller headers (webp, jxl)"
        raise RateError(
            f"{codec.name}: no operating point fits {max_bytes} bytes for the image stream ({detail});"
            f" raise --bpp{hint}"
        )
    return best
