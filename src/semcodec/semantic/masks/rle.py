"""Run-length + DEFLATE baseline mask coder (the simple alternative the context coder is compared with).

Raster-order runs, alternating and starting with a 0-run (possibly empty), written as LEB128
varints and compressed with raw DEFLATE level 9.
"""

from __future__ import annotations

import zlib

import numpy as np

from ...entropy.varint import decode_uvarint, encode_uvarint
from ...errors import FormatError


def rle_encode(mask: np.ndarray) -> bytes:
    flat = mask.astype(np.uint8).reshape(-1)
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(bounds).tolist()
    if flat.size and flat[0] == 1:
        runs = [0, *runs]
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(b"".join(encode_uvarint(r) for r in runs)) + c.flush()


def rle_decode(data: bytes, height: int, width: int) -> np.ndarray:
    n = height * width
    d = zlib.decompressobj(-15)
    try:
        raw = d.decompress(data, 5 * (n + 2))
    except zlib.error as e:
        raise FormatError(f"corrupted mask stream: {e}") from None
    if d.unconsumed_tail or not d.eof:
        raise FormatError("corrupted mask stream: run-length data incomplete or too long")
    out = np.zeros(n, dtype=bool)
    pos, at, value = 0, 0, False
    while pos < len(raw):
        run, pos = decode_uvarint(raw, pos)
        if at + run > n:
            raise FormatError("corrupted mask stream: runs exceed the mask size")
        if value:
            out[at : at + run] = True
        at += run
        value = not value
    if at != n:
        raise FormatError("corrupted mask stream: runs do not cover the mask")
    return out.reshape(height, width)
