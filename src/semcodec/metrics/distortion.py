"""Differentiable distortions on image batches in [0, 1] (B×3×H×W -> (B,)), named as the training terms.

They live here, below the codecs and the trainers, because two layers need the SAME function: the
trainer's loss terms (``train/losses.py``) and the learned codec's encoder-side latent refinement
(``image/learned/refine.py``), which optimises an image's latent for the distortion its weights were
trained for. Only the weight-free terms are here; LPIPS/CLIP terms stay with the trainer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import Tensor

#: c of the saturating MSE: m / (m + c), c = 0.01 (20 dB)
SATURATING_MSE_C = 0.01


def mse(x_hat: Tensor, x: Tensor) -> Tensor:
    """Plain MSE of images in [0, 1] (the ``mse-paper`` term)."""
    return (x_hat - x).pow(2).flatten(1).mean(1)


def saturating_mse(x_hat: Tensor, x: Tensor, c: float = SATURATING_MSE_C) -> Tensor:
    """m / (m + c): ≈ 100·MSE at useful qualities and bounded by 1 (the ``mse`` term of the shipped ``lic``)."""
    m = mse(x_hat, x)
    return m / (m + c)


def one_minus_ms_ssim(x_hat: Tensor, x: Tensor) -> Tensor:
    """1 − MS-SSIM (Wang et al. 2003) on the clamped reconstruction; a 7-px window below 161-px sides
    (5 scales need a side above 16·(win − 1))."""
    from pytorch_msssim import ms_ssim

    win = 11 if min(x.shape[-2:]) > 160 else 7
    return 1 - ms_ssim(x_hat.clamp(0, 1), x, data_range=1.0, size_average=False, win_size=win)


#: smallest image side each term is defined for (MS-SSIM's five scales with the 7-px window: > 16·6)
MIN_SIDE: dict[str, int] = {"ms-ssim": 97}

#: term name (as in a weights' ``terms``) -> function
DISTORTIONS: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "mse": saturating_mse,
    "mse-paper": mse,
    "ms-ssim": one_minus_ms_ssim,
}


def weighted_distortion(terms: Mapping[str, float]) -> Callable[[Tensor, Tensor], Tensor] | None:
    """Σ κ_k d_k(x̂, x) for ``terms`` = {name: κ}, or None when a term has no weight-free function here."""
    if not terms or any(name not in DISTORTIONS for name in terms):
        return None
    parts = [(DISTORTIONS[name], float(k)) for name, k in terms.items()]

    def distortion(x_hat: Tensor, x: Tensor) -> Tensor:
        return torch.stack([k * f(x_hat, x) for f, k in parts]).sum(0)

    return distortion


def min_side(terms: Mapping[str, float]) -> int:
    """The smallest image side on which every term of ``terms`` is defined."""
    return max([MIN_SIDE.get(name, 1) for name in terms], default=1)
