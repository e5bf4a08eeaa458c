"""entropy.words: each named word<->byte convention round-trips and keeps its exact byte layout."""

from __future__ import annotations

import numpy as np
import pytest

from semcodec.entropy.words import ANS_WORDS, BIT_TRUNCATED, RANGE_CANONICAL, RANGE_STRIPPED, WordPacking
from semcodec.errors import FormatError

WORDS = np.array([0x01020304, 0xA0B0C000, 0, 0], dtype=np.uint32)


def test_byte_layouts() -> None:
    assert RANGE_CANONICAL.to_bytes(WORDS) == bytes.fromhex("01020304a0b0c000" + "00" * 8)
    assert RANGE_STRIPPED.to_bytes(WORDS) == bytes.fromhex("01020304a0b0c0")  # trailing zeros dropped
    assert ANS_WORDS.to_bytes(WORDS) == bytes.fromhex("0403020100c0b0a0" + "00" * 8)
    assert BIT_TRUNCATED.to_bytes(WORDS, nbits=41) == bytes.fromhex("0403020100c0")  # ceil(41/8) bytes
    assert BIT_TRUNCATED.to_bytes(WORDS, nbits=0) == b""
    assert RANGE_STRIPPED.to_bytes(np.zeros(3, np.uint32)) == b""
    assert RANGE_STRIPPED.to_bytes(np.zeros(0, np.uint32)) == b""


@pytest.mark.parametrize("packing", [RANGE_CANONICAL, RANGE_STRIPPED, ANS_WORDS, BIT_TRUNCATED],
                         ids=lambda p: p.name)
def test_round_trip_pads_with_exactly_the_tail(packing: WordPacking) -> None:
    rng = np.random.default_rng(1)
    for n in (0, 1, 2, 7):
        words = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)
        if n:
            words[-1] &= 0xFFFF0000  # trailing zero bytes: what strip_zeros / truncation cut off
        data = packing.to_bytes(words, nbits=32 * n)
        back = packing.to_words(data)
        assert back.dtype == np.uint32
        assert len(back) == n + packing.tail_words
        assert np.array_equal(back[:n], words)
        assert not back[n:].any()


def test_decoder_padding_of_partial_words() -> None:
    assert list(RANGE_STRIPPED.to_words(b"\x01\x02\x03")) == [0x01020300]
    assert list(RANGE_CANONICAL.to_words(b"\x01")) == [0x01000000, 0, 0]
    assert list(BIT_TRUNCATED.to_words(b"\x01\x02")) == [0x0201, 0]
    assert list(RANGE_CANONICAL.to_words(b"")) == [0, 0]
    with pytest.raises(FormatError, match="whole 32-bit words"):
        ANS_WORDS.to_words(b"\x01\x02\x03\x04\x05")
    with pytest.raises(ValueError, match="valid bits"):
        BIT_TRUNCATED.to_bytes(WORDS)
