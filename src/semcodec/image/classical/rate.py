"""Rate control: the best decoded image whose IMAGE stream (framing included) fits a byte budget.

For one scale the answer is the largest quality whose file fits (codec sizes are non-decreasing in
quality; a non-monotone step only costs optimality, never the budget, because every accepted
candidate is measured). Two searches find it:

* ``"model"`` (default): :func:`.rate_model.fit_quality_model` aims each encode with a per-codec
  size curve (offset learned from the neighbouring scales and the encodes so far) and stops on a
  measured "fits / next level does not" pair: about 2-4 encodes per scale instead of 8-9, skipping
  qualities the encoder maps to the same stream (:meth:`~.codecs.CodecAdapter.distinct_qualities`).
* ``"bisect"``: :func:`fit_quality`, the original binary search (kept as the reference that
  ``scripts/bench_rate_control.py`` measures the model search against).

Both return the same stream whenever size is monotone in quality (that keeps the golden files).

With several candidate scales (``downscale="auto"``) the decoded, upscaled result with the best
PSNR against the input wins. Instead of trying every scale, a hill climb over the sorted scales
starts where the budget gives about :data:`START_BPP` bits per *downscaled* pixel, and moves to the
finer or coarser neighbour while PSNR improves (PSNR is unimodal in the scale in practice; a scale
where nothing fits counts as worst). Each scale's quality search is bracketed by what the neighbours
achieved (a finer scale affords no higher quality, a coarser one no lower). A neighbour only matters
if it beats the current scale, so the model search drops it as soon as one of its too-large streams
scores no better (PSNR grows with quality, so its fitting stream would score lower still): a losing
neighbour usually costs one encode.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ...container import stream_cost
from ...errors import RateError
from .codecs import CodecAdapter
from .rate_model import CURVES, DEFAULT_CURVE, Trials, fit_quality_model
from .resample import downscale, scaled_size, upscale

#: Cap on bisection steps per scale (covers 0..100 to one step in 8 calls, after the two end probes);
#: the model search may make ``MAX_SEARCH_STEPS + 2`` encodes per scale, the same worst case.
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


#: The quality searches :func:`choose` knows: ``"model"`` (default, :mod:`.rate_model`) and
#: ``"bisect"`` (:func:`fit_quality`; kept as the reference the benchmark compares against).
SEARCHES = ("model", "bisect")


def choose(
    codec: CodecAdapter,
    image: np.ndarray,
    max_bytes: int,
    scales: Sequence[float],
    max_steps: int = MAX_SEARCH_STEPS,
    search: str = "model",
) -> Choice:
    """Best-PSNR operating point over ``scales`` whose framed stream is ≤ ``max_bytes``."""
    if search not in SEARCHES:
        raise ValueError(f"unknown rate search {search!r} (one of {', '.join(SEARCHES)})")
    budget = payload_budget(max_bytes)
    h, w = image.shape[:2]
    by_size: dict[tuple[int, int], float] = {}
    for f in sorted(scales):  # finest first; factors that give the same size are tried once
        by_size.setdefault(scaled_size(w, h, f), f)
    factors = list(by_size.values())
    results: dict[int, Choice | None] = {}
    curve = CURVES.get(codec.name, DEFAULT_CURVE)
    offsets: dict[int, float] = {}  # model offset r measured near the budget, per evaluated scale
    dropped: set[int] = set()  # scales the model search proved cannot beat the climb's current best

    def prior_offset(i: int) -> float:
        if not offsets:
            return curve.kappa * np.log(factors[i])
        j = min(offsets, key=lambda k: (abs(k - i), k))
        return offsets[j] + curve.kappa * np.log(factors[i] / factors[j])

    def fit_model(i: int, small: np.ndarray, hi: int, bar: float) -> tuple[int, bytes] | None:
        pixels = small.shape[0] * small.shape[1]
        trials = Trials(lambda q: codec.encode(small, q))
        levels = codec.distinct_qualities(codec.qmin, hi)

        def loses(data: bytes) -> bool:
            # A stream over budget scores at least what the fitting one would (PSNR grows with
            # quality), so if even it is no better than ``bar`` this scale cannot win the climb.
            if psnr(upscale(codec.decode(data), w, h), image) <= bar:
                dropped.add(i)
                return True
            return False

        give_up = loses if bar > float("-inf") else None
        found = fit_quality_model(trials, levels, budget, pixels, curve, prior_offset(i), max_steps + 2, give_up)
        if trials.streams:
            q, data = min(trials.streams.items(), key=lambda t: abs(np.log(max(len(t[1]), 1) / max(budget, 1))))
            offsets[i] = curve.offset(len(data), q, pixels)
        return found

    def evaluate(i: int, bar: float = float("-inf")) -> Choice | None:
        """The scale's best fitting stream; ``None`` if nothing fits or it scores ≤ ``bar``."""
        if i in results:
            return results[i]
        if i in dropped:
            return None
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

        if budget < 0:
            found = None
        elif search == "model":
            # Bisection's answer for monotone sizes: the largest fitting quality ≤ max(lo, hi).
            found = fit_model(i, small, max(lo, hi), bar)
            if i in dropped:
                return None  # not recorded: its exact quality is unknown, so it brackets nothing
        else:
            found = fit_quality(enc, lo, max(lo, hi), budget, max_steps)
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

    def score(i: int, bar: float = float("-inf")) -> float:
        if not 0 <= i < len(factors):
            return float("-inf")
        c = evaluate(i, bar)
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
            # A neighbour must beat ``here`` to matter (the climb moves only to a better one).
            step = max((-1, 1), key=lambda d: score(i + d, here))
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
