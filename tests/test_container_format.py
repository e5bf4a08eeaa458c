"""The .smc container: round trip, framing arithmetic and every documented parse error."""

from __future__ import annotations

import struct
import zlib

import pytest

from semcodec.container import (
    FORMAT_VERSION,
    Container,
    Stream,
    StreamKind,
    pack_params,
    parse_container,
    stream_cost,
    unpack_params,
)
from semcodec.container.format import MAX_STREAMS, encode_header, encode_stream
from semcodec.entropy.varint import encode_uvarint
from semcodec.errors import FormatError, ImageTooLargeError, UnsupportedVersionError
from semcodec.text import decode_text_stream, encode_text_stream
from semcodec.text.base import get_text_coder


def _sample() -> Container:
    return Container(
        width=300,
        height=200,
        profile_id=33,
        config_hash=b"\x01\x02\x03\x04",
        streams=[
            Stream(StreamKind.IMAGE, b"\x00" * 200),
            Stream(StreamKind.TEXT, b"\x01hello"),
            Stream(StreamKind.PARAMS, b""),
        ],
    )


def _header(width: int, height: int, pid: int, n: int, version: int = FORMAT_VERSION) -> bytes:
    """Written out by hand (not through format.py) so the tests pin the documented layout."""
    head = b"SM" + bytes([version]) + encode_uvarint(width) + encode_uvarint(height) + encode_uvarint(pid)
    head += b"\0\0\0\0" + encode_uvarint(n)
    crc = zlib.crc32(head)
    return head + (struct.pack(">H", crc & 0xFFFF) if version == 1 else struct.pack(">I", crc))


def _frame(kind: int, payload: bytes, version: int = FORMAT_VERSION) -> bytes:
    prefix = bytes([kind]) + encode_uvarint(len(payload))
    crc = zlib.crc32(payload) if version == 1 else zlib.crc32(prefix + payload)
    return prefix + payload + struct.pack(">I", crc)


def test_round_trip_preserves_everything() -> None:
    c = _sample()
    data = c.to_bytes()
    back = parse_container(data)
    assert (back.width, back.height, back.profile_id, back.config_hash) == (300, 200, 33, b"\x01\x02\x03\x04")
    assert back.streams == c.streams
    assert len(data) == len(c.header_bytes()) + sum(s.framed_size() for s in c.streams)
    assert data[:3] == b"SM\x02" and FORMAT_VERSION == 2


@pytest.mark.parametrize("n", [0, 1, 127, 128, 16383, 16384, 100_000])
def test_stream_cost_is_the_framed_size(n: int) -> None:
    framed = _frame(1, b"x" * n)
    assert stream_cost(n) == len(framed) == 1 + len(encode_uvarint(n)) + n + 4


def test_header_crc_is_crc32_in_v2_and_its_low_16_bits_in_v1() -> None:
    head = _sample().header_bytes()
    assert head == _header(300, 200, 33, 3)[:-4].replace(b"\0\0\0\0", b"\x01\x02\x03\x04") + head[-4:]
    assert struct.unpack(">I", head[-4:])[0] == zlib.crc32(head[:-4])
    v1 = Container(300, 200, 33, b"\x01\x02\x03\x04", _sample().streams, version=1).header_bytes()
    assert v1[2] == 1 and len(v1) == len(head) - 2  # version 2 costs 2 bytes per file
    assert struct.unpack(">H", v1[-2:])[0] == zlib.crc32(v1[:-2]) & 0xFFFF


@pytest.mark.parametrize("version", [1, 2])
def test_both_versions_parse_and_rewrite_to_the_same_bytes(version: int) -> None:
    data = _header(300, 200, 33, 3, version) + b"".join(_frame(int(s.kind), s.payload, version) for s in _sample().streams)
    c = parse_container(data)
    assert c.version == version and c.streams == _sample().streams and c.config_hash == b"\0\0\0\0"
    assert c.to_bytes() == data and len(c.header_bytes()) + sum(s.framed_size() for s in c.streams) == len(data)
    assert encode_stream(1, b"abc", version) == _frame(1, b"abc", version)
    assert encode_header(300, 200, 33, b"\0\0\0\0", 3, version) == _header(300, 200, 33, 3, version)


def test_writer_refuses_unknown_versions() -> None:
    with pytest.raises(ValueError, match="version 3"):
        encode_header(1, 1, 1, b"\0\0\0\0", 1, version=3)


