"""Per-image choice of the lossless profile's base (codec and quality) by real file size.

Why: the best base quality differs per image (a busy image wants a coarse base, a smooth one a finer
base), and the residual model's quality embedding takes any quality (it uses the nearest trained
one), so qualities between and below the trained ones are valid candidates. Coding a candidate in
full costs a coding pass plus the adapter fit, so the search is two-stage::

    candidates (codec:quality) ──► base bytes + tile estimate of the residual (:func:`.estimate.total_bits`,
                                   ~1.5 s each on a Kodak image)
                               ──► the ``coded`` best by estimate are coded for real
                               ──► the smallest real IMAGE + RESIDUAL streams win

The choice travels in the IMAGE payload (codec id and quality byte), so the decoder never searches:
it decodes the one base the file names. Ties keep the better-estimated candidate (deterministic).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..container import Stream, StreamKind
from .base_codec import BASES
from .estimate import total_bits
from .model import ResidualLM

#: default candidate qualities: the trained ones (30/50/70) and the steps between and just below them
DEFAULT_CANDIDATES = "20,30,40,50,60,70"


@dataclass(frozen=True)
class Candidate:
    codec: str
    quality: int


def parse_candidates(text: str, default_codec: str) -> list[Candidate]:
    """``"20,30,jpeg:60"`` -> candidates; a bare quality uses ``default_codec``. ValueError if malformed."""
    out: list[Candidate] = []
    for item in (t.strip() for t in text.split(",")):
        if not item:
            continue
        codec, _, q = item.rpartition(":")
        codec = codec.strip() or default_codec
        BASES.entry(codec)  # unknown codec names fail here
        quality = int(q)
        if not 0 <= quality <= 100:
            raise ValueError(f"base quality {quality} outside 0..100")
        if Candidate(codec, quality) not in out:
            out.append(Candidate(codec, quality))
    if not out:
        raise ValueError("no base candidates given")
    return out


@dataclass
class Trial:
    candidate: Candidate
    estimate_bits: float
    streams: list[Stream] | None = None  # set when coded for real
    size: int | None = None  # framed IMAGE + RESIDUAL bytes (the container adds the same header to each)


def search_base(model: ResidualLM, x: np.ndarray, candidates: list[Candidate], coded: int,
                encode_residual: Callable[[np.ndarray, np.ndarray, int], bytes]) -> tuple[list[Stream], list[Trial]]:
    """Rank ``candidates`` by estimated bits, code the best ``coded`` for real, return the smallest streams.

    ``encode_residual(x, xl, quality)`` is the profile's residual coder (adapter settings bound).
    Returns (winning streams, every trial in estimate order) so callers can report the search.
    """
    trials, bases = [], {}
    for c in candidates:
        bits, base, xl = total_bits(model, x, c.quality, c.codec)
        trials.append(Trial(c, bits))
        bases[c] = (base, xl)
    trials.sort(key=lambda t: t.estimate_bits)  # stable: equal estimates keep the given order
    best: Trial | None = None
    for t in trials[: max(1, coded)]:
        base, xl = bases[t.candidate]
        t.streams = [Stream(StreamKind.IMAGE, base),
                     Stream(StreamKind.RESIDUAL, encode_residual(x, xl, t.candidate.quality))]
        t.size = sum(s.framed_size() for s in t.streams)
        if best is None or t.size < best.size:
            best = t
    assert best is not None and best.streams is not None
    return best.streams, trials
