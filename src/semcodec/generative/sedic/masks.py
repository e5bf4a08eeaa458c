"""The MASK stream of SEDIC: J binary masks at a reduced resolution, coded by :mod:`semcodec.semantic.masks`.

``[coder id][per mask: varint length, payload]``. Masks are downsampled by ``factor`` (block majority)
before coding and upsampled (bilinear + threshold) after decoding with the rules of
``semantic.masks.resample``; the diffusion decoder only needs them on the latent grid (1/8), so a
factor of 4 or 8 costs few bits and loses nothing the ORAG fusion can use.
"""

from __future__ import annotations

import numpy as np

from ...container.varint import decode_uvarint, encode_uvarint
from ...errors import FormatError, MissingComponentError

RLE = 0
CONTEXT = 1


def _resample():  # imported on use: the profile registers even where the mask package is absent
    try:
        from ...semantic.masks import resample
    except ImportError as e:
        raise MissingComponentError(f"sedic masks need semcodec.semantic.masks ({e})") from None
    return resample


def _coders() -> dict[int, tuple]:
    try:
        from ...semantic.masks.rle import rle_decode, rle_encode
    except ImportError as e:
        raise MissingComponentError(f"sedic masks need semcodec.semantic.masks ({e})") from None

    coders: dict[int, tuple] = {RLE: (rle_encode, rle_decode)}
    try:  # the JBIG-style context coder, when its public API is present
        from ...semantic.masks import decode_mask, encode_mask  # type: ignore[attr-defined]

        coders[CONTEXT] = (encode_mask, decode_mask)
    except ImportError:
        pass
    return coders


def best_coder_id() -> int:
    return max(_coders())


def encode_masks(masks: list[np.ndarray], factor: int, coder_id: int | None = None) -> bytes:
    coders = _coders()
    cid = best_coder_id() if coder_id is None else coder_id
    enc = coders[cid][0]
    out = bytearray([cid])
    resample = _resample()
    for m in masks:
        payload = enc(resample.downsample(m, factor))
        out += encode_uvarint(len(payload)) + payload
    return bytes(out)


def decode_masks(data: bytes, n: int, width: int, height: int, factor: int) -> list[np.ndarray]:
    if not data:
        raise FormatError("sedic: empty mask stream")
    coders = _coders()
    if data[0] not in coders:
        raise FormatError(f"sedic: mask stream uses unknown mask coder {data[0]}")
    dec = coders[data[0]][1]
    resample = _resample()
    if factor not in resample.FACTORS:
        raise FormatError("sedic: corrupted mask factor")
    hl, wl = -(-height // factor), -(-width // factor)
    pos, out = 1, []
    for _ in range(n):
        size, pos = decode_uvarint(data, pos)
        if pos + size > len(data):
            raise FormatError("sedic: truncated mask stream")
        low = dec(bytes(data[pos : pos + size]), hl, wl)
        pos += size
        out.append(resample.upsample(low, height, width, factor))
    if pos != len(data):
        raise FormatError("sedic: trailing bytes in the mask stream")
    return out
