"""Vector quantisation with an EMA codebook, and the uniform code of its indices (PerCo, Careil et al. 2024).

::

    e (B×D×gh×gw) ─► nearest codeword of the codebook (V×D) ─► indices ─► uniform code: ⌈gh·gw·log2 V⌉ bits
    decoder: indices ─► codebook lookup ─► quantised map (B×D×gh×gw)

Training (van den Oord et al. 2017, App. A.1; the codebook is not a gradient parameter):
with n_i the number of vectors assigned to code i in the batch and Σz their sum,

    N_i ← γ·N_i + (1−γ)·n_i      m_i ← γ·m_i + (1−γ)·Σz      e_i = m_i / Ñ_i,
    Ñ_i = (N_i + ε) / (Σ_j N_j + V·ε) · Σ_j N_j     (Laplace smoothing: no code divides by zero)

plus the commitment loss β‖e − sg(q)‖² on the encoder. Codes whose N_i falls below ``restart_below``
(optional) are restarted on random vectors of the batch, so a large V does not end with dead codes.

Indices are packed as one mixed-radix integer, so a non-power-of-two V (PerCo's 8196) wastes < 1 bit
per image, not per index. The decoder only looks codewords up, so its output is thread-independent.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import FormatError

MAX_SYMBOLS = 1 << 20


def index_bits(n: int, V: int) -> int:
    """Exact bit count of ``n`` indices in 0..V−1 coded uniformly: ⌈n·log2 V⌉."""
    return ((V**n) - 1).bit_length() if n else 0


def pack_indices(indices: list[int] | torch.Tensor, V: int) -> bytes:
    idx = [int(i) for i in (indices.flatten().tolist() if isinstance(indices, torch.Tensor) else indices)]
    if any(not 0 <= i < V for i in idx):
        raise ValueError("index outside the codebook")
    if V & (V - 1) == 0:  # power of two: plain bit packing, linear time
        b = V.bit_length() - 1
        value = 0
        for i in reversed(idx):
            value = (value << b) | i
    else:
        value = 0
        for i in reversed(idx):
            value = value * V + i
    return value.to_bytes((index_bits(len(idx), V) + 7) // 8, "little")


def unpack_indices(data: bytes, n: int, V: int) -> list[int]:
    if not 0 <= n <= MAX_SYMBOLS or V < 2:
        raise FormatError("corrupted VQ stream: bad symbol count")
    if len(data) != (index_bits(n, V) + 7) // 8:
        raise FormatError(f"corrupted VQ stream: {len(data)} bytes for {n} indices of a {V}-word codebook")
    value = int.from_bytes(data, "little")
    out = []
    if V & (V - 1) == 0:
        b = V.bit_length() - 1
        mask = V - 1
        for _ in range(n):
            out.append(value & mask)
            value >>= b
    else:
        for _ in range(n):
            value, r = divmod(value, V)
            out.append(r)
    if value:
        raise FormatError("corrupted VQ stream: value exceeds the index range")
    return out


class EMACodebook(nn.Module):
    """V codewords of dimension D, updated by exponential moving averages (see the module docstring)."""

    def __init__(self, size: int, dim: int, decay: float = 0.99, eps: float = 1e-5,
                 restart_below: float | None = None, seed: int = 0) -> None:
        super().__init__()
        if size < 2 or dim < 1 or not 0.0 <= decay < 1.0:
            raise ValueError(f"bad codebook: size {size}, dim {dim}, decay {decay}")
        self.size, self.dim, self.decay, self.eps, self.restart_below = size, dim, decay, eps, restart_below
        gen = torch.Generator().manual_seed(seed)  # the same start on every device
        embed = torch.randn(size, dim, generator=gen)
        self.register_buffer("embed", embed)
        #: N_i starts at 1 and m_i at e_i, so e_i = m_i / N_i holds from the first step
        self.register_buffer("cluster_size", torch.ones(size))
        self.register_buffer("embed_sum", embed.clone())

    def nearest(self, flat: torch.Tensor) -> torch.Tensor:
        """Index of the nearest codeword (squared Euclidean distance) of each row of ``flat`` (M×D)."""
        w = self.embed.to(flat.dtype)
        d = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ w.T + w.pow(2).sum(1)[None]
        return d.argmin(1)

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        return F.embedding(indices, self.embed)

    @torch.no_grad()
    def ema_update(self, flat: torch.Tensor, indices: torch.Tensor) -> None:
        """One EMA step from the batch vectors ``flat`` (M×D) and their assigned codes."""
        flat = flat.to(self.embed.dtype)
        onehot = F.one_hot(indices, self.size).to(flat.dtype)  # M×V
        n = onehot.sum(0)
        sums = onehot.T @ flat
        g = self.decay
        self.cluster_size.mul_(g).add_(n, alpha=1 - g)
        self.embed_sum.mul_(g).add_(sums, alpha=1 - g)
        total = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.eps) / (total + self.size * self.eps) * total
        self.embed.copy_(self.embed_sum / smoothed[:, None])
        if self.restart_below is not None and len(flat):
            dead = self.cluster_size < self.restart_below
            k = int(dead.sum())
            if k:
                pick = torch.randint(0, len(flat), (k,), device=flat.device)
                self.embed[dead] = flat[pick]
                self.embed_sum[dead] = flat[pick]
                self.cluster_size[dead] = 1.0

    def forward(self, e: torch.Tensor, beta: float = 0.25) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """e (B×D×h×w) → (indices B×h×w, straight-through quantised map, commitment loss β‖e − sg(q)‖²).

        In training mode the codebook takes one EMA step towards the batch."""
        b, d, h, w = e.shape
        flat = e.permute(0, 2, 3, 1).reshape(-1, d)
        idx = self.nearest(flat.detach())
        q = self.lookup(idx).to(e.dtype).view(b, h, w, d).permute(0, 3, 1, 2)
        commit = beta * F.mse_loss(e, q.detach())
        if self.training:
            self.ema_update(flat.detach(), idx)
        return idx.view(b, h, w), e + (q - e).detach(), commit


def grid_for(h: int, w: int, cell: int) -> tuple[int, int]:
    """Grid of ``cell``×``cell`` latent cells covering an h×w latent."""
    return max(1, math.ceil(h / cell)), max(1, math.ceil(w / cell))
