"""Side parameters as a fixed schema of typed fields: compact, bounded, and never a free-form blob.

A profile declares its schema once (field names and types); the stream then holds only the values in
schema order. Adding a field means a new schema, which changes the profile's config hash.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import Literal

from ..entropy.varint import decode_uvarint, encode_uvarint, unzigzag, zigzag
from ..errors import FormatError

FieldType = Literal["u", "i", "f32", "str", "bytes"]
MAX_FIELD_BYTES = 1 << 16


def pack_params(schema: Sequence[tuple[str, FieldType]], values: Mapping[str, object]) -> bytes:
    out = bytearray()
    for name, kind in schema:
        v = values[name]
        if kind == "u":
            out += encode_uvarint(int(v))  # type: ignore[arg-type]
        elif kind == "i":
            out += encode_uvarint(zigzag(int(v)))  # type: ignore[arg-type]
        elif kind == "f32":
            out += struct.pack("<f", float(v))  # type: ignore[arg-type]
        elif kind in ("str", "bytes"):
            raw = v.encode("utf-8") if kind == "str" else bytes(v)  # type: ignore[union-attr,arg-type]
            if len(raw) > MAX_FIELD_BYTES:
                raise ValueError(f"param {name!r} too long")
            out += encode_uvarint(len(raw)) + raw
        else:
            raise ValueError(f"unknown field type {kind!r}")
    return bytes(out)


def unpack_params(schema: Sequence[tuple[str, FieldType]], data: bytes) -> dict[str, object]:
    values: dict[str, object] = {}
    pos = 0
    for name, kind in schema:
        if kind in ("u", "i"):
            raw, pos = decode_uvarint(data, pos)
            values[name] = raw if kind == "u" else unzigzag(raw)
        elif kind == "f32":
            if pos + 4 > len(data):
                raise FormatError(f"truncated params: field {name!r}")
            (values[name],) = struct.unpack_from("<f", data, pos)
            pos += 4
        else:
            n, pos = decode_uvarint(data, pos)
            if n > MAX_FIELD_BYTES or pos + n > len(data):
                raise FormatError(f"corrupted params: field {name!r}")
            raw = bytes(data[pos : pos + n])
            pos += n
            if kind == "str":
                try:
                    values[name] = raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise FormatError(f"corrupted params: field {name!r} is not UTF-8") from None
            else:
                values[name] = raw
    if pos != len(data):
        raise FormatError("corrupted params: trailing bytes")
    return values
