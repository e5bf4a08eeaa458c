"""The base (reference) image of a generative profile: any registered semcodec profile, optionally on a
downscaled copy.

::

    image ─downscale(1/scale)─► base profile.encode(max_bytes) ─► [streams]
    [streams] ─► base profile.decode ─► small image ─upscale(bicubic)─► H×W reference

The base profile is picked by name (``lic`` when the learned codec is installed, else ``avif``), so
ITC/SEDIC compose the project's codecs instead of carrying their own; its ``config()`` becomes part of
the generative profile's config, so a file still fails loudly if the base codec's weights differ.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from PIL import Image

from ...container import Stream
from ...errors import MissingComponentError, SemcodecError
from ...profiles import EncodeRequest, get_profile
from ...profiles.registry import profile_classes

BASE_PREFERENCE = ("lic", "avif", "webp", "jpeg")


def default_base_name() -> str:
    """First available of ``lic``, ``avif``, ``webp``, ``jpeg``."""
    classes = profile_classes()
    for name in BASE_PREFERENCE:
        cls = classes.get(name)
        if cls is not None and cls.availability() is None:
            return name
    raise MissingComponentError(
        f"no base image codec available (tried {', '.join(BASE_PREFERENCE)}); install the classical codecs"
        " (pillow-avif / imagecodecs) or the learned codec weights, or --set base_profile=<name>"
    )


def resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    if image.shape[1] == width and image.shape[0] == height:
        return image
    pil = Image.fromarray(image)
    return np.asarray(pil.resize((width, height), Image.Resampling.BICUBIC), dtype=np.uint8).copy()


class BaseImageCodec:
    """A named base profile applied to the image downscaled by an integer ``scale``."""

    def __init__(self, name: str | None = None, scale: int = 1, options: dict[str, Any] | None = None):
        if int(scale) < 1:
            raise SemcodecError("base scale must be ≥ 1")
        self.name = name or default_base_name()
        self.scale = int(scale)
        self.options = dict(options or {})
        self.profile = get_profile(self.name, **self.options)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "scale": self.scale, "config": self.profile.config()}

    def small_size(self, width: int, height: int) -> tuple[int, int]:
        return max(1, math.ceil(width / self.scale)), max(1, math.ceil(height / self.scale))

    def encode(self, image: np.ndarray, max_bytes: int | None, quality: float | None) -> list[Stream]:
        h, w = image.shape[:2]
        sw, sh = self.small_size(w, h)
        small = image if (sw, sh) == (w, h) else np.asarray(
            Image.fromarray(image).resize((sw, sh), Image.Resampling.BOX), dtype=np.uint8).copy()
        return list(self.profile.encode(EncodeRequest(image=small, max_bytes=max_bytes, quality=quality)))

    def decode(self, streams: list[Stream], width: int, height: int) -> np.ndarray:
        sw, sh = self.small_size(width, height)
        return resize(self.profile.decode(streams, sw, sh), width, height)
