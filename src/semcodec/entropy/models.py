"""Exact integer probability models: the only kind of distribution the coders hand to constriction.

An encoder and a decoder must see bit-for-bit the same model, so every coder reduces its floating
point prediction to integers first (on a grid, under one thread) and lets constriction normalise
those integers exactly::

    float pmf p (n symbols) ─► quantise_pmf ─► integer frequencies f ≥ 1 ─► categorical()
    integer P(1) in 1 .. 2^16 − 1               ─► bernoulli() / bernoulli_model(p)

Every symbol keeps a frequency of at least 1, so whatever the prediction, any symbol stays codable.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, TypeVar

import numpy as np

#: Bernoulli models take P(bit = 1) as an integer in 1 .. 2^PROB_BITS − 1.
PROB_BITS = 16
PROB_ONE = 1 << PROB_BITS

T = TypeVar("T")


def quantise_pmf(p: T, total_bits: int, *, reserve: bool) -> T:
    """Integer frequencies ``floor(p · s) + 1`` of a pmf ``p`` over its last axis (``p >= 0``).

    ``s = 2^total_bits − n`` with ``reserve`` (n = alphabet size: the frequencies then sum to at most
    2^total_bits), else ``s = 2^total_bits``. numpy input gives int64; a torch tensor keeps its float
    dtype (the values are integers; a power-of-two ``s`` scales without rounding).
    """
    n = p.shape[-1]  # type: ignore[attr-defined]
    scale = float((1 << total_bits) - (n if reserve else 0))
    if isinstance(p, np.ndarray):
        return (p.astype(np.float64) * scale).astype(np.int64) + 1  # type: ignore[return-value]
    return p.mul(scale).floor_().add_(1.0)  # type: ignore[attr-defined]


@lru_cache(maxsize=1)
def categorical() -> Any:
    """constriction's categorical family over integer frequency rows (normalised exactly, not 'perfect')."""
    import constriction

    return constriction.stream.model.Categorical(perfect=False)


@lru_cache(maxsize=1)
def bernoulli() -> Any:
    """constriction's Bernoulli family; parameters are ``p / PROB_ONE`` for integer ``p``."""
    import constriction

    return constriction.stream.model.Bernoulli(perfect=False)


def bernoulli_model(p: int) -> Any:
    """A fixed Bernoulli model with P(1) = p / 2^16 (callers in hot loops cache these per ``p``)."""
    import constriction

    return constriction.stream.model.Bernoulli(p / PROB_ONE, perfect=False)
