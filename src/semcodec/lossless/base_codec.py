"""Lossy base codecs for the lossless profile: the "visual prompt" x_l of Du et al.

The paper's best base was BPG at QP 28. BPG is HEVC intra in a small wrapper, so HEIF/HEVC through
pillow-heif is the stand-in here (coded 4:4:4, which leaves a residual with far less chroma error
than 4:2:0). JPEG is the fallback that needs nothing beyond Pillow; ``lic`` is our own learned codec (the shipped
``lic`` weights, or ``$SEMCODEC_LIC_WEIGHTS``), whose rate code is quality/100 of its range. Codecs
are registered by name and by a one-byte id that is stored in the IMAGE stream, so another base
plugs in with one more entry. The shipped residual model was trained on HEIF bases only: other
bases code exactly, just with more residual bits.

IMAGE stream payload: ``[codec id: 1 byte][quality: 1 byte][codec bytes]``; for ``lic`` the codec
bytes are ``[width u16 BE][height u16 BE][PARAMS length u16 BE][PARAMS payload][LATENT payload]``
(the lic profile's two streams). A base stream made with other lic weights fails the residual
stream's pixel checksum, i.e. it is a FormatError, never a wrong image.
"""

from __future__ import annotations

import functools
import io
import struct
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
    decode: Callable[[bytes, int, int], np.ndarray]  # (data, width, height): the size the caller expects


def _heif_encode(x: np.ndarray, quality: int) -> bytes:
    try:
        import pillow_heif
    except ImportError:  # pragma: no cover - depends on the environment
        raise MissingComponentError("the heif base needs pillow-heif: pip install pillow-heif") from None
    heif = pillow_heif.from_bytes(mode="RGB", size=(x.shape[1], x.shape[0]), data=np.ascontiguousarray(x).tobytes())
    buf = io.BytesIO()
    heif.save(buf, quality=int(quality), chroma=444, save_to_12bit=False)
    return buf.getvalue()


def _check_size(size: tuple[int, int], width: int, height: int) -> None:
    """Refuse a base whose header size is not the container's before decoding any pixels (no bombs)."""
    if tuple(size) != (width, height):
        raise FormatError(f"lossless: base image header says {size[0]}x{size[1]}, the container {width}x{height}")


def _heif_decode(data: bytes, width: int, height: int) -> np.ndarray:
    try:
        import pillow_heif
    except ImportError:  # pragma: no cover
        raise MissingComponentError("the heif base needs pillow-heif: pip install pillow-heif") from None
    f = pillow_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=True)
    _check_size(f.size, width, height)
    arr = np.asarray(f.to_pillow().convert("RGB"))
    return np.ascontiguousarray(arr)


def _jpeg_encode(x: np.ndarray, quality: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(x).save(buf, format="JPEG", quality=int(quality), subsampling=0)
    return buf.getvalue()


def _jpeg_decode(data: bytes, width: int, height: int) -> np.ndarray:
    img = Image.open(io.BytesIO(data))
    _check_size(img.size, width, height)
    return np.ascontiguousarray(np.asarray(img.convert("RGB")))


@functools.lru_cache(maxsize=1)
def _lic_profile():  # noqa: ANN202 - LicProfile, imported lazily (torch + CompressAI)
    from ..image.learned.profile import LicProfile

    return LicProfile()


def _lic_encode(x: np.ndarray, quality: int) -> bytes:
    from ..profiles.base import EncodeRequest

    h, w = x.shape[:2]
    if max(h, w) > 0xFFFF:
        raise ValueError("the lic base codes images up to 65535 pixels a side")
    params, latent = (s.payload for s in _lic_profile().encode(EncodeRequest(image=x, quality=quality / 100)))
    return struct.pack(">HHH", w, h, len(params)) + params + latent


def _lic_decode(data: bytes, width: int, height: int) -> np.ndarray:
    from ..container import Stream, StreamKind

    if len(data) < 6:
        raise FormatError("lossless: lic base stream too short")
    w, h, n = struct.unpack(">HHH", data[:6])
    _check_size((w, h), width, height)
    if len(data) < 6 + n:
        raise FormatError("lossless: lic base stream too short")
    streams = [Stream(StreamKind.PARAMS, data[6 : 6 + n]), Stream(StreamKind.LATENT, data[6 + n :])]
    return np.ascontiguousarray(_lic_profile().decode(streams, w, h))


BASE_CODECS: dict[str, BaseCodec] = {
    "heif": BaseCodec("heif", 1, _heif_encode, _heif_decode),
    "jpeg": BaseCodec("jpeg", 2, _jpeg_encode, _jpeg_decode),
    "lic": BaseCodec("lic", 3, _lic_encode, _lic_decode),
}
_BY_ID = {c.codec_id: c for c in BASE_CODECS.values()}


def encode_base(x: np.ndarray, codec: str, quality: int) -> tuple[bytes, np.ndarray]:
    """Code ``x`` with the named base codec; return (IMAGE payload, decoded x_l)."""
    c = BASE_CODECS[codec]
    if not 0 <= quality <= 100:
        raise ValueError("base quality must be in 0..100")
    data = c.encode(x, quality)
    xl = c.decode(data, x.shape[1], x.shape[0])
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
        xl = c.decode(payload[2:], width, height)
    except MissingComponentError:
        raise
    except Exception as e:  # noqa: BLE001 - any decoder failure on untrusted bytes is a format error
        raise FormatError(f"lossless: base image does not decode ({e})") from None
    if xl.shape != (height, width, 3):
        raise FormatError(f"lossless: base image is {xl.shape}, expected {(height, width, 3)}")
    return xl, c.name, int(payload[1])
