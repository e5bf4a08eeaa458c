"""Model-free text coders: raw UTF-8 and zlib (PerCo's choice). Always available."""

from __future__ import annotations

import zlib

from ..errors import FormatError
from .base import TextCoder


class RawUtf8Coder(TextCoder):
    """UTF-8 bytes as they are: the baseline every other coder is measured against."""

    def encode(self, text: str) -> bytes:
        return text.encode("utf-8", "surrogatepass")

    def decode(self, data: bytes) -> str:
        try:
            return data.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            raise FormatError("corrupted text stream: invalid UTF-8") from None


class ZlibCoder(TextCoder):
    """Raw DEFLATE at level 9 (no zlib header/adler: the container CRC already protects it)."""

    def encode(self, text: str) -> bytes:
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        return c.compress(text.encode("utf-8", "surrogatepass")) + c.flush()

    def decode(self, data: bytes) -> str:
        d = zlib.decompressobj(-15)
        try:
            raw = d.decompress(data, 1 << 20)
        except zlib.error as e:
            raise FormatError(f"corrupted text stream: {e}") from None
        if d.unconsumed_tail or d.unused_data or not d.eof:
            raise FormatError("corrupted text stream: deflate data incomplete or over 1 MiB")
        try:
            return raw.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            raise FormatError("corrupted text stream: invalid UTF-8") from None
