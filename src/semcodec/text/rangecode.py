"""Byte-exact range coding of symbol sequences with per-step integer models (constriction).

constriction's ``RangeEncoder`` flushes whole 32-bit words, which would cost ~17 bits per caption --
a lot when a caption is ~70 bits. We keep constriction as the coder and only choose the *shortest*
byte string that still decodes to the same symbols (the decoder pads with zero bytes)::

    words = constriction.encode(symbols, freqs)     -> big-endian bytes b
    for k = 1 .. len(b): try b[:k] and b[:k]+1 (zero padded); keep the first that decodes exactly

The result is canonical (one payload per message), so a decoder can re-derive it and compare: any
payload that is not the canonical encoding of what it decodes to is rejected as corrupt.
"""

from __future__ import annotations

import math

import constriction
import numpy as np

from ..errors import FormatError

_MODEL = constriction.stream.model.Categorical(perfect=False)


def _words(data: bytes) -> np.ndarray:
    pad = (-len(data)) % 4
    return np.frombuffer(data + b"\0" * (pad + 8), dtype=">u4").astype(np.uint32)


def _runs(rows: list[np.ndarray]) -> list[tuple[int, int]]:
    """[start, stop) runs of equal-width rows: each run is one bulk constriction call."""
    runs, a = [], 0
    for i in range(1, len(rows) + 1):
        if i == len(rows) or len(rows[i]) != len(rows[a]):
            runs.append((a, i))
            a = i
    return runs


def _mat(rows: list[np.ndarray], a: int, b: int) -> np.ndarray:
    return np.asarray(rows[a], dtype=np.float64)[None] if b == a + 1 else np.stack(rows[a:b]).astype(np.float64)


def _decodes_to(data: bytes, symbols: np.ndarray, rows: list[np.ndarray]) -> bool:
    try:
        dec = constriction.stream.queue.RangeDecoder(_words(data))
        for a, b in _runs(rows):
            out = dec.decode(_MODEL, _mat(rows, a, b))
            if not np.array_equal(out, symbols[a:b]):
                return False
    except Exception:
        return False
    return True


def encode_symbols(symbols, rows: list[np.ndarray]) -> bytes:
    """``symbols[i]`` coded with integer frequency row ``rows[i]`` (widths may differ).

    Returns the shortest byte string that decodes to the same symbols (canonical).
    """
    symbols = np.asarray(symbols, dtype=np.int32)
    if len(symbols) == 0:
        return b""
    enc = constriction.stream.queue.RangeEncoder()
    for a, b in _runs(rows):
        enc.encode(symbols[a:b], _MODEL, _mat(rows, a, b))
    full = enc.get_compressed().astype(">u4").tobytes()
    info = float(-sum(np.log2(r[s] / r.sum()) for r, s in zip(rows, symbols, strict=True)))
    # search from one byte below the ideal code length (a fixed rule, so the result is canonical)
    for k in range(max(0, math.ceil(info / 8) - 1), len(full) + 1):
        head = full[:k]
        cands = [head]
        if k:
            v = int.from_bytes(head, "big") + 1
            if v < 1 << (8 * k):
                cands.append(v.to_bytes(k, "big"))
        for c in cands:
            if _decodes_to(c, symbols, rows):
                return c
    return full  # pragma: no cover - the full flush always decodes


class SymbolDecoder:
    """Sequential decoding: the next model is only known after the previous symbol."""

    def __init__(self, data: bytes) -> None:
        self._dec = constriction.stream.queue.RangeDecoder(_words(data))

    def decode(self, freqs: np.ndarray) -> int:
        try:
            return int(self._dec.decode(_MODEL, np.asarray(freqs, dtype=np.float64)[None, :])[0])
        except Exception as e:  # constriction raises on exhausted/invalid data
            raise FormatError(f"corrupted text stream: range decoder failed ({e})") from None
