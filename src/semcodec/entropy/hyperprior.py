"""The determinism rule shared by the mean-scale hyperprior codecs (``lic`` and resulic's latent codec).

Both are CompressAI ``CompressionModel``s with an ``EntropyBottleneck`` for the side latent z and a
``GaussianConditional`` for the main latent y (Minnen et al. 2018). The decoder must rebuild exactly
the encoder's Gaussian table indexes and means from ẑ, so both codecs go through this module::

    z ─► EB.compress ─► z_bytes ─► EB.decompress ─► ẑ ─► h_s ─► (σ, μ) ─► ÷ step ─┬► σ: table index
                                                     (one thread)                 └► μ: [snap to grid]
    y ─► ÷ step ─► GC.compress(index, μ) ─► y_bytes ─► GC.decompress(index, μ) ─► ŷ (in step units)

The rule:

1. h_s runs under ``fixed_threads(1)`` (torch and BLAS), so its floats do not depend on the caller's
   thread count (reduction order);
2. σ -> index counts the scale-table entries below the lower-bounded σ (one ``searchsorted``; equal
   to ``GaussianConditional.build_indexes``, NaN included);
3. the CDF tables are the quantised ones stored in the weights file, never recomputed at load.

Means differ between the two shipped formats: ``lic`` snaps μ to a 1/64 grid (``mean_grid``), the
latent codec uses μ / step as computed. Snapping the latent codec's means would change its streams,
so the grid is a per-codec setting (``None`` = no snapping) and not part of the shared rule.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor, nn

from ..determinism import fixed_threads


class Hyperprior(Protocol):
    """What the rule needs from a model: CompressAI's two entropy models and the hyper-synthesis."""

    entropy_bottleneck: nn.Module
    gaussian_conditional: nn.Module
    h_s: nn.Module


def scale_indexes(gc: nn.Module, scales: Tensor) -> Tensor:
    """Gaussian table index per σ: ``GaussianConditional.build_indexes`` in one call (int32)."""
    scales = gc.lower_bound_scale(scales).contiguous()
    table = gc.scale_table[:-1].contiguous()
    return torch.searchsorted(table, scales, side="left").int()


def gaussian_params(model: Hyperprior, z_hat: Tensor, step: float = 1.0,
                    mean_grid: float | None = None) -> tuple[Tensor, Tensor]:
    """(table indexes, means) of y / ``step`` from the decoded side latent ``z_hat``."""
    with fixed_threads(1):
        scales, means = model.h_s(z_hat).chunk(2, 1)
        if step != 1.0:
            scales, means = scales / step, means / step
        indexes = scale_indexes(model.gaussian_conditional, scales)
        if mean_grid is not None:
            means = torch.round(means / mean_grid) * mean_grid
    return indexes, means.contiguous()


def encode_latents(model: Hyperprior, y: Tensor, z: Tensor, step: float = 1.0, mean_grid: float | None = None,
                   known: tuple[Tensor, Tensor, Tensor] | None = None) -> tuple[bytes, bytes]:
    """(z_bytes, y_bytes) for one image. ``known`` = (ẑ, indexes, means) the caller already computed
    (e.g. for a rate estimate): reused only if ẑ equals what the decoder gets from z_bytes."""
    z_bytes = model.entropy_bottleneck.compress(z)[0]
    z_hat = model.entropy_bottleneck.decompress([z_bytes], z.shape[-2:])
    if known is not None and torch.equal(z_hat, known[0]):
        indexes, means = known[1], known[2]
    else:
        indexes, means = gaussian_params(model, z_hat, step, mean_grid)
    y_bytes = model.gaussian_conditional.compress(y / step if step != 1.0 else y, indexes, means=means)[0]
    return z_bytes, y_bytes


def guarded(data: bytes, symbols: int) -> bytes:
    """``data`` followed by enough zero bytes that CompressAI's rANS decoder never reads past the end.

    The C++ decoder does not check its input length: it reads one 32-bit word per symbol whenever its
    state runs low, and a file whose header promises far more symbols than its bytes hold (a forged
    6324×6324 ``lic`` header on 200 bytes) made it read past the end of the buffer and segfault.
    Per symbol it reads at most one word, plus the bypass words of out-of-range values, which the
    data bits pay for (a run of bypass chunks needs 4 one-bits of state each): ``4·symbols + 64·len``
    bytes of zeros cover both. A valid stream is read exactly to its end (rANS reads back precisely
    what the encoder wrote), so the padding never changes what a valid file decodes to.
    """
    return data + bytes(4 * symbols + 64 * len(data) + 64)


def decode_latents(model: Hyperprior, z_bytes: bytes, y_bytes: bytes, z_shape: tuple[int, int],
                   step: float = 1.0, mean_grid: float | None = None) -> Tensor:
    """ŷ in units of ``step`` (multiply by ``step`` for y) from the two byte strings."""
    z_symbols = model.entropy_bottleneck.channels * z_shape[0] * z_shape[1]
    z_hat = model.entropy_bottleneck.decompress([guarded(z_bytes, z_symbols)], z_shape)
    indexes, means = gaussian_params(model, z_hat, step, mean_grid)
    return model.gaussian_conditional.decompress([guarded(y_bytes, indexes.numel())], indexes, means=means)
