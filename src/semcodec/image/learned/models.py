"""Learned image codecs built from CompressAI layers and entropy models, picked by name.

The shipped default is :class:`LicSmall`, a CPU-fast *variable-rate* mean-scale hyperprior
(Minnen et al. 2018, "mbt2018-mean") with gain units (Cui et al., CVPR 2021, "Asymmetric Gained
Deep Image Compression") and learned upsamplers that restore a downscaled coded image::

    x (H×W) ─► downscale ×s ─► g_a ─► y ─► ×gain(r) ─► y_g ──► Q ─► GC ··· GC ─► ÷gain(r) ─► g_s ─┐
                                              │                  ▲                              │
                                              └─► h_a ─► z ─► Q ─► EB ··· EB ─► h_s ─► (μ, σ)    │
                                                                                               ▼
    x̂ (H×W) ◄── bicubic ×s + residual CNN (post-filter / learned upsampler for scale s) ◄── x̂_s

``r`` is a continuous rate parameter in [0, L-1]: gains are interpolated geometrically between the L
learned rate levels, so one network covers the whole ladder and the encoder can search the rate
without re-running the analysis transform (only h_a/h_s and the entropy coder run per trial).

``build_model(name, **cfg)`` (names in :data:`semcodec.image.learned.MODELS`) also gives the reference CompressAI architectures
(``bmshj2018-hyperprior``, ``mbt2018-mean``, ``cheng2020-attn``) for comparison and training.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from compressai.entropy_models import EntropyBottleneck, GaussianConditional
from compressai.layers import GDN
from compressai.models import CompressionModel
from compressai.models.google import MeanScaleHyperprior, ScaleHyperprior
from compressai.models.utils import conv, deconv
from compressai.models.waseda import Cheng2020Attention
from torch import Tensor, nn

from . import MODELS


def model_names() -> list[str]:
    return sorted(MODELS.names())


def build_model(name: str, **cfg: Any) -> nn.Module:
    """A model by its name in :data:`semcodec.image.learned.MODELS` (CLI, config.json)."""
    return MODELS.get(name)(**cfg)


def bmshj2018_hyperprior(N: int = 128, M: int = 192) -> nn.Module:
    return ScaleHyperprior(N=N, M=M)


def mbt2018_mean(N: int = 128, M: int = 192) -> nn.Module:
    return MeanScaleHyperprior(N=N, M=M)


def cheng2020_attn(N: int = 128) -> nn.Module:
    return Cheng2020Attention(N=N)


SCALE_MIN, SCALE_MAX, SCALE_LEVELS = 0.11, 256.0, 64
#: Hyper-decoder means are snapped to this grid before use, so encoder and decoder agree even if a
#: float op rounds differently somewhere (the scales are snapped by CompressAI's index table).
MEAN_GRID = 1.0 / 64


def downscale(x: Tensor, s: int) -> Tensor:
    """The one downscaler used in training and coding (antialiased bicubic)."""
    if s == 1:
        return x
    h, w = x.shape[-2:]
    return F.interpolate(x, size=(h // s, w // s), mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)


def scale_table() -> Tensor:
    return torch.exp(torch.linspace(math.log(SCALE_MIN), math.log(SCALE_MAX), SCALE_LEVELS))


class Upsampler(nn.Module):
    """Bicubic ×s plus a residual CNN run at the low resolution and pixel-shuffled up (ESPCN-like).

    With ``s == 1`` it is a residual post-filter that removes coding artefacts.
    """

    def __init__(self, scale: int, width: int = 32, depth: int = 3) -> None:
        super().__init__()
        self.scale = scale
        layers: list[nn.Module] = [nn.Conv2d(3, width, 3, padding=1), nn.LeakyReLU(0.1)]
        for _ in range(depth - 1):
            layers += [nn.Conv2d(width, width, 3, padding=1), nn.LeakyReLU(0.1)]
        layers += [nn.Conv2d(width, 3 * scale * scale, 3, padding=1)]
        self.body = nn.Sequential(*layers)
        nn.init.zeros_(self.body[-1].weight)
        nn.init.zeros_(self.body[-1].bias)
        self.shuffle = nn.PixelShuffle(scale) if scale > 1 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        base = x if self.scale == 1 else F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return base + self.shuffle(self.body(x))


class LicSmall(CompressionModel):
    """Variable-rate mean-scale hyperprior + per-scale learned upsamplers (see module docstring)."""

    def __init__(self, N: int = 64, M: int = 128, levels: int = 8, scales: tuple[int, ...] = (1, 2, 4, 8),
                 up_width: int = 32, up_depth: int = 3) -> None:
        super().__init__()
        self.N, self.M, self.levels, self.scales = N, M, levels, tuple(scales)
        self.entropy_bottleneck = EntropyBottleneck(N)
        self.gaussian_conditional = GaussianConditional(None)
        self.g_a = nn.Sequential(conv(3, N), GDN(N), conv(N, N), GDN(N), conv(N, N), GDN(N), conv(N, M))
        self.g_s = nn.Sequential(deconv(M, N), GDN(N, inverse=True), deconv(N, N), GDN(N, inverse=True),
                                 deconv(N, N), GDN(N, inverse=True), deconv(N, 3))
        self.h_a = nn.Sequential(conv(M, N, stride=1, kernel_size=3), nn.LeakyReLU(inplace=True), conv(N, N),
                                 nn.LeakyReLU(inplace=True), conv(N, N))
        self.h_s = nn.Sequential(deconv(N, M), nn.LeakyReLU(inplace=True), deconv(M, M * 3 // 2),
                                 nn.LeakyReLU(inplace=True), conv(M * 3 // 2, M * 2, stride=1, kernel_size=3))
        # log-gains per rate level; level 0 = lowest rate (coarsest quantisation).
        init = torch.linspace(math.log(0.35), math.log(2.8), levels)
        self.log_gain = nn.Parameter(init[:, None].repeat(1, M).clone())
        self.log_inv_gain = nn.Parameter(-init[:, None].repeat(1, M).clone())
        self.up = nn.ModuleDict({str(s): Upsampler(s, up_width, up_depth) for s in self.scales})

    # -- gains -----------------------------------------------------------------------------------
    def _interp(self, table: Tensor, rate: Tensor) -> Tensor:
        """Per-sample gain vectors (B×M×1×1) for continuous rate parameters ``rate`` in [0, L-1]."""
        rate = rate.clamp(0, self.levels - 1)
        lo = rate.floor().long().clamp(max=self.levels - 2)
        t = (rate - lo.to(rate.dtype))[:, None]
        g = table[lo] * (1 - t) + table[lo + 1] * t
        return torch.exp(g)[:, :, None, None]

    def gains(self, rate: Tensor) -> tuple[Tensor, Tensor]:
        return self._interp(self.log_gain, rate), self._interp(self.log_inv_gain, rate)

    # -- training ----------------------------------------------------------------------------------
    def forward(self, x: Tensor, rate: Tensor) -> dict[str, Any]:
        """``x`` is the (already downscaled) image; returns x̂ at the coding resolution + likelihoods."""
        g, ig = self.gains(rate)
        y = self.g_a(x) * g
        z = self.h_a(y)
        z_hat, z_lik = self.entropy_bottleneck(z)
        scales_hat, means_hat = self.h_s(z_hat).chunk(2, 1)
        _, y_lik = self.gaussian_conditional(y, scales_hat, means=means_hat)
        # noise for the rate term, straight-through rounding for the reconstruction
        y_hat = torch.round(y - means_hat).detach() + (y - means_hat) - (y - means_hat).detach() + means_hat
        x_hat = self.g_s(y_hat * ig)
        return {"x_hat": x_hat, "likelihoods": {"y": y_lik, "z": z_lik}}

    @property
    def coding_scales(self) -> tuple[int, ...]:
        """Trained scales plus one coarser fallback (2× the largest) for the very lowest rates."""
        return (*self.scales, 2 * max(self.scales))

    def upsample(self, x_hat: Tensor, scale: int) -> Tensor:
        if str(scale) in self.up:
            return self.up[str(scale)](x_hat)
        # untrained fallback scale: learned ×f for the largest trained f dividing it, then bicubic
        f = max(s for s in self.scales if scale % s == 0)
        return F.interpolate(self.up[str(f)](x_hat), scale_factor=scale // f, mode="bicubic", align_corners=False)

    def update(self, scale_table_: Tensor | None = None, force: bool = False, update_quantiles: bool = False) -> bool:
        return super().update(scale_table=scale_table() if scale_table_ is None else scale_table_, force=force,
                              update_quantiles=update_quantiles)




def anchor_mask(height: int, width: int, device: torch.device | None = None) -> Tensor:
    """1×1×H×W mask of the checkerboard anchors ((i + j) even): coded first, from the hyperprior alone."""
    i = torch.arange(height, device=device)[:, None]
    j = torch.arange(width, device=device)[None, :]
    return ((i + j) % 2 == 0).to(torch.float32)[None, None]


def ste_round(v: Tensor) -> Tensor:
    """Round in the forward pass, identity gradient (training proxy and encoder-side refinement)."""
    return torch.round(v).detach() + v - v.detach()


class LicCheckerboard(LicSmall):
    """:class:`LicSmall` plus a checkerboard context model (He et al., CVPR 2021) for the non-anchor half of y.

    Anchors are coded with the hyperprior's (μ, σ) as in LicSmall; the other half gets
    ``(μ, σ) = hyper + Δ(ctx(ŷ_anchors), hyper)`` where ``ctx`` is CompressAI's checkerboard masked conv and
    Δ ends in a zero-initialised 1×1 conv. So a model warm-started from LicSmall weights starts as exactly
    that model, and training only adds what the context pays for (the A/B measure of issue 17).
    """

    def __init__(self, N: int = 64, M: int = 128, levels: int = 8, scales: tuple[int, ...] = (1, 2, 4, 8),
                 up_width: int = 32, up_depth: int = 3, ctx_width: int | None = None) -> None:
        from compressai.layers import CheckerboardMaskedConv2d

        super().__init__(N, M, levels, scales, up_width, up_depth)
        width = ctx_width or 3 * M
        self.context = CheckerboardMaskedConv2d(M, 2 * M, kernel_size=5, padding=2, mask_type="A")
        self.ctx_params = nn.Sequential(nn.Conv2d(4 * M, width, 1), nn.LeakyReLU(inplace=True),
                                        nn.Conv2d(width, 2 * M, 1))
        nn.init.zeros_(self.ctx_params[-1].weight)
        nn.init.zeros_(self.ctx_params[-1].bias)

    def entropy_params(self, hyper: Tensor, y_hat_anchors: Tensor, anchors: Tensor) -> Tensor:
        """(σ, μ) of every position: the hyperprior's at anchors, corrected by the context elsewhere."""
        delta = self.ctx_params(torch.cat([self.context(y_hat_anchors), hyper], 1))
        return hyper + delta * (1 - anchors)

    def forward(self, x: Tensor, rate: Tensor) -> dict[str, Any]:
        g, ig = self.gains(rate)
        y = self.g_a(x) * g
        z = self.h_a(y)
        z_hat, z_lik = self.entropy_bottleneck(z)
        hyper = self.h_s(z_hat)
        anchors = anchor_mask(*y.shape[-2:], device=y.device).to(y.dtype)
        means_h = hyper.chunk(2, 1)[1]
        y_hat_anchors = (ste_round(y - means_h) + means_h) * anchors
        scales_hat, means_hat = self.entropy_params(hyper, y_hat_anchors, anchors).chunk(2, 1)
        _, y_lik = self.gaussian_conditional(y, scales_hat, means=means_hat)
        y_hat = ste_round(y - means_hat) + means_hat
        x_hat = self.g_s(y_hat * ig)
        return {"x_hat": x_hat, "likelihoods": {"y": y_lik, "z": z_lik}}
