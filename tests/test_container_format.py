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
from semcodec.container.format import MAX_STREAMS
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
    head = b"SM" + bytes([version]) + encode_uvarint(width) + encode_uvarint(height) + encode_uvarint(pid)
    head += b"\0\0\0\0" + encode_uvarint(n)
    return head + struct.pack(">H", zlib.crc32(head) & 0xFFFF)


def _frame(kind: int, payload: bytes) -> bytes:
    return bytes([kind]) + encode_uvarint(len(payload)) + payload + struct.pack(">I", zlib.crc32(payload))


def test_round_trip_preserves_everything() -> None:
    c = _sample()
    data = c.to_bytes()
    back = parse_container(data)
    assert (back.width, back.height, back.profile_id, back.config_hash) == (300, 200, 33, b"\x01\x02\x03\x04")
    assert back.streams == c.streams
    assert len(data) == len(c.header_bytes()) + sum(s.framed_size() for s in c.streams)
    assert data[:3] == b"SM\x01"


@pytest.mark.parametrize("n", [0, 1, 127, 128, 16383, 16384, 100_000])
def test_stream_cost_is_the_framed_size(n: int) -> None:
    framed = _frame(1, b"x" * n)
    assert stream_cost(n) == len(framed) == 1 + len(encode_uvarint(n)) + n + 4


def test_header_crc_is_low_16_bits_of_crc32() -> None:
    head = _sample().header_bytes()
    assert struct.unpack(">H", head[-2:])[0] == zlib.crc32(head[:-2]) & 0xFFFF


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
    head = b"SM\x01" + b"\x85\x00" + b"\x05\x01" + b"\0\0\0\0\x01"
    head += struct.pack(">H", zlib.crc32(head) & 0xFFFF)
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
