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

Serialised form: the int8 codes of ``fs, b1, b2, sb`` in that order, zlib-compressed.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from ..errors import FormatError

if TYPE_CHECKING:
    from .model import ResidualLM

GRID = 32  # adapter values are multiples of 1/GRID
LIMIT = 127  # int8 codes


@dataclass
class HeadAdapter:
    fs: torch.Tensor  # (3, d)
    b1: torch.Tensor  # (3, d)
    b2: torch.Tensor  # (3, 3K)
    sb: torch.Tensor  # (3K,)

    @staticmethod
    def shapes(d: int, k: int) -> dict[str, tuple[int, ...]]:
        return {"fs": (3, d), "b1": (3, d), "b2": (3, 3 * k), "sb": (3 * k,)}

    @classmethod
    def zeros(cls, d: int, k: int, requires_grad: bool = False) -> HeadAdapter:
        return cls(**{n: torch.zeros(s, requires_grad=requires_grad) for n, s in cls.shapes(d, k).items()})

    def tensors(self) -> list[torch.Tensor]:
        return [self.fs, self.b1, self.b2, self.sb]

    def quantised(self) -> HeadAdapter:
        """Round to the coding grid (the values the decoder will see)."""
        return HeadAdapter(*(torch.round(t.detach() * GRID).clamp(-LIMIT, LIMIT) / GRID for t in self.tensors()))

    def to_bytes(self) -> bytes:
        codes = torch.cat([torch.round(t.detach() * GRID).clamp(-LIMIT, LIMIT).flatten() for t in self.tensors()])
        return zlib.compress(codes.to(torch.int8).numpy().tobytes(), 9)

    @classmethod
    def from_bytes(cls, data: bytes, d: int, k: int) -> HeadAdapter:
        """Parse :meth:`to_bytes` output for a head of width ``d`` with ``k`` components (FormatError if bad)."""
        shapes = cls.shapes(d, k)
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
                nb: torch.Tensor, steps: int, batch: int = 16384, lr: float = 0.05, seed: int = 0,
                on_step: Callable[[], object] | None = None) -> HeadAdapter:
    """Fit the adapter on tokens ``h`` (M, d) with residuals/pixels/bases ``r, x, xl`` (M, 3) and
    neighbour residuals ``nb`` (M, n_nbr, 3).

    Adam on the teacher-forced cross-entropy of random token batches (seeded, so the encoder is
    reproducible); the returned adapter is already quantised to the coding grid.
    """
    from .mixture import gmm_bits

    head = model.head
    ad = HeadAdapter.zeros(h.shape[-1], head.k, requires_grad=True)
    if steps <= 0 or h.shape[0] == 0:
        return ad.quantised()
    req = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    opt = torch.optim.Adam(ad.tensors(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    try:
        with torch.enable_grad():
            for it in range(steps):
                for g in opt.param_groups:  # cosine decay: the last steps settle near the grid values
                    g["lr"] = lr * 0.5 * (1 + torch.cos(torch.tensor(torch.pi * it / steps)).item())
                idx = torch.randint(0, h.shape[0], (min(batch, h.shape[0]),), generator=gen)
                hb, rb, xb, xlb, nbb = h[idx], r[idx], x[idx], xl[idx], nb[idx]
                loss = sum(gmm_bits(*head(hb, c, rb, ad, nbb), xb[:, c], xlb[:, c]).mean() for c in range(3))
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
