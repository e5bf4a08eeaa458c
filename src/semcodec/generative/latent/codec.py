"""Hyperprior codec for a VAE latent (Minnen et al. 2018 mean-scale hyperprior, on CompressAI).

ResULIC codes the diffusion model's VAE latent rather than pixels; this is that codec for the
32-channel TAEF2 latent (any channel count works)::

    z (C×h×w, VAE latent) ─► g_a ─► y (M×h/4×w/4) ─► h_a ─► v ─► EB ─► v̂ ─► h_s ─► (μ, σ)
                                     │                                           │
                                     └──► y/q ── GC(μ/q, σ/q) ──► ŷ·q ─► g_s ─► ẑ (C×h×w)

``q`` (quantisation step, a 2^(k/4) ladder) is the rate knob at encode time: one trained model
covers a range of rates, and the chosen ``k`` is written in the stream. Entropy-model parameters
follow the hyperprior rule of ``entropy/hyperprior.py`` (h_s on one thread, σ/q -> table index), with
the means used as computed (μ/q, no grid: part of this format).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from compressai.entropy_models import EntropyBottleneck, GaussianConditional
from compressai.layers import GDN
from compressai.models.base import CompressionModel
from compressai.models.utils import conv, deconv
from torch import nn

from ...entropy.hyperprior import decode_latents, encode_latents
from ...entropy.varint import decode_uvarint, encode_uvarint
from ...errors import FormatError

#: Quantisation step ladder q_k = 2^(k/4); k = 0 is the trained operating point.
MAX_Q_INDEX = 24
PAD = 16  # latent size multiple: two stride-2 in g_a, two in h_a


def q_step(k: int) -> float:
    return 2.0 ** (k / 4)


class LatentHyperprior(CompressionModel):
    """Mean-scale hyperprior over a C-channel latent (C=32 for TAEF2)."""

    def __init__(self, latent_channels: int = 32, N: int = 128, M: int = 64) -> None:
        super().__init__()
        self.config = {"latent_channels": latent_channels, "N": N, "M": M}
        C = latent_channels
        self.entropy_bottleneck = EntropyBottleneck(N)
        self.gaussian_conditional = GaussianConditional(None)
        self.g_a = nn.Sequential(conv(C, N, stride=1, kernel_size=3), GDN(N), conv(N, N), GDN(N), conv(N, M))
        self.g_s = nn.Sequential(
            deconv(M, N), GDN(N, inverse=True), deconv(N, N), GDN(N, inverse=True), conv(N, C, stride=1, kernel_size=3)
        )
        self.h_a = nn.Sequential(
            conv(M, N, stride=1, kernel_size=3), nn.LeakyReLU(), conv(N, N), nn.LeakyReLU(), conv(N, N)
        )
        self.h_s = nn.Sequential(
            deconv(N, M), nn.LeakyReLU(), deconv(M, M * 3 // 2), nn.LeakyReLU(),
            conv(M * 3 // 2, M * 2, stride=1, kernel_size=3),
        )

    # -- training -----------------------------------------------------------------------------
    def forward(self, z: torch.Tensor) -> dict:
        y = self.g_a(z)
        v = self.h_a(y)
        v_hat, v_lik = self.entropy_bottleneck(v)
        scales, means = self.h_s(v_hat).chunk(2, 1)
        y_hat, y_lik = self.gaussian_conditional(y, scales, means=means)
        return {"z_hat": self.g_s(y_hat), "likelihoods": {"y": y_lik, "v": v_lik}}

    # -- coding ---------------------------------------------------------------------------------
    @staticmethod
    def pad(z: torch.Tensor) -> torch.Tensor:
        h, w = z.shape[-2:]
        ph, pw = (-h) % PAD, (-w) % PAD
        return F.pad(z, (0, pw, 0, ph), mode="replicate") if (ph or pw) else z

    @torch.no_grad()
    def compress_latent(self, z: torch.Tensor, q_index: int = 0) -> bytes:
        """Code one latent (1×C×h×w) into a self-delimiting payload: [k][len v][v bytes][y bytes]."""
        if not 0 <= q_index <= MAX_Q_INDEX:
            raise ValueError(f"q_index must be in 0..{MAX_Q_INDEX}")
        q = q_step(q_index)
        zp = self.pad(z)
        y = self.g_a(zp)
        v_str, y_str = encode_latents(self, y, self.h_a(y), step=q)
        return encode_uvarint(q_index) + encode_uvarint(len(v_str)) + v_str + y_str

    @torch.no_grad()
    def decompress_latent(self, payload: bytes, h: int, w: int) -> torch.Tensor:
        """Inverse of :meth:`compress_latent` for a latent of spatial size h×w."""
        try:
            q_index, pos = decode_uvarint(payload, 0)
            n, pos = decode_uvarint(payload, pos)
        except Exception as e:  # varint errors are FormatErrors already; keep one message
            raise FormatError(f"corrupted latent stream: {e}") from None
        if q_index > MAX_Q_INDEX or pos + n > len(payload):
            raise FormatError("corrupted latent stream header")
        v_str, y_str = payload[pos : pos + n], payload[pos + n :]
        hp, wp = h + (-h) % PAD, w + (-w) % PAD
        q = q_step(q_index)
        y_hat = decode_latents(self, v_str, y_str, (hp // PAD, wp // PAD), step=q) * q
        return self.g_s(y_hat)[..., :h, :w]

    # -- persistence ----------------------------------------------------------------------------
    def save(self, folder: str | Path, extra: dict | None = None) -> None:
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.update(force=True)
        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(folder / "model.safetensors"))
        (folder / "config.json").write_text(json.dumps({**self.config, **(extra or {})}, indent=2) + "\n")

    @classmethod
    def load(cls, folder: str | Path) -> LatentHyperprior:
        from safetensors.torch import load_file

        folder = Path(folder)
        cfg = json.loads((folder / "config.json").read_text())
        model = cls(cfg["latent_channels"], cfg["N"], cfg["M"])
        model.load_state_dict(load_file(str(folder / "model.safetensors")))
        model.update()
        return model.eval()
