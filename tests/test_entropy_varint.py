"""entropy.varint: LEB128 round trip, limits, and every malformed input refused."""

from __future__ import annotations

import numpy as np
import pytest

from semcodec.entropy.varint import (
    MAX_UVARINT,
    decode_uvarint,
    decode_uvarints,
    encode_uvarint,
    unzigzag,
    zigzag,
)
from semcodec.errors import FormatError


def _reference(value: int) -> bytes:
    """LEB128 written out longhand: 7-bit groups, least significant first, continuation bit."""
    groups = [(value >> (7 * i)) & 0x7F for i in range(max(1, (value.bit_length() + 6) // 7))]
    return bytes([g | 0x80 for g in groups[:-1]] + [groups[-1]])


def test_round_trip_against_reference() -> None:
    rng = np.random.default_rng(0)
    values = [0, 1, 127, 128, 255, 300, 16383, 16384, 2**21, 2**28, MAX_UVARINT]
    values += [int(v) for v in rng.integers(0, MAX_UVARINT, 200, dtype=np.int64)]
    for v in values:
        enc = encode_uvarint(v)
        assert enc == _reference(v)
        assert decode_uvarint(b"\x07" + enc + b"\x09", 1) == (v, 1 + len(enc))
    assert encode_uvarint(300) == b"\xac\x02"
    assert decode_uvarints(b"".join(encode_uvarint(v) for v in values)) == values
    assert decode_uvarints(b"\x05", 1) == []


def test_bounds_and_malformed_input() -> None:
    with pytest.raises(ValueError):
        encode_uvarint(-1)
    with pytest.raises(ValueError, match="limit"):
        encode_uvarint(MAX_UVARINT + 1)
    with pytest.raises(FormatError, match="too long"):
        decode_uvarint(b"\xff" * 6, 0)
    with pytest.raises(FormatError, match="too long"):
        decode_uvarint(b"\x80\x80\x80\x80\x80\x01", 0)
    with pytest.raises(FormatError, match="non-canonical"):
        decode_uvarint(b"\x81\x00", 0)
    with pytest.raises(FormatError, match="past the end"):
        decode_uvarint(b"\x81", 0)
    with pytest.raises(FormatError, match="past the end"):
        decode_uvarint(b"\x05", 1)
    with pytest.raises(FormatError, match="past the end"):
        decode_uvarints(b"\x05\x85")  # the last varint is cut


def test_zigzag() -> None:
    vals = list(range(-70, 70))
    assert [unzigzag(zigzag(v)) for v in vals] == vals
    assert [zigzag(v) for v in (0, -1, 1, -2, 2)] == [0, 1, 2, 3, 4]
