"""Unsigned LEB128 varints with hard limits, so a corrupted length can never trigger a huge read."""

from __future__ import annotations

from ..errors import FormatError

MAX_VARINT_BYTES = 5  # values < 2**35; every length in the format is far smaller


def encode_uvarint(value: int) -> bytes:
    if value < 0:
        raise ValueError("uvarint must be non-negative")
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


def zigzag(value: int) -> int:
    return (value << 1) if value >= 0 else ((-value << 1) - 1)


def unzigzag(value: int) -> int:
    return (value >> 1) if not value & 1 else -((value + 1) >> 1)
