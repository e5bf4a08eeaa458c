"""constriction's compressed data (uint32 words) <-> stream bytes: one rule, four named conventions.

constriction hands out and takes back a 1-D ``uint32`` array; a stream stores bytes. Each coder
that shipped before this module picked its own conversion, and those choices are now part of the
bitstream, so the rule is a :class:`WordPacking` with explicit options and each convention in use is
a named instance. Changing an instance's options changes (or breaks) existing streams::

    encoder:  words ─► bytes in ``byteorder`` ─► [drop trailing zero bytes | keep ceil(nbits/8) bytes]
    decoder:  bytes ─► [refuse partial words] ─► zero-pad to whole words ─► + ``tail_words`` zero words

Trimming is safe because the decoder re-pads with zeros, which is exactly what was cut off (or, for
``tail_words``, what a range decoder may read past the end of the message).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..errors import FormatError


@dataclass(frozen=True)
class WordPacking:
    """How one stream type stores constriction's words as bytes (see the module docstring)."""

    name: str
    byteorder: Literal["big", "little"]
    #: encoder: drop trailing zero bytes (the decoder's zero padding restores them)
    strip_zeros: bool = False
    #: encoder: keep only the first ceil(nbits / 8) bytes; ``to_bytes`` then needs ``nbits``
    truncate_to_bits: bool = False
    #: decoder: the byte count must be a multiple of 4 (no padding, nothing was trimmed)
    whole_words: bool = False
    #: decoder: zero words appended after padding to whole words
    tail_words: int = 0

    @property
    def _dtype(self) -> str:
        return ">u4" if self.byteorder == "big" else "<u4"

    def to_bytes(self, words: np.ndarray, nbits: int | None = None) -> bytes:
        """Stream bytes of ``words`` (``nbits``: valid bits, only for ``truncate_to_bits``)."""
        data = np.asarray(words, dtype=np.uint32).astype(self._dtype).tobytes()
        if self.truncate_to_bits:
            if nbits is None:
                raise ValueError(f"word packing {self.name!r} needs the number of valid bits")
            data = data[: (nbits + 7) // 8]
        if self.strip_zeros:
            data = data.rstrip(b"\0")
        return data

    def to_words(self, data: bytes | memoryview) -> np.ndarray:
        """The uint32 word array a constriction decoder reads for stream bytes ``data``."""
        data = bytes(data)
        if self.whole_words and len(data) % 4:
            raise FormatError(f"corrupted {self.name} data: not whole 32-bit words")
        data += b"\0" * ((-len(data)) % 4 + 4 * self.tail_words)
        return np.frombuffer(data, dtype=self._dtype).astype(np.uint32)


#: Text range coder (``rangecoder.encode_symbols``): big-endian; the encoder keeps the shortest
#: prefix that still decodes (chosen by search, not by stripping), the decoder adds two zero words.
RANGE_CANONICAL = WordPacking("range-canonical", "big", tail_words=2)
#: MASK stream (``ctx``/``ctx0`` bodies): big-endian with trailing zero bytes dropped.
RANGE_STRIPPED = WordPacking("range-stripped", "big", strip_zeros=True)
#: Lossless RESIDUAL stream: the ANS stack's words verbatim, little-endian, whole words only.
ANS_WORDS = WordPacking("ans-words", "little", whole_words=True)
#: Huffman text coder: little-endian, cut to the bits actually written; the decoder adds one zero word.
BIT_TRUNCATED = WordPacking("bit-truncated", "little", truncate_to_bits=True, tail_words=1)