def test_every_single_and_double_bit_flip_in_a_v2_header_is_detected() -> None:
    """Exhaustive over one and two flipped bits (CRC-32 over so few bits has Hamming distance 6; a flip
    that changes a varint's length moves the checksum, which is then caught with probability 1 - 2^-32)."""
    data = Container(768, 512, 33, b"\xde\xad\xbe\xef", [Stream(StreamKind.IMAGE, b"xyz")]).to_bytes()
    nbits = 8 * (len(data) - stream_cost(3))
    assert nbits == 8 * 17  # magic 2, version 1, width 2, height 2, profile 1, hash 4, nstreams 1, crc 4
    flips = [(i,) for i in range(nbits)] + [(i, j) for i in range(nbits) for j in range(i + 1, nbits)]
    for bits in flips:
        bad = bytearray(data)
        for k in bits:
            bad[k // 8] ^= 1 << (k % 8)
        with pytest.raises(FormatError):
            parse_container(bytes(bad), max_pixels=None)


def test_a_size_change_that_fools_the_v1_checksum_is_caught_by_v2() -> None:
    """Why version 2 exists: 16 bits were all that guarded width and height (a real corruption turned
    768x512 into 208x331 and still passed). Find such a collision for v1 and check v2 refuses it."""
    good = _header(768, 512, 1, 1, 1)
    collision = next(
        (w, h) for h in range(300, 400) for w in range(1, 2000)
        if _header(w, h, 1, 1, 1)[-2:] == good[-2:] and (w, h) != (768, 512)
    )
    forged_v1 = _header(*collision, 1, 1, 1)[:-2] + good[-2:]
    assert (parse_container(forged_v1 + _frame(1, b"a", 1)).width,) == (collision[0],)
    forged_v2 = _header(*collision, 1, 1, 2)[:-4] + _header(768, 512, 1, 1, 2)[-4:]
    with pytest.raises(FormatError, match="header checksum"):
        parse_container(forged_v2 + _frame(1, b"a", 2))


def test_v2_stream_crc_covers_the_kind_and_length() -> None:
    kind_at = {v: len(_header(5, 5, 1, 2, v)) + len(_frame(1, b"abc", v)) for v in (1, 2)}
    data = bytearray(_header(5, 5, 1, 2) + _frame(1, b"abc") + _frame(2, b"\x00hi"))
    data[kind_at[2]] = 3  # text -> mask: a valid kind, caught only by the v2 checksum
    with pytest.raises(FormatError, match=r"stream 1 \(mask\) checksum"):
        parse_container(bytes(data))
    v1 = bytearray(_header(5, 5, 1, 2, 1) + _frame(1, b"abc", 1) + _frame(2, b"\x00hi", 1))
    v1[kind_at[1]] = 3
    assert parse_container(bytes(v1)).streams[1].kind == StreamKind.MASK  # went unnoticed in v1


def test_writer_rejects_bad_containers() -> None:
    with pytest.raises(ValueError):
        Container(1, 1, 1, b"\0\0\0\0", []).to_bytes()
    with pytest.raises(ValueError):
        Container(1, 1, 1, b"\0\0\0\0", [Stream(StreamKind.IMAGE, b"")] * (MAX_STREAMS + 1)).to_bytes()
    with pytest.raises(ValueError):
        Container(1, 1, 1, b"\0\0\0", [Stream(StreamKind.IMAGE, b"")]).to_bytes()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "bad magic"),
        (b"SM", "bad magic"),
        (b"PK\x03\x04rest", "bad magic"),
        (b"\x89PNG\r\n\x1a\n", "bad magic"),
    ],
)
def test_not_a_container(data: bytes, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        parse_container(data)


def test_unsupported_version_names_the_versions() -> None:
    data = bytearray(_sample().to_bytes())
    data[2] = 9
    with pytest.raises(UnsupportedVersionError, match="version 9"):
        parse_container(bytes(data))


def test_every_truncation_is_a_format_error() -> None:
    data = _sample().to_bytes()
    for cut in range(len(data)):
        with pytest.raises(FormatError):
            parse_container(data[:cut])


def test_header_checksum_mismatch() -> None:
    data = bytearray(_sample().to_bytes())
    data[3] ^= 0x01  # width
    with pytest.raises(FormatError, match="header checksum"):
        parse_container(bytes(data))


def test_zero_size_and_stream_count_limits() -> None:
    body = _frame(1, b"abc")
    with pytest.raises(FormatError, match="zero image size"):
        parse_container(_header(0, 5, 1, 1) + body)
    with pytest.raises(FormatError, match="0 streams"):
        parse_container(_header(5, 5, 1, 0))
    with pytest.raises(FormatError, match="65 streams"):
        parse_container(_header(5, 5, 1, 65) + body * 65)
    assert len(parse_container(_header(5, 5, 1, 64) + body * 64).streams) == 64


def test_pixel_cap_is_checked_before_streams() -> None:
    data = _header(10_000, 10_000, 1, 1) + _frame(1, b"abc")
    with pytest.raises(ImageTooLargeError, match="above the cap"):
        parse_container(data)
    with pytest.raises(ImageTooLargeError):
        parse_container(data, max_pixels=99_999_999)
    assert parse_container(data, max_pixels=100_000_000).width == 10_000
    assert parse_container(data, max_pixels=None).height == 10_000


def test_unknown_stream_kind() -> None:
    with pytest.raises(FormatError, match="unknown stream kind 7"):
        parse_container(_header(5, 5, 1, 1) + _frame(7, b"abc"))
    with pytest.raises(FormatError, match="unknown stream kind 0"):
        parse_container(_header(5, 5, 1, 1) + _frame(0, b"abc"))


def test_stream_checksum_mismatch_names_the_stream() -> None:
    data = bytearray(_header(5, 5, 1, 2) + _frame(1, b"abc") + _frame(2, b"\x00hi"))
    data[-5] ^= 0x40
    with pytest.raises(FormatError, match=r"stream 1 \(text\) checksum"):
        parse_container(bytes(data))


def test_length_past_end_and_trailing_bytes() -> None:
    good = _header(5, 5, 1, 1) + _frame(1, b"abc")
    huge = _header(5, 5, 1, 1) + b"\x01" + encode_uvarint(2**34) + b"abc"
    with pytest.raises(FormatError, match="needs 17179869184 bytes"):
        parse_container(huge)
    with pytest.raises(FormatError, match="trailing"):
        parse_container(good + b"\0")
    with pytest.raises(FormatError, match="stream 1 missing"):
        parse_container(_header(5, 5, 1, 2) + _frame(1, b"abc"))


def test_non_canonical_header_varint() -> None:
    """The container relies on entropy.varint's strictness (tests/test_entropy_varint.py)."""
    # a non-canonical width in a header with a correct CRC is refused
    head = b"SM\x02" + b"\x85\x00" + b"\x05\x01" + b"\0\0\0\0\x01"
    head += struct.pack(">I", zlib.crc32(head))
    with pytest.raises(FormatError, match="non-canonical"):
        parse_container(head + _frame(1, b"a"))


SCHEMA = [("seed", "u"), ("shift", "i"), ("guidance", "f32"), ("name", "str"), ("blob", "bytes")]


def test_params_round_trip_and_errors() -> None:
    values = {"seed": 123456, "shift": -7, "guidance": 3.5, "name": "héllo", "blob": b"\x00\xff"}
    data = pack_params(SCHEMA, values)
    assert unpack_params(SCHEMA, data) == values
    for cut in range(len(data)):
        with pytest.raises(FormatError):
            unpack_params(SCHEMA, data[:cut])
    with pytest.raises(FormatError, match="trailing"):
        unpack_params(SCHEMA, data + b"\0")
    with pytest.raises(FormatError, match="not UTF-8"):
        unpack_params([("name", "str")], b"\x02\xff\xfe")
    with pytest.raises(FormatError, match="corrupted params"):
        unpack_params([("blob", "bytes")], encode_uvarint(1 << 20) + b"x")
    with pytest.raises(ValueError, match="too long"):
        pack_params([("blob", "bytes")], {"blob": b"x" * (1 << 17)})
    with pytest.raises(ValueError, match="unknown field type"):
        pack_params([("x", "q")], {"x": 1})  # type: ignore[list-item]


def test_text_stream_coder_byte_and_errors() -> None:
    text = "A lighthouse on a rocky coast at dusk, 灯台 🌊"
    payload = encode_text_stream(text)
    assert decode_text_stream(payload) == text
    raw = encode_text_stream(text, get_text_coder("raw"))
    assert raw[0] & 0xF == 0 and raw[1:] == text.encode("utf-8")  # high nibble: 4-bit CRC of the text
    z = encode_text_stream(text, get_text_coder("zlib"))
    assert z[0] & 0xF == 1 and decode_text_stream(z) == text
    with pytest.raises(FormatError, match="empty"):
        decode_text_stream(b"")
    with pytest.raises(FormatError, match="unknown text coder id 9"):
        decode_text_stream(b"\xf9 abc")
    with pytest.raises(FormatError, match="extended coder id"):
        decode_text_stream(b"\x0f abc")
    with pytest.raises(FormatError, match="invalid UTF-8"):
        decode_text_stream(b"\x00\xff\xfe")
    with pytest.raises(FormatError):
        decode_text_stream(b"\x01\xff\xff\xff\xff")
    with pytest.raises(FormatError, match="incomplete"):
        decode_text_stream(z[:-3])
