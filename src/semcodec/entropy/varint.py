"""Unsigned LEB128 varints with hard limits, so a corrupted length can never trigger a huge read.

One implementation for every stream that writes variable-length integers (container header and
PARAMS, mask headers and run lengths, the Huffman text header, RankZip ranks, the latent codec). A
value is 7 bits per byte, least significant group first, high bit set on every byte but the last::

    300 = 0b10_0101100  ->  0xAC 0x02

Decoding is strict: at most ``MAX_VARINT_BYTES`` bytes, and no redundant trailing zero group
(``0x81 0x00`` is refused), so every value has exactly one encoding and a flipped bit cannot
silently decode to the same number.
"""

from __future__ import annotations

from ..errors import FormatError

MAX_VARINT_BYTES = 5  # values < 2**35; every length in the format is far smaller
MAX_UVARINT = (1 << (7 * MAX_VARINT_BYTES)) - 1


def encode_uvarint(value: int) -> bytes:
    """LEB128 bytes of ``0 <= value <= MAX_UVARINT`` (larger values could not be decoded)."""
    if value < 0:
        raise ValueError("uvarint must be non-negative")
    if value > MAX_UVARINT:
        raise ValueError(f"uvarint {value} above the {MAX_VARINT_BYTES}-byte limit")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def decode_uvarint(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    """Return ``(value, new_pos)``; raise :class:`FormatError` on truncation or overlong encoding."""
    value = 0
    for i in range(MAX_VARINT_BYTES):
        if pos >= len(data):
            raise FormatError("truncated file: varint runs past the end")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            if i > 0 and byte == 0:
                raise FormatError("corrupted file: non-canonical varint")
            return value, pos
    raise FormatError("corrupted file: varint too long")


def decode_uvarints(data: bytes | memoryview, pos: int = 0) -> list[int]:
    """Every varint from ``pos`` to the end of ``data`` (a stream that is nothing but varints)."""
    out = []
    while pos < len(data):
        value, pos = decode_uvarint(data, pos)
        out.append(value)
    return out


def zigzag(value: int) -> int:
    """Signed -> unsigned (0, -1, 1, -2, ... -> 0, 1, 2, 3, ...), so small magnitudes stay short."""
    return (value << 1) if value >= 0 else ((-value << 1) - 1)


def unzigzag(value: int) -> int:
    return (value >> 1) if not value & 1 else -((value + 1) >> 1)
