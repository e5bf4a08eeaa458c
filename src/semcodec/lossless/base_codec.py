"""Lossy base codecs for the lossless profile: the "visual prompt" x_l of Du et al.

The paper's best base was BPG at QP 28. BPG is HEVC intra in a small wrapper, so HEIF/HEVC through
pillow-heif is the stand-in here (coded 4:4:4, which leaves a residual with far less chroma error
than 4:2:0). JPEG is the fallback that needs nothing beyond Pillow. Codecs are registered by name
and by a one-byte id that is stored in the IMAGE stream, so another base (e.g. a learned codec)
plugs in with one more entry.

IMAGE stream payload: ``[codec id: 1 byte][quality: 1 byte][codec bytes]``.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..errors import FormatError, MissingComponentError


@dataclass(frozen=True)
class BaseCodec:
    name: str
    codec_id: int
    encode: Callable[[np.ndarray, int], bytes]
    decode: Callable[[bytes], np.ndarray]


def _heif_encode(x: np.ndarray, quality: int) -> bytes:
    try:
        import pillow_heif
    except ImportError:  # pragma: no cover - depends on the environment
        raise MissingComponentError("the heif base needs pillow-heif: pip install pillow-heif") from None
    heif = pillow_heif.from_bytes(mode="RGB", size=(x.shape[1], x.shape[0]), data=np.ascontiguousarray(x).tobytes())
    buf = io.BytesIO()
    heif.save(buf, quality=int(quality), chroma=444, save_to_12bit=False)
    return buf.getvalue()


def _heif_decode(data: bytes) -> np.ndarray:
    try:
        import pillow_heif
    except ImportError:  # pragma: no cover
        raise MissingComponentError("the heif base needs pillow-heif: pip install pillow-heif") from None
    f = pillow_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=True)
    arr = np.asarray(f.to_pillow().convert("RGB"))
    return np.ascontiguousarray(arr)


def _jpeg_encode(x: np.ndarray, quality: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(x).save(buf, format="JPEG", quality=int(quality), subsampling=0)
    return buf.getvalue()


def _jpeg_decode(data: bytes) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))


BASE_CODECS: dict[str, BaseCodec] = {
    "heif": BaseCodec("heif", 1, _heif_encode, _heif_decode),
    "jpeg": BaseCodec("jpeg", 2, _jpeg_encode, _jpeg_decode),
}
_BY_ID = {c.codec_id: c for c in BASE_CODECS.values()}


def encode_base(x: np.ndarray, codec: str, quality: int) -> tuple[bytes, np.ndarray]:
    """Code ``x`` with the named base codec; return (IMAGE payload, decoded x_l)."""
    c = BASE_CODECS[codec]
    if not 0 <= quality <= 100:
        raise ValueError("base quality must be in 0..100")
    data = c.encode(x, quality)
    xl = c.decode(data)
    if xl.shape != x.shape:
        raise RuntimeError(f"base codec {codec} changed the image size {x.shape} -> {xl.shape}")
    return bytes([c.codec_id, quality]) + data, xl


def decode_base(payload: bytes, width: int, height: int) -> tuple[np.ndarray, str, int]:
    """Parse an IMAGE payload; return (x_l, codec name, quality). Raises FormatError on bad data."""
    if len(payload) < 3:
        raise FormatError("lossless: base image stream too short")
    c = _BY_ID.get(payload[0])
    if c is None:
        raise FormatError(f"lossless: unknown base codec id {payload[0]}")
    try:
        xl = c.decode(payload[2:])
    except MissingComponentError:
        raise
    except Exception as e:  # noqa: BLE001 - any decoder failure on untrusted bytes is a format error
        raise FormatError(f"lossless: base image does not decode ({e})") from None
    if xl.shape != (height, width, 3):
        raise FormatError(f"lossless: base image is {xl.shape}, expected {(height, width, 3)}")
    return xl, c.name, int(payload[1])
