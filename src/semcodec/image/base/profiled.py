"""A registered image profile (the classical codecs, ``lic``) used as a base codec.

The profile's own streams are the base's streams, so rate control (quality × downscale search, the
``lic`` rate search) and the decode-side checks are the profile's, not a copy of them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...container import Stream
from .contract import BaseCodec


class ProfileBase(BaseCodec):
    """Base codec ``name`` = the profile of that name, built with ``options``."""

    def __init__(self, name: str, **options: Any) -> None:
        from ...profiles import get_profile

        super().__init__(name)
        self.options = dict(options)
        self.profile = get_profile(name, **self.options)

    @classmethod
    def availability(cls, name: str) -> str | None:
        from ...profiles.registry import profile_classes

        profile = profile_classes().get(name)
        if profile is None:
            return f"no profile named {name!r}"
        return profile.availability()

    def config(self) -> dict[str, Any]:
        # The profile's config as is: ITC/SEDIC headers written before this class existed hash it.
        return self.profile.config()

    def encode_streams(self, image: np.ndarray, quality: float | None = None,
                       max_bytes: int | None = None) -> list[Stream]:
        from ...profiles import EncodeRequest

        return list(self.profile.encode(EncodeRequest(image=image, max_bytes=max_bytes, quality=quality)))

    def decode_streams(self, streams: list[Stream], width: int, height: int) -> np.ndarray:
        return self.profile.decode(streams, width, height)

