"""Per-image head adapter: the encoder fits ~450 numbers of the mixture head to the image and sends them.

Why: the residual LM is trained on BSDS500 (JPEG images, downsampled 2×), so its mixtures are
miscalibrated on camera or film images such as Kodak, above all for the channel-conditional G and B
predictions. The backbone state h does not depend on the head,
so the encoder can run the (exact, KV-cached) coding pass once, keep every h, fit a small adapter of
the head to this image by gradient descent on the teacher-forced bits, and code with the adapted head.
The decoder reads the adapter from the RESIDUAL stream and computes the same head. On Kodak this
saves about 0.1–0.2 bpsp of residual for a cost of a few hundred bytes (measured in the model card)::

    encoder: coding pass ─► h_t for every step ─► fit adapter (Adam, teacher-forced GMM bits)
             ─► quantise to a 1/32 grid (int8) ─► stream ─► decoder uses the same integers

The adapter (all zero = the trained head) per channel c ∈ {R, G, B}:

    z' = z ⊙ (1 + fs[c])                  FiLM scale of the head input
    a  = GELU(W1 z' + b1 + b1[c])          hidden bias
    θ  = W2 a + b2 + b2[c]                 mixture logits / means / log-scales offsets
    shift = S h + sb                       inter-channel mean-shift coefficients (G|R, B|R, B|G)

and, in the low-rank form (rank ρ ≥ 1, RESIDUAL stream version 5), a per-image update of the first
layer, W1 + U[c] V[c]ᵀ with U, V of shape (d, ρ): a = GELU(W1 z' + U[c] (V[c]ᵀ z') + b1 + b1[c]).
The biases alone can only move the head's operating point; the low-rank term lets the image re-weight
which features of h matter (on Kodak at rank 4: −0.8 % in total, net of its ~1.3–1.4 kB; BENCHMARKS.md).

Serialised form: the int8 codes of ``fs, b1, b2, sb`` (then ``u, v`` in the low-rank form) in that
order, zlib-compressed; the low-rank form is preceded by one byte holding ρ.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from ..determinism import fixed_threads
from ..errors import FormatError

if TYPE_CHECKING:
    from .model import ResidualLM

GRID = 32  # adapter values are multiples of 1/GRID
LIMIT = 127  # int8 codes
MAX_RANK = 16


@dataclass
class HeadAdapter:
    fs: torch.Tensor  # (3, d)
    b1: torch.Tensor  # (3, d)
    b2: torch.Tensor  # (3, 3K)
    sb: torch.Tensor  # (3K,)
    u: torch.Tensor | None = None  # (3, d, rank): low-rank update of the first layer (None: bias form)
    v: torch.Tensor | None = None  # (3, d, rank)

    @staticmethod
    def shapes(d: int, k: int, rank: int = 0) -> dict[str, tuple[int, ...]]:
        s = {"fs": (3, d), "b1": (3, d), "b2": (3, 3 * k), "sb": (3 * k,)}
        return {**s, "u": (3, d, rank), "v": (3, d, rank)} if rank else s

    @property
    def rank(self) -> int:
        return 0 if self.u is None else int(self.u.shape[-1])

    @classmethod
    def zeros(cls, d: int, k: int, requires_grad: bool = False, rank: int = 0) -> HeadAdapter:
        return cls(**{n: torch.zeros(s, requires_grad=requires_grad) for n, s in cls.shapes(d, k, rank).items()})

    def tensors(self) -> list[torch.Tensor]:
        low_rank = [self.u, self.v] if self.u is not None and self.v is not None else []
        return [self.fs, self.b1, self.b2, self.sb, *low_rank]

    def with_rank(self, rank: int, seed: int = 0) -> HeadAdapter:
        """This (bias-form) adapter plus a low-rank term that starts at zero (U = 0, V small and seeded)."""
        d = self.fs.shape[-1]
        v = 0.1 * torch.randn(3, d, rank, generator=torch.Generator().manual_seed(seed))
        return HeadAdapter(*(t.detach().clone() for t in self.tensors()[:4]), torch.zeros(3, d, rank), v)

    def quantised(self) -> HeadAdapter:
        """Round to the coding grid (the values the decoder will see)."""
        return HeadAdapter(*(torch.round(t.detach() * GRID).clamp(-LIMIT, LIMIT) / GRID for t in self.tensors()))

    def to_bytes(self) -> bytes:
        codes = torch.cat([torch.round(t.detach() * GRID).clamp(-LIMIT, LIMIT).flatten() for t in self.tensors()])
        blob = zlib.compress(codes.to(torch.int8).numpy().tobytes(), 9)
        return bytes([self.rank]) + blob if self.rank else blob

    @classmethod
    def from_bytes(cls, data: bytes, d: int, k: int, low_rank: bool = False) -> HeadAdapter:
        """Parse :meth:`to_bytes` output for a head of width ``d`` with ``k`` components (FormatError if bad).

        ``low_rank``: the stream says the adapter has the low-rank form (its first byte is the rank).
        """
        rank = 0
        if low_rank:
            if not data or not 1 <= data[0] <= MAX_RANK:
                raise FormatError(f"lossless: adapter rank must be 1..{MAX_RANK}")
            rank, data = data[0], data[1:]
        shapes = cls.shapes(d, k, rank)
        n = sum(torch.Size(s).numel() for s in shapes.values())
        try:
            dec = zlib.decompressobj()
            raw = dec.decompress(data, n + 1)  # never inflates beyond what a valid adapter needs
        except zlib.error as e:
            raise FormatError(f"lossless: adapter does not decompress ({e})") from None
        if len(raw) != n or not dec.eof or dec.unused_data or dec.unconsumed_tail:
            raise FormatError("lossless: adapter has the wrong size for this model")
        codes = torch.frombuffer(bytearray(raw), dtype=torch.int8).to(torch.float32) / GRID
        out, i = {}, 0
        for name, s in shapes.items():
            m = torch.Size(s).numel()
            out[name] = codes[i : i + m].reshape(s).clone()
            i += m
        return cls(**out)


def fit_adapter(model: ResidualLM, h: torch.Tensor, r: torch.Tensor, x: torch.Tensor, xl: torch.Tensor,
                steps: int, batch: int = 16384, lr: float = 0.05, seed: int = 0,
                on_step: Callable[[], object] | None = None, start: HeadAdapter | None = None) -> HeadAdapter:
    """Fit the adapter on tokens ``h`` (M, d) with residuals/pixels/bases ``r, x, xl`` (M, 3), from
    zero or from ``start`` (whose form it keeps).

    Adam on the teacher-forced cross-entropy of random token batches (seeded, so the encoder is
    reproducible); the returned adapter is already quantised to the coding grid.
    """
    from .mixture import gmm_bits

    head = model.head
    ad = HeadAdapter.zeros(h.shape[-1], head.k, requires_grad=True) if start is None else \
        HeadAdapter(*(t.detach().clone().requires_grad_(True) for t in start.tensors()))
    if steps <= 0 or h.shape[0] == 0:
        return ad.quantised()
    req = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    opt = torch.optim.Adam(ad.tensors(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    try:  # one thread: the encoder's result must not depend on the caller's threads (and small ops gain nothing)
        with torch.enable_grad(), fixed_threads(1):
            for it in range(steps):
                for g in opt.param_groups:  # cosine decay: the last steps settle near the grid values
                    g["lr"] = lr * 0.5 * (1 + torch.cos(torch.tensor(torch.pi * it / steps)).item())
                idx = torch.randint(0, h.shape[0], (min(batch, h.shape[0]),), generator=gen)
                hb, rb, xb, xlb = h[idx], r[idx], x[idx], xl[idx]
                loss = sum(gmm_bits(*head(hb, c, rb, ad), xb[:, c], xlb[:, c]).mean() for c in range(3))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                with torch.no_grad():
                    for t in ad.tensors():
                        t.clamp_(-LIMIT / GRID, LIMIT / GRID)
                if on_step is not None:
                    on_step()
    finally:
        for p, q in zip(model.parameters(), req, strict=True):
            p.requires_grad_(q)
    return ad.quantised()


def adapter_cost(model: ResidualLM, h: torch.Tensor, r: torch.Tensor, x: torch.Tensor, xl: torch.Tensor,
                 adapter: HeadAdapter, sample: int = 1 << 18, seed: int = 0) -> float:
    """Estimated residual bits of all M tokens with ``adapter`` plus its serialised size.

    The model bits come from a seeded sample of at most ``sample`` tokens scaled to M: this only
    chooses between adapter forms at the encoder, it never affects what the decoder computes.
    """
    from .mixture import gmm_bits

    m = h.shape[0]
    idx = torch.randperm(m, generator=torch.Generator().manual_seed(seed))[:sample] if m > sample else slice(None)
    with torch.no_grad(), fixed_threads(1):
        bits = sum(float(gmm_bits(*model.head(h[idx], c, r[idx], adapter), x[idx, c], xl[idx, c]).sum())
                   for c in range(3))
    n = m if isinstance(idx, slice) else len(idx)
    return bits * m / max(n, 1) + 8.0 * len(adapter.to_bytes())
