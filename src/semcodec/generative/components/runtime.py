"""Run-time determinism helpers shared by every diffusion decoder.

A generative decoder is only a codec if the receiver rebuilds the *same* pixels: the same weights,
the same seed and the same arithmetic. On CPU the last part means a fixed intra-op thread count
(parallel reductions may sum in a different order), so decoding always runs inside
:func:`fixed_threads`, whatever the caller's torch setting.
"""

from __future__ import annotations

import os

import torch

DECODE_THREADS_ENV = "SEMCODEC_DECODE_THREADS"


def decode_threads() -> int:
    """Thread count used for bit-exact decoding (``$SEMCODEC_DECODE_THREADS``, default 1)."""
    raw = os.environ.get(DECODE_THREADS_ENV, "1")
    try:
        return max(1, int(raw))
    except ValueError:
        return 1


def fixed_threads(n: int | None = None):
    """:func:`semcodec.determinism.fixed_threads` with the decoder's default count (:func:`decode_threads`)."""
    from ...determinism import fixed_threads as _fixed

    return _fixed(decode_threads() if n is None else n)


def seeded_noise(shape: tuple[int, ...], seed: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Gaussian noise drawn on the CPU from ``seed``: identical on every machine, moved to a device later."""
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    return torch.randn(shape, generator=gen, dtype=torch.float32).to(dtype)
