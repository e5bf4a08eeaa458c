"""Thin wrappers over constriction's coders, taking only exact integer models (:mod:`.models`).

Two coders are in use: the range coder (a queue: symbols decode in the order they were encoded) for
text and masks, and ANS (a stack: encode in reverse decoding order) for the lossless residual::

    RangeEncoder.encode_freqs / encode_bits ─► words ─► WordPacking.to_bytes ─► payload
    payload ─► WordPacking.to_words ─► RangeDecoder.decode_freqs / decode_bit
    AnsEncoder.encode_reverse(...)  ...  AnsDecoder.decode(...)    (same idea, stack order)

Short messages (a caption is ~70 bits) use :func:`encode_symbols`: constriction flushes whole 32-bit
words, which would cost ~17 bits per message, so we keep constriction as the coder and only choose
the *shortest* byte string that still decodes to the same symbols (the decoder pads with zeros)::

    words = constriction.encode(symbols, freqs)     -> big-endian bytes b
    for k = 1 .. len(b): try b[:k] and b[:k]+1 (zero padded); keep the first that decodes exactly

The result is canonical (one payload per message), so a decoder can re-derive it and compare: any
payload that is not the canonical encoding of what it decodes to can be rejected as corrupt.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import FormatError
from .models import PROB_ONE, bernoulli, bernoulli_model, categorical
from .words import RANGE_CANONICAL, WordPacking


class RangeEncoder:
    """constriction's queue range encoder with integer-frequency and 16-bit Bernoulli models."""

    def __init__(self) -> None:
        import constriction

        self._enc = constriction.stream.queue.RangeEncoder()

    def encode_freqs(self, symbols: np.ndarray, freqs: np.ndarray) -> None:
        """``symbols[i]`` (int32) with integer frequency row ``freqs[i]`` (2-D, one row per symbol)."""
        self._enc.encode(symbols, categorical(), freqs)

    def encode_bits(self, bits: np.ndarray, p: np.ndarray) -> None:
        """Bits (int32) with P(1) = ``p[i]`` / 2^16 for integer ``p``."""
        self._enc.encode(bits, bernoulli(), p / float(PROB_ONE))

    def words(self) -> np.ndarray:
        return self._enc.get_compressed()

    def to_bytes(self, packing: WordPacking) -> bytes:
        return packing.to_bytes(self.words())


class RangeDecoder:
    """Decoder for :class:`RangeEncoder` output stored with ``packing``."""

    def __init__(self, data: bytes | memoryview, packing: WordPacking) -> None:
        import constriction

        #: the constriction decoder itself, for per-symbol hot loops (``raw.decode(bernoulli_model(p))``)
        self.raw = constriction.stream.queue.RangeDecoder(packing.to_words(data))

    def decode_freqs(self, freqs: np.ndarray) -> np.ndarray:
        """One symbol per row of the 2-D integer frequency array ``freqs``."""
        return self.raw.decode(categorical(), freqs)

    def decode_bit(self, p: int) -> int:
        return int(self.raw.decode(bernoulli_model(p)))


class AnsEncoder:
    """constriction's ANS stack: encode in *reverse* decoding order, integer-frequency models."""

    def __init__(self) -> None:
        import constriction

        self._coder = constriction.stream.stack.AnsCoder()

    def encode_reverse(self, symbols: np.ndarray, freqs: np.ndarray) -> None:
        self._coder.encode_reverse(symbols, categorical(), freqs)

    def to_bytes(self, packing: WordPacking) -> bytes:
        return packing.to_bytes(self._coder.get_compressed())


class AnsDecoder:
    """Decoder for :class:`AnsEncoder` output; raises FormatError if constriction rejects the words."""

    def __init__(self, data: bytes | memoryview, packing: WordPacking) -> None:
        import constriction

        words = packing.to_words(data)
        try:
            self._coder = constriction.stream.stack.AnsCoder(words)
        except Exception as e:  # noqa: BLE001 - constriction rejects some invalid word arrays
            raise FormatError(f"compressed data rejected by the ANS decoder ({e})") from None

    def decode(self, freqs: np.ndarray) -> np.ndarray:
        return self._coder.decode(categorical(), freqs)

    def is_empty(self) -> bool:
        return self._coder.is_empty()


# -- canonical short messages -----------------------------------------------------------------------


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
        dec = RangeDecoder(data, RANGE_CANONICAL)
        for a, b in _runs(rows):
            if not np.array_equal(dec.decode_freqs(_mat(rows, a, b)), symbols[a:b]):
                return False
    except Exception:  # noqa: BLE001 - any failure just means "this prefix does not decode"
        return False
    return True


def encode_symbols(symbols: Any, rows: list[np.ndarray]) -> bytes:
    """``symbols[i]`` coded with integer frequency row ``rows[i]`` (widths may differ).

    Returns the shortest byte string that decodes to the same symbols (canonical, ``RANGE_CANONICAL``).
    """
    symbols = np.asarray(symbols, dtype=np.int32)
    if len(symbols) == 0:
        return b""
    enc = RangeEncoder()
    for a, b in _runs(rows):
        enc.encode_freqs(symbols[a:b], _mat(rows, a, b))
    full = enc.to_bytes(RANGE_CANONICAL)
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
    """Sequential decoding of :func:`encode_symbols` output: the next model is only known after the
    previous symbol. ``what`` names the stream in error messages."""

    def __init__(self, data: bytes, what: str = "stream") -> None:
        self._dec = RangeDecoder(data, RANGE_CANONICAL)
        self._what = what

    def decode(self, freqs: np.ndarray) -> int:
        try:
            return int(self._dec.decode_freqs(np.asarray(freqs, dtype=np.float64)[None, :])[0])
        except Exception as e:  # constriction raises on exhausted/invalid data
            raise FormatError(f"corrupted {self._what}: range decoder failed ({e})") from None
