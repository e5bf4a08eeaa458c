"""Per-image choice of the lossless profile's base (codec and quality) by real file size.

Why: the best base quality differs per image (a busy image wants a coarse base, a smooth one a finer
base), and the residual model's quality embedding takes any quality (it uses the nearest trained
one), so qualities between and below the trained ones are valid candidates. Coding a candidate in
full costs a KV-cached coding pass plus the adapter fit, so the search is three-stage::

    candidates (codec:quality) ──► base bytes + tile estimate of the residual (:func:`.estimate.total_bits`,
                                   ~1.5 s each on a Kodak image)
                               ──► the ``finalists`` best by that estimate: whole-image teacher-forced
                                   estimate with the bias-form adapter fitted (:func:`.coder.fit_residual`)
                               ──► only the best finalist is coded, with that adapter (its low-rank
                                   form tried first, :func:`.coder.try_low_rank`)

The choice travels in the IMAGE payload (codec id and quality byte), so the decoder never searches:
it decodes the one base the file names. Ties keep the better-estimated candidate (deterministic).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..container import Stream, StreamKind
from .base_codec import BASES
from .coder import ResidualFit, encode_residual, fit_residual, try_low_rank
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
    estimate_bits: float  # base bits + tile estimate of the residual with the trained head
    refined_bits: float | None = None  # base bits + whole-image estimate with the fitted adapter (finalists)
    streams: list[Stream] | None = None  # set for the one coded candidate
    size: int | None = None  # its framed IMAGE + RESIDUAL bytes (the container adds the same header to each)


def search_base(model: ResidualLM, x: np.ndarray, candidates: list[Candidate], finalists: int,
                adapt_steps: int, adapter_rank: int) -> tuple[list[Stream], list[Trial]]:
    """Rank ``candidates`` by their tile estimate, refine the best ``finalists``, code the best of those.

    A finalist gets :func:`.coder.fit_residual` (whole image, bias-form adapter, estimated bits); the
    winner's fit goes through :func:`.coder.try_low_rank` and its adapter to :func:`.coder.encode_residual`,
    so the file equals a single-base encode of the winner. With one finalist nothing is refined here.
    Returns (winning streams, every trial in tile-estimate order) so callers can report the search.
    """
    trials, bases = [], {}
    for c in candidates:
        bits, base, xl = total_bits(model, x, c.quality, c.codec)
        trials.append(Trial(c, bits))
        bases[c] = (base, xl)
    trials.sort(key=lambda t: t.estimate_bits)  # stable: equal estimates keep the given order
    final = trials[: max(1, finalists)]
    fits: dict[Candidate, ResidualFit] = {}
    if len(final) > 1:
        for t in final:
            base, xl = bases[t.candidate]
            fits[t.candidate] = fit_residual(model, x, xl, t.candidate.quality, adapt_steps)
            t.refined_bits = 8.0 * len(base) + fits[t.candidate].bits
        best = min(final, key=lambda t: t.refined_bits)  # min keeps the first of equals: the better tile estimate
    else:
        best = final[0]
    base, xl = bases[best.candidate]
    fit = fits.get(best.candidate)
    fits.clear()  # the losers' tokens are large
    adapter = try_low_rank(model, fit, adapt_steps, adapter_rank).adapter if fit is not None else None
    residual = encode_residual(model, x, xl, best.candidate.quality, adapt_steps, adapter_rank, adapter)
    best.streams = [Stream(StreamKind.IMAGE, base), Stream(StreamKind.RESIDUAL, residual)]
    best.size = sum(s.framed_size() for s in best.streams)
    return best.streams, trials
