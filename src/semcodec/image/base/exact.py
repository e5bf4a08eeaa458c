"""Fixed-setting pixel codecs coded at the exact image size (no downscale): the lossless profile's bases.

``heif-444``  HEVC intra in HEIF via pillow-heif, 4:4:4 8-bit (the BPG stand-in of Du et al.; 4:4:4
              leaves a residual with far less chroma error than 4:2:0)
``jpeg-444``  Pillow JPEG without chroma subsampling: needs nothing beyond Pillow

Quality is the codec's 0..100. With ``max_bytes`` the largest quality whose stream fits is searched.
The coded size is checked against the expected size before any pixel is decoded.
"""

from __future__ import annotations

import io
from abc import abstractmethod
from typing import Any, ClassVar

import numpy as np
from PIL import Image

from ...container import Stream, StreamKind
from ...errors import FormatError, MissingComponentError, RateError
from .contract import BaseCodec, check_size


class ExactBase(BaseCodec):
    """One IMAGE stream holding the codec's file, at exactly the image size."""

    qmin: ClassVar[int] = 0
    qmax: ClassVar[int] = 100

    @abstractmethod
    def encode_pixels(self, image: np.ndarray, quality: int) -> bytes: ...

    @abstractmethod
    def decode_pixels(self, data: bytes, width: int, height: int) -> np.ndarray:
        """Decode, calling :func:`check_size` on the header size before the pixels."""

    def config(self) -> dict[str, Any]:
        return {"base": self.name, "layout": 1}

    def encode_streams(self, image: np.ndarray, quality: float | None = None,
                       max_bytes: int | None = None) -> list[Stream]:
        if max_bytes is None:
            if quality is None or not self.qmin <= quality <= self.qmax:
                raise ValueError(f"base {self.name}: quality must be in {self.qmin}..{self.qmax}, got {quality}")
            return [Stream(StreamKind.IMAGE, self.encode_pixels(image, int(quality)))]
        from ..classical.rate import fit_quality, payload_budget

        found = fit_quality(lambda q: self.encode_pixels(image, q), self.qmin, self.qmax, payload_budget(max_bytes))
        if found is None:
            raise RateError(f"base {self.name}: even quality {self.qmin} does not fit in {max_bytes} bytes")
        return [Stream(StreamKind.IMAGE, found[1])]

    def decode_streams(self, streams: list[Stream], width: int, height: int) -> np.ndarray:
        if len(streams) != 1 or streams[0].kind != StreamKind.IMAGE:
            raise FormatError(f"base {self.name}: expected one IMAGE stream")
        return np.ascontiguousarray(self.decode_pixels(streams[0].payload, width, height))


def _pillow_heif():  # noqa: ANN202 - the module
    try:
        import pillow_heif
    except ImportError:  # pragma: no cover - depends on the environment
        raise MissingComponentError("the heif base needs pillow-heif: pip install pillow-heif") from None
    return pillow_heif


class Heif444Base(ExactBase):
    @classmethod
    def availability(cls, name: str) -> str | None:
        from ..classical.codecs import HeifCodec

        return HeifCodec.availability()

    def encode_pixels(self, image: np.ndarray, quality: int) -> bytes:
        heif = _pillow_heif().from_bytes(mode="RGB", size=(image.shape[1], image.shape[0]),
                                         data=np.ascontiguousarray(image).tobytes())
        buf = io.BytesIO()
        heif.save(buf, quality=int(quality), chroma=444, save_to_12bit=False)
        return buf.getvalue()

    def decode_pixels(self, data: bytes, width: int, height: int) -> np.ndarray:
        f = _pillow_heif().open_heif(io.BytesIO(data), convert_hdr_to_8bit=True)
        check_size(f.size, width, height)
        return np.asarray(f.to_pillow().convert("RGB"))


class Jpeg444Base(ExactBase):
    def encode_pixels(self, image: np.ndarray, quality: int) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, format="JPEG", quality=int(quality), subsampling=0)
        return buf.getvalue()

    def decode_pixels(self, data: bytes, width: int, height: int) -> np.ndarray:
        img = Image.open(io.BytesIO(data))
        check_size(img.size, width, height)
        return np.asarray(img.convert("RGB"))
