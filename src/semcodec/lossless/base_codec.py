"""The lossless profile's base image (the "visual prompt" x_l of Du et al.) and its IMAGE payload.

The paper's best base was BPG at QP 28. BPG is HEVC intra in a small wrapper, so HEIF/HEVC 4:4:4 is the
stand-in here; JPEG 4:4:4 needs nothing beyond Pillow; ``lic`` is our own learned codec (the shipped
weights, or ``$SEMCODEC_LIC_WEIGHTS``), whose rate code is quality/100 of its range. The codecs
themselves are :mod:`semcodec.image.base` components; this module only maps the lossless names to
them and to the one-byte ids stored in the file. The shipped residual model was trained on HEIF bases
only: other bases code exactly, just with more residual bits.

IMAGE stream payload: ``[codec id: 1 byte][quality: 1 byte][codec bytes]``, the codec bytes being the
component's byte view (``lic``: ``[width u16 BE][height u16 BE][PARAMS length u16 BE][PARAMS][LATENT]``).
A base stream made with other lic weights fails the residual stream's pixel checksum, i.e. it is a
FormatError, never a wrong image.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import FormatError, MissingComponentError
from ..image.base import BaseCodec, get_base_codec
from ..registry import Entry, Registry


@dataclass(frozen=True)
class LosslessBase:
    component: str  # name in semcodec.image.base.BASE_CODECS
    native_quality: Callable[[int], float]  # the file's 0..100 quality -> the component's quality


#: name -> (one-byte id stored in every IMAGE payload: never change or reuse one, the base it uses)
BASES: Registry[LosslessBase] = Registry("base codec", {
    "heif": Entry(1, LosslessBase("heif-444", int)),
    "jpeg": Entry(2, LosslessBase("jpeg-444", int)),
    "lic": Entry(3, LosslessBase("lic", lambda q: q / 100)),
}, id_range=range(256), error=FormatError)


@functools.cache
def _codec(name: str) -> BaseCodec:
    return get_base_codec(BASES.get(name).component)


def encode_base(x: np.ndarray, codec: str, quality: int) -> tuple[bytes, np.ndarray]:
    """Code ``x`` with the named base codec; return (IMAGE payload, decoded x_l)."""
    base = BASES.get(codec)
    if not 0 <= quality <= 100:
        raise ValueError("base quality must be in 0..100")
    data = _codec(codec).encode(x, quality=base.native_quality(quality))
    xl = _codec(codec).decode(data, x.shape[1], x.shape[0])
    if xl.shape != x.shape:
        raise RuntimeError(f"base codec {codec} changed the image size {x.shape} -> {xl.shape}")
    return bytes([BASES.entry(codec).id, quality]) + data, xl


def decode_base(payload: bytes, width: int, height: int) -> tuple[np.ndarray, str, int]:
    """Parse an IMAGE payload; return (x_l, codec name, quality). Raises FormatError on bad data."""
    if len(payload) < 3:
        raise FormatError("lossless: base image stream too short")
    name = BASES.name_for_id(payload[0])
    if name is None:
        raise FormatError(f"lossless: unknown base codec id {payload[0]}")
    try:
        xl = _codec(name).decode(payload[2:], width, height)
    except MissingComponentError:
        raise
    except Exception as e:  # noqa: BLE001 - any decoder failure on untrusted bytes is a format error
        raise FormatError(f"lossless: base image does not decode ({e})") from None
    if xl.shape != (height, width, 3):
        raise FormatError(f"lossless: base image is {xl.shape}, expected {(height, width, 3)}")
    return xl, name, int(payload[1])
