"""Encoder-side latent refinement: optimise THIS image's latent for the rate-distortion objective.

The analysis transform g_a is amortised over the training set; for one image its y is not the best
latent the fixed decoder can use (the amortisation gap, large for a codec trained for a CPU hour).
Campos et al. 2019 ("Content adaptive optimization for neural image compression") and Yang, Bamler &
Mandt 2020 ("Improving inference for neural image compression") close part of it at encode time by
gradient descent on the gained latent ``y_g = g_a(x)·gain(r)`` of the image being coded::

    y_g ─► h_a ─► z ─► Q̃ ─► h_s ─► (μ, σ) ─┐
     └────────────► Q̃ around μ ──────────┴─► R = −Σ log2 p(ẑ) − Σ log2 N(ŷ; μ, σ)   (bits / H·W)
                         └─► ÷gain(r) ─► g_s ─► upsampler ×s ─► crop ─► D(x̂, x)  (full resolution)
    L(y_g) = R + λ(r)·D,   λ(r) = the training λ of rate r,   D = the weights' training terms

``Q̃`` is the differentiable quantisation proxy: ``ste`` rounds in the forward pass and passes the
gradient straight through (so every step's loss is the real, hard-quantised objective), ``sga`` is
Yang et al.'s stochastic Gumbel annealing (soft rounding between ⌊v⌋ and ⌈v⌉ with a temperature
annealed towards hard rounding, seeded noise). Only the encoder changes: the refined y_g is
entropy-coded exactly as the analysis output would be, so the decoder and the format are untouched.
z follows ``h_a(y_g)`` (not optimised on its own): the rate search codes the refined latent at
neighbouring rate codes too, where only y, not a z fitted to one code, carries over.

Determinism: the caller runs this under the codec's fixed thread count; Adam, the seeded Gumbel noise
and every op are deterministic on one CPU thread, so a fresh process writes the same file.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from .models import LicSmall, ste_round

METHODS = ("ste", "sga")
#: SGA temperature schedule: τ from TAU_START down to TAU_END over the steps (geometric)
TAU_START, TAU_END = 0.5, 0.05


def lam_of(rate: Tensor, lam_min: float, lam_max: float, levels: int) -> Tensor:
    """The training λ of rate parameter ``rate``: geometric between ``lam_min`` (r = 0) and ``lam_max``."""
    return lam_min * (lam_max / lam_min) ** (rate / (levels - 1))


def _sga_round(v: Tensor, tau: float, gen: torch.Generator) -> Tensor:
    """Yang et al.'s SGA: a Gumbel-softmax draw between ⌊v⌋ and ⌈v⌉, logits −atanh(distance)/τ."""
    lo = torch.floor(v).detach()
    d = (v - lo).clamp(1e-5, 1 - 1e-5)
    logits = torch.stack([-torch.atanh(d), -torch.atanh(1 - d)], 0) / tau
    u = torch.rand(logits.shape, generator=gen).clamp(1e-10, 1 - 1e-10)
    p = ((logits - torch.log(-torch.log(u))) / tau).softmax(0)
    return lo + p[1]


@dataclass(frozen=True)
class RefineConfig:
    steps: int = 0
    lr: float = 0.01
    method: str = "ste"


