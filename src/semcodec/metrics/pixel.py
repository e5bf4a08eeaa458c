"""Pixel-fidelity metrics that need no weights: PSNR and MS-SSIM (Wang, Simoncelli, Bovik 2003).

MS-SSIM uses pytorch-msssim with the standard 11×11 Gaussian window (σ=1.5) and the five scale weights
of the paper. Five scales need the short image side > (11-1)·2⁴ = 160 px; for smaller images the
coarsest scales are dropped (and the remaining weights renormalised) instead of padding, because
padding would invent structure. :func:`msssim_scales` says how many scales were used, and the eval
CSV records it next to the score.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import torch

from .base import Metric, check_pair, torch_threads

MSSSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
MSSSIM_WIN = 11


def psnr(reference: np.ndarray, decoded: np.ndarray, peak: float = 255.0) -> float:
    """PSNR over all pixels and channels (dB); ``inf`` for identical images."""
    check_pair(reference, decoded)
    mse = float(np.mean((reference.astype(np.float64) - decoded.astype(np.float64)) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(peak * peak / mse)


def msssim_scales(height: int, width: int, win_size: int = MSSSIM_WIN) -> int:
    """How many of the 5 MS-SSIM scales fit: scale k needs the short side > (win-1)·2^(k-1)."""
    side = min(height, width)
    for levels in range(5, 0, -1):
        if side > (win_size - 1) * 2 ** (levels - 1):
            return levels
    return 0


def ms_ssim(reference: np.ndarray, decoded: np.ndarray) -> float:
    """MS-SSIM on RGB (mean over channels), data range 255; fewer scales for images under 161 px."""
    from pytorch_msssim import ms_ssim as _ms_ssim
    from pytorch_msssim import ssim as _ssim

    check_pair(reference, decoded)
    h, w = reference.shape[:2]
    x = torch.from_numpy(np.array(reference)).permute(2, 0, 1)[None].double()
    y = torch.from_numpy(np.array(decoded)).permute(2, 0, 1)[None].double()
    levels = msssim_scales(h, w)
    with torch.no_grad(), torch_threads(1):
        if levels == 5:
            val = _ms_ssim(x, y, data_range=255, win_size=MSSSIM_WIN, weights=list(MSSSIM_WEIGHTS))
        elif levels >= 2:
            val = _ms_ssim_fewer_scales(x, y, levels)
        else:
            # Below 21 px not even two scales fit: single-scale SSIM with the largest odd window.
            side = min(h, w)
            win = min(MSSSIM_WIN, side if side % 2 else side - 1)
            if win < 3:
                return math.nan
            val = _ssim(x, y, data_range=255, win_size=win)
    return float(val)


class PSNR(Metric):
    higher_is_better: ClassVar[bool] = True
    description: ClassVar[str] = "peak signal-to-noise ratio on RGB, dB (inf if identical)"

    def compute(self, reference: np.ndarray, decoded: np.ndarray, **context: Any) -> float:
        return psnr(reference, decoded)


class MSSSIM(Metric):
    higher_is_better: ClassVar[bool] = True
    description: ClassVar[str] = "multi-scale SSIM on RGB (pytorch-msssim); fewer scales below 161 px"

    def compute(self, reference: np.ndarray, decoded: np.ndarray, **context: Any) -> float:
        return ms_ssim(reference, decoded)


def _ms_ssim_fewer_scales(x: torch.Tensor, y: torch.Tensor, levels: int) -> torch.Tensor:
    """pytorch-msssim's MS-SSIM loop with ``levels`` < 5 scales (its public function insists on 5).

    Same window, constants, ReLU on cs and ssim, and the first ``levels`` paper weights renormalised
    to sum to 1 (the paper's five sum to 1.0001, so a 5-scale call matches the library to ~1e-6).
    """
    import torch.nn.functional as F
    from pytorch_msssim.ssim import _fspecial_gauss_1d
    from pytorch_msssim.ssim import _ssim as _ssim_cs

    weights = torch.tensor(MSSSIM_WEIGHTS[:levels], dtype=x.dtype)
    weights = weights / weights.sum()
    win = _fspecial_gauss_1d(MSSSIM_WIN, 1.5).repeat([x.shape[1], 1, 1, 1]).to(x.dtype)
    mcs = []
    for i in range(levels):
        ssim_pc, cs = _ssim_cs(x, y, data_range=255, win=win, size_average=False, K=(0.01, 0.03))
        if i < levels - 1:
            mcs.append(torch.relu(cs))
            pad = [s % 2 for s in x.shape[2:]]
            x = F.avg_pool2d(x, kernel_size=2, padding=pad)
            y = F.avg_pool2d(y, kernel_size=2, padding=pad)
    stack = torch.stack([*mcs, torch.relu(ssim_pc)], dim=0)
    return torch.prod(stack ** weights.view(-1, 1, 1), dim=0).mean()
