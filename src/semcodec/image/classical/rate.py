"""Rate control: the best decoded image whose IMAGE stream (framing included) fits a byte budget.

For one scale, quality is binary-searched to the largest value whose file fits (codec sizes are
non-decreasing in quality; a non-monotone step only costs optimality, never the budget, because
every accepted candidate is measured). With several candidate scales (``downscale="auto"``) the
scales are tried from the finest down, each with its own quality search; the decoded, upscaled
result with the best PSNR against the input wins. The scan stops early once the budget reaches the
codec's top quality (a coarser scale cannot be better) or after two feasible scales in a row that are
worse than the best so far (PSNR is unimodal in the scale in practice).
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
    best: Choice | None = None
    worse_in_a_row = 0
    seen_sizes: set[tuple[int, int]] = set()
    for factor in sorted(scales):
        size = scaled_size(w, h, factor)
        if size in seen_sizes:
            continue
        seen_sizes.add(size)
        small = downscale(image, factor)
        found = fit_quality(lambda q, s=small: codec.encode(s, q), codec.qmin, codec.qmax, budget, max_steps)
        if found is None:
            continue
        quality, data = found
        if len(scales) == 1:
            return Choice(factor, quality, data, float("nan"))
        score = psnr(upscale(codec.decode(data), w, h), image)
        if best is None or score > best.psnr:
            best, worse_in_a_row = Choice(factor, quality, data, score), 0
        else:
            worse_in_a_row += 1
            if worse_in_a_row >= 2:
                break
        if quality == codec.qmax:
            break
    if best is None:
        if budget < 0:
            detail = "not even the stream framing fits"
        else:
            smallest = min(scaled_size(w, h, f) for f in scales)
            detail = f"even quality {codec.qmin} at {smallest[0]}x{smallest[1]} pixels needs more"
        hint = "" if codec.name in ("webp", "jxl") else " or use a profile with smaller headers (webp, jxl)"
        raise RateError(
            f"{codec.name}: no operating point fits {max_bytes} bytes for the image stream ({detail});"
            f" raise --bpp{hint}"
        )
    return best
