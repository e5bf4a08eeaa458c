"""A base codec applied to the image downscaled by an integer factor (ITC/SEDIC's reference image).

::

    image ─downscale(1/scale, box)─► codec.encode_streams ─► [streams]
    [streams] ─► codec.decode_streams ─► small image ─upscale(bicubic)─► H×W reference
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from PIL import Image

from ...container import Stream
from ...errors import SemcodecError
from .contract import BaseCodec


def resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bicubic resize to ``width``×``height`` (the identity when the size already matches)."""
    if image.shape[1] == width and image.shape[0] == height:
        return image
    pil = Image.fromarray(image)
    return np.asarray(pil.resize((width, height), Image.Resampling.BICUBIC), dtype=np.uint8).copy()


class ScaledBase(BaseCodec):
    """``codec`` on the image downscaled by ``scale`` (≥ 1), upscaled back after decoding."""

    def __init__(self, codec: BaseCodec, scale: int = 1) -> None:
        if int(scale) < 1:
            raise SemcodecError("base scale must be ≥ 1")
        super().__init__(codec.name)
        self.codec = codec
        self.scale = int(scale)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "scale": self.scale, "config": self.codec.config()}

    def small_size(self, width: int, height: int) -> tuple[int, int]:
        return max(1, math.ceil(width / self.scale)), max(1, math.ceil(height / self.scale))

    def encode_streams(self, image: np.ndarray, quality: float | None = None,
                       max_bytes: int | None = None) -> list[Stream]:
        h, w = image.shape[:2]
        sw, sh = self.small_size(w, h)
        small = image if (sw, sh) == (w, h) else np.asarray(
            Image.fromarray(image).resize((sw, sh), Image.Resampling.BOX), dtype=np.uint8).copy()
        return self.codec.encode_streams(small, quality=quality, max_bytes=max_bytes)

    def decode_streams(self, streams: list[Stream], width: int, height: int) -> np.ndarray:
        sw, sh = self.small_size(width, height)
        return resize(self.codec.decode_streams(streams, sw, sh), width, height)

    def join(self, streams: list[Stream], width: int, height: int) -> bytes:
        return self.codec.join(streams, *self.small_size(width, height))

    def split(self, data: bytes, width: int, height: int) -> list[Stream]:
        return self.codec.split(data, *self.small_size(width, height))