class LatentRefiner:
    """Gradient steps on one image's gained latent; ``distortion`` = Σ κ_k d_k of the weights' training terms."""

    def __init__(self, model: LicSmall, distortion: Callable[[Tensor, Tensor], Tensor],
                 lam_min: float, lam_max: float, min_side: int = 1) -> None:
        self.model, self.distortion = model, distortion
        self.lam_min, self.lam_max = lam_min, lam_max
        #: smaller images are not refined (the distortion is undefined there, e.g. MS-SSIM below 97 px)
        self.min_side = min_side

    def lam(self, rate: float) -> float:
        return float(lam_of(torch.tensor(rate), self.lam_min, self.lam_max, self.model.levels))

    def objective(self, yg: Tensor, x: Tensor, scale: int, rate: float,
                  rounding: Callable[[Tensor], Tensor] = ste_round) -> tuple[Tensor, Tensor, Tensor]:
        """(R + λ·D, R in bits per pixel of ``x``, D) of gained latent ``yg`` coded at ``scale`` and ``rate``."""
        m = self.model
        eb, gc = m.entropy_bottleneck, m.gaussian_conditional
        z = m.h_a(yg)
        med = eb._get_medians().reshape(1, -1, 1, 1)
        z_hat = ste_round(z - med) + med
        z_lik, _, _ = eb._likelihood(z_hat.permute(1, 0, 2, 3).reshape(z.shape[1], 1, -1))
        scales, means = m.h_s(z_hat).chunk(2, 1)
        y_hat = rounding(yg - means) + means
        y_lik = gc._likelihood(y_hat, scales, means)
        bits = -torch.log2(eb.likelihood_lower_bound(z_lik)).sum() - torch.log2(gc.likelihood_lower_bound(y_lik)).sum()
        h, w = x.shape[-2:]
        _, inv_gain = m.gains(torch.tensor([rate]))
        x_hat = m.upsample(m.g_s(y_hat * inv_gain), scale)[..., :h, :w]
        bpp = bits / (h * w)
        d = self.distortion(x_hat, x)[0]
        return bpp + self.lam(rate) * d, bpp, d

    def refine(self, yg: Tensor, x: Tensor, scale: int, rate: float, cfg: RefineConfig,
               max_extra_bits: float | None = None) -> Tensor:
        """The refined gained latent (same shape as ``yg``): the best iterate by the hard-rounded objective.

        ``x`` is the original image (1×3×H×W in [0, 1]) the final, upsampled output is compared with.
        Only iterates whose estimated rate is at most ``max_extra_bits`` above the starting latent's are
        eligible (the bytes the rate control left free); the starting latent always is, so refinement
        never returns a latent whose estimated objective is worse than the analysis output's.
        """
        if cfg.steps <= 0:
            return yg
        if cfg.method not in METHODS:
            raise ValueError(f"refine method must be one of {', '.join(METHODS)}, got {cfg.method!r}")
        pixels = x.shape[-2] * x.shape[-1]
        best, best_loss, limit = yg.detach().clone(), math.inf, math.inf

        def consider(v: Tensor, loss: Tensor, bpp: Tensor) -> None:
            """Keep ``v`` if it is the best eligible iterate so far (the first one seen sets the rate limit)."""
            nonlocal best, best_loss, limit
            j, bits = float(loss.detach()), float(bpp.detach()) * pixels
            if limit == math.inf:
                limit = bits + (math.inf if max_extra_bits is None else max_extra_bits)
            if j < best_loss and bits <= limit:
                best, best_loss = v.detach().clone(), j

        with torch.enable_grad():
            v = yg.detach().clone().contiguous().requires_grad_(True)
            opt = torch.optim.Adam([v], lr=cfg.lr)
            gen = torch.Generator().manual_seed(0)
            if cfg.method == "sga":  # soft losses are not the real objective: the start is judged hard
                with torch.no_grad():
                    consider(v, *self.objective(v, x, scale, rate)[:2])
            for i in range(cfg.steps):
                opt.param_groups[0]["lr"] = cfg.lr * (1 - i / cfg.steps)  # linear decay: -0.1 to -0.3 % J (A/B)
                if cfg.method == "sga":
                    tau = TAU_START * (TAU_END / TAU_START) ** (i / max(1, cfg.steps - 1))
                    loss = self.objective(v, x, scale, rate, lambda t, tau=tau: _sga_round(t, tau, gen))[0]
                else:
                    loss, bpp, _ = self.objective(v, x, scale, rate)
                    consider(v, loss, bpp)  # the STE loss is the hard objective of the current v
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            with torch.no_grad():
                consider(v, *self.objective(v, x, scale, rate)[:2])
        return best
