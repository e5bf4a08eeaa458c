"""Resampling for ultra-low-bitrate operation: shrink before the codec, grow back after it.

::

    image (W×H) ──downscale(f)──► (round(W/f)×round(H/f)) ──codec──► bytes
    bytes ──codec──► small image ──upscale to the container's W×H──► image

The decoder needs no scale byte: the small size is in the codec's own header and the target size is
in the container header. Both filters are Pillow's fixed-point (integer) resamplers, so decoding is
bit-exact across processes and thread counts. The upscale filter is part of the profile config (and
so of the header's config hash); the downscale filter is an encoder choice only.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

#: Decoder-side filter, recorded in the profile config.
UPSCALE_FILTER = "bicubic"
_FILTERS = {"bicubic": Image.Resampling.BICUBIC, "lanczos": Image.Resampling.LANCZOS}

#: Candidate factors for ``downscale="auto"``; 64 brings Kodak (768×512) to 12×8 pixels, which fits
#: a ~150-byte (0.003 bpp) budget with the codecs whose headers are small (webp, jxl, j2k).
AUTO_SCALES: tuple[float, ...] = (1, 1.5, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)


def scaled_size(width: int, height: int, factor: float) -> tuple[int, int]:
    """Size after shrinking by ``factor`` (≥ 1), at least 1×1."""
    if not factor >= 1:
        raise ValueError(f"downscale factor must be >= 1, got {factor}")
    return max(1, round(width / factor)), max(1, round(height / factor))


def downscale(image: np.ndarray, factor: float) -> np.ndarray:
    """Shrink with Lanczos (antialiased); factor 1 returns the image unchanged."""
    h, w = image.shape[:2]
    size = scaled_size(w, h, factor)
    if size == (w, h):
        return image
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS))


def upscale(image: np.ndarray, width: int, height: int, method: str = UPSCALE_FILTER) -> np.ndarray:
    """Grow a decoded image to the container size (no-op when it already has that size)."""
    if image.shape[:2] == (height, width):
        return image
    return np.asarray(Image.fromarray(image).resize((width, height), _FILTERS[method]))
