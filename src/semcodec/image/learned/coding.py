"""Real bitstreams for :class:`~semcodec.image.learned.models.LicSmall` through CompressAI's rANS coder.

Encoder (one analysis per scale, then a cheap search over the rate parameter)::

    img ─► pad to ×s ─► downscale ×s ─► pad to ×64 ─► g_a ─► y
    for r in search:  y·gain(r) ─► h_a ─► z ─► EB.compress ─► z_bytes
                                   z_hat ─► h_s (1 thread) ─► σ (table index), μ (snapped) ─► GC.compress ─► y_bytes

Decoder: z_bytes ─► EB ─► h_s (1 thread) ─► σ, μ ─► GC.decompress ─► ÷gain(r) ─► g_s ─► upsampler ×s ─► crop.

Determinism: everything that feeds the entropy coder (h_s output, i.e. the Gaussian table indexes and
the means) is computed under one torch thread and the means are snapped to a 1/64 grid; the CDF
tables are loaded from the weights file, never recomputed. The synthesis runs under a fixed thread
count too (``SYNTH_THREADS``) so the decoded pixels do not depend on the caller's setting.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ...determinism import fixed_threads
from .models import MEAN_GRID, LicSmall

#: Rate parameter resolution: r = rate_code / RATE_STEPS, r in [0, levels-1].
RATE_STEPS = 8
SYNTH_THREADS = 2
ALIGN = 64




def to_tensor(img: np.ndarray) -> Tensor:
    return torch.from_numpy(np.array(img, dtype=np.uint8, copy=True)).permute(2, 0, 1)[None].float() / 255.0


def to_uint8(x: Tensor) -> np.ndarray:
    return (x[0].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()


def coded_size(width: int, height: int, scale: int) -> tuple[int, int, int, int]:
    """(low-res w, h) and the padded (w, h) the network sees, for an image coded at ``scale``."""
    lw, lh = math.ceil(width / scale), math.ceil(height / scale)
    return lw, lh, math.ceil(lw / ALIGN) * ALIGN, math.ceil(lh / ALIGN) * ALIGN


def _pad_to(x: Tensor, h: int, w: int) -> Tensor:
    ph, pw = h - x.shape[-2], w - x.shape[-1]
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    return x


def prepare(img: np.ndarray, scale: int) -> Tensor:
    """uint8 H×W×3 -> padded low-resolution 1×3×h×w tensor for the analysis transform."""
    from ...train.codec import downscale

    h, w = img.shape[:2]
    lw, lh, pw, ph = coded_size(w, h, scale)
    x = _pad_to(to_tensor(img), lh * scale, lw * scale)
    return _pad_to(downscale(x, scale), ph, pw)


@dataclass
class Coded:
    scale: int
    rate_code: int
    z_bytes: bytes
    y_bytes: bytes


class LicCoder:
    """Entropy-codes LicSmall latents; one instance per loaded model (the model must be ``update()``-d)."""

    def __init__(self, model: LicSmall) -> None:
        self.model = model.eval()

    @property
    def max_rate_code(self) -> int:
        return (self.model.levels - 1) * RATE_STEPS

    def _rate(self, rate_code: int) -> Tensor:
        return torch.tensor([rate_code / RATE_STEPS])

    def _gaussian_params(self, z_hat: Tensor) -> tuple[Tensor, Tensor]:
        with fixed_threads(1):
            scales, means = self.model.h_s(z_hat).chunk(2, 1)
            indexes = self.model.gaussian_conditional.build_indexes(scales)
            means = torch.round(means / MEAN_GRID) * MEAN_GRID
        return indexes, means

    @torch.no_grad()
    def analyse(self, img: np.ndarray, scale: int) -> Tensor:
        return self.model.g_a(prepare(img, scale))

    @torch.no_grad()
    def encode_latent(self, y: Tensor, scale: int, rate_code: int) -> Coded:
        gain, _ = self.model.gains(self._rate(rate_code))
        y = y * gain
        z = self.model.h_a(y)
        z_strings = self.model.entropy_bottleneck.compress(z)
        z_hat = self.model.entropy_bottleneck.decompress(z_strings, z.shape[-2:])
        indexes, means = self._gaussian_params(z_hat)
        y_strings = self.model.gaussian_conditional.compress(y, indexes, means=means)
        return Coded(scale, rate_code, z_strings[0], y_strings[0])

    @torch.no_grad()
    def decode(self, coded: Coded, width: int, height: int) -> np.ndarray:
        lw, lh, pw, ph = coded_size(width, height, coded.scale)
        zshape = (ph // ALIGN, pw // ALIGN)
        z_hat = self.model.entropy_bottleneck.decompress([coded.z_bytes], zshape)
        indexes, means = self._gaussian_params(z_hat)
        y_hat = self.model.gaussian_conditional.decompress([coded.y_bytes], indexes, means=means)
        _, inv_gain = self.model.gains(self._rate(coded.rate_code))
        with fixed_threads(SYNTH_THREADS):
            x_low = self.model.g_s(y_hat * inv_gain)
            x_hat = self.model.upsample(x_low, coded.scale)
        return to_uint8(x_hat[..., :height, :width])
