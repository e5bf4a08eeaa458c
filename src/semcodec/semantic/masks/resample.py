"""Reduced-resolution masks: the downsampling rule (encoder) and the upsampling rule (decoder).

A mask of H×W coded at factor ``f`` (1, 2, 4 or 8) is stored as ceil(H/f)×ceil(W/f):

- down: a low-res pixel is 1 when at least half of the full-res pixels of its f×f block (clipped at
  the image border) are 1 (block majority, ties to 1);
- up: bilinear interpolation of the 0/1 low-res mask at the full-res pixel centres
  (half-pixel convention, edges clamped, i.e. ``align_corners=False``), then ``>= 0.5``.

Bilinear + threshold gives smooth, non-blocky object outlines (better IoU than pixel replication);
with power-of-two factors all weights are dyadic, so float64 arithmetic is exact and the rule is
bit-identical on every machine.
"""

from __future__ import annotations

import numpy as np

FACTORS = (1, 2, 4, 8)


def downsample(mask: np.ndarray, factor: int) -> np.ndarray:
    if factor not in FACTORS:
        raise ValueError(f"mask factor must be one of {FACTORS}, got {factor}")
    mask = mask.astype(bool)
    if factor == 1:
        return mask.copy()
    h, w = mask.shape
    hl, wl = -(-h // factor), -(-w // factor)
    pad = np.zeros((hl * factor, wl * factor), dtype=np.int32)
    valid = np.zeros_like(pad)
    pad[:h, :w] = mask
    valid[:h, :w] = 1
    ones = pad.reshape(hl, factor, wl, factor).sum(axis=(1, 3))
    count = valid.reshape(hl, factor, wl, factor).sum(axis=(1, 3))
    return 2 * ones >= count


def _axis_weights(n_full: int, n_low: int, factor: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pos = (np.arange(n_full, dtype=np.float64) + 0.5) / factor - 0.5
    pos = np.clip(pos, 0.0, n_low - 1)
    i0 = np.floor(pos).astype(np.int64)
    i1 = np.minimum(i0 + 1, n_low - 1)
    return i0, i1, pos - i0


def upsample(low: np.ndarray, height: int, width: int, factor: int) -> np.ndarray:
    if factor not in FACTORS:
        raise ValueError(f"mask factor must be one of {FACTORS}, got {factor}")
    low = low.astype(np.float64)
    if factor == 1:
        return low[:height, :width] >= 0.5
    y0, y1, fy = _axis_weights(height, low.shape[0], factor)
    x0, x1, fx = _axis_weights(width, low.shape[1], factor)
    rows = low[y0] * (1 - fy)[:, None] + low[y1] * fy[:, None]
    out = rows[:, x0] * (1 - fx)[None, :] + rows[:, x1] * fx[None, :]
    return out >= 0.5
