"""The base-image contract: a codec that another profile embeds as its base (reference) image.

::

    encode_streams(image, quality | max_bytes) ─► [Stream, ...]  ─join(w, h)─►  bytes
    decode_streams([Stream, ...], w, h)  ◄─split(w, h)─  bytes   ─► H×W×3 uint8

One coding, two views: the container-stream view is how ITC and SEDIC store the base (one container
stream per base stream, so a ``lic`` base keeps its PARAMS and LATENT streams), the byte view is how the
lossless profile stores it inside its single IMAGE payload. ``encode``/``decode`` are the byte view.
``max_bytes`` always bounds the *framed* size of the streams (what the base costs inside a container).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from ...container import Stream, StreamKind
from ...errors import FormatError


class BaseCodec(ABC):
    """An image codec usable as a base image. ``name`` is its key in :data:`semcodec.image.base.BASE_CODECS`."""

    def __init__(self, name: str) -> None:
        self.name = name

    @classmethod
    def availability(cls, name: str) -> str | None:
        """``None`` if the base ``name`` can run here, else what is missing and how to get it."""
        return None

    def config(self) -> dict[str, Any]:
        """Everything decoding depends on; the embedding profile hashes it into its own config."""
        return {"base": self.name}

    @abstractmethod
    def encode_streams(self, image: np.ndarray, quality: float | None = None,
                       max_bytes: int | None = None) -> list[Stream]:
        """Code an H×W×3 uint8 image at ``quality`` (the codec's native units) or within ``max_bytes``."""

    @abstractmethod
    def decode_streams(self, streams: list[Stream], width: int, height: int) -> np.ndarray:
        """Rebuild the H×W×3 uint8 image from the streams :meth:`encode_streams` returned."""

    def join(self, streams: list[Stream], width: int, height: int) -> bytes:
        """The streams as one byte string; a one-stream codec's bytes are its payload."""
        if len(streams) != 1:
            raise ValueError(f"base {self.name!r} codes {len(streams)} streams: it must define join/split")
        return streams[0].payload

    def split(self, data: bytes, width: int, height: int) -> list[Stream]:
        """Inverse of :meth:`join`; :class:`FormatError` on bytes that cannot be split."""
        return [Stream(StreamKind.IMAGE, bytes(data))]

    def encode(self, image: np.ndarray, quality: float | None = None, max_bytes: int | None = None) -> bytes:
        h, w = image.shape[:2]
        return self.join(self.encode_streams(image, quality=quality, max_bytes=max_bytes), w, h)

    def decode(self, data: bytes, width: int, height: int) -> np.ndarray:
        return self.decode_streams(self.split(data, width, height), width, height)


def check_size(size: tuple[int, int], width: int, height: int) -> None:
    """Refuse a base whose coded size is not the expected one before decoding any pixels (no bombs)."""
    if tuple(size) != (width, height):
        raise FormatError(f"base image header says {size[0]}x{size[1]}, the container {width}x{height}")
