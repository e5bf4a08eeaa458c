"""The ``.smc`` container: one file holding every stream a decoder needs.

Layout of format version 2, the one written (integers are unsigned LEB128 varints unless a width
is given)::

    +---------+---------+-------+--------+------------+-------------+----------+------------+
    | "SM"    | version | width | height | profile id | config hash | nstreams | header crc |
    | 2 bytes | 1 byte  | var   | var    | var        | 4 bytes     | var      | 4 bytes BE |
    +---------+---------+-------+--------+------------+-------------+----------+------------+
    then nstreams times:
    +--------+--------+---------------+--------------------------------+
    | kind   | length | payload       | CRC32(kind + length + payload) |
    | 1 byte | var    | length bytes  | 4 bytes, BE                    |
    +--------+--------+---------------+--------------------------------+

Version 1 (still read, never written) differs only in its checksums: the header CRC is the low 16
bits of the CRC32 (2 bytes), and a stream's CRC covers its payload alone. Version 2 exists because
16 bits were the only thing guarding width and height (a corrupted size could pass the check and
decode to a wrong-sized image) and a flipped kind byte went unnoticed.

Nothing follows the last stream. ``docs/format.md`` is the normative description. Parsing never
allocates more than the input size and checks the pixel cap before any decoder runs.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from enum import IntEnum

from ..entropy.varint import decode_uvarint, encode_uvarint
from ..errors import FormatError, ImageTooLargeError, UnsupportedVersionError

MAGIC = b"SM"
FORMAT_VERSION = 2  # the version written; every version in READ_VERSIONS is read
READ_VERSIONS = (1, 2)
CONFIG_HASH_BYTES = 4
MAX_STREAMS = 64
DEFAULT_MAX_PIXELS = 40_000_000


class StreamKind(IntEnum):
    """What a stream carries; ``info`` groups bytes by kind."""

    IMAGE = 1  # a coded image (classical or learned), possibly downscaled
    TEXT = 2  # text, self-describing: first byte is the text coder id
    MASK = 3  # binary masks
    PARAMS = 4  # side parameters (seed, steps, N_r, guidance, scale ...)
    LATENT = 5  # coded latent / VQ indices
    RESIDUAL = 6  # lossless residual


@dataclass(frozen=True)
class Stream:
    kind: StreamKind
    payload: bytes

    def framed_size(self) -> int:
        return stream_cost(len(self.payload))


def stream_cost(payload_len: int) -> int:
    """Bytes one stream of ``payload_len`` bytes takes in the file, framing included."""
    return 1 + len(encode_uvarint(payload_len)) + payload_len + 4


def _header_crc_size(version: int) -> int:
    return 2 if version == 1 else 4


def _header_crc(head: bytes | memoryview, version: int) -> bytes:
    crc = zlib.crc32(head)
    return struct.pack(">H", crc & 0xFFFF) if version == 1 else struct.pack(">I", crc)


def _stream_crc(prefix: bytes | memoryview, payload: bytes | memoryview, version: int) -> int:
    """Version 1 checks the payload only; version 2 also the kind byte and length (``prefix``)."""
    return zlib.crc32(payload) if version == 1 else zlib.crc32(payload, zlib.crc32(prefix))


def encode_header(width: int, height: int, profile_id: int, config_hash: bytes, nstreams: int,
                  version: int = FORMAT_VERSION) -> bytes:
    """The header bytes, checksum included, under ``version``'s rules."""
    if version not in READ_VERSIONS:
        raise ValueError(f"cannot write container format version {version}")
    if len(config_hash) != CONFIG_HASH_BYTES:
        raise ValueError("config hash must be 4 bytes")
    head = (
        MAGIC
        + bytes([version])
        + encode_uvarint(width)
        + encode_uvarint(height)
        + encode_uvarint(profile_id)
        + config_hash
        + encode_uvarint(nstreams)
    )
    return head + _header_crc(head, version)


def encode_stream(kind: int, payload: bytes, version: int = FORMAT_VERSION) -> bytes:
    """One framed stream: kind, length, payload and its checksum under ``version``'s rules."""
    prefix = bytes([int(kind)]) + encode_uvarint(len(payload))
    return prefix + payload + struct.pack(">I", _stream_crc(prefix, payload, version))


@dataclass
class Container:
    width: int
    height: int
    profile_id: int
    config_hash: bytes
    streams: list[Stream] = field(default_factory=list)
    # A parsed file keeps its version, so ``to_bytes`` gives back the same bytes and ``describe``
    # reports the header size the file really has; new containers get the current version.
    version: int = FORMAT_VERSION

    def header_bytes(self) -> bytes:
        return encode_header(self.width, self.height, self.profile_id, self.config_hash, len(self.streams),
                             self.version)

    def to_bytes(self) -> bytes:
        if not 0 < len(self.streams) <= MAX_STREAMS:
            raise ValueError(f"a container holds 1..{MAX_STREAMS} streams")
        parts = [self.header_bytes()]
        parts += [encode_stream(s.kind, s.payload, self.version) for s in self.streams]
        return b"".join(parts)

    def streams_of(self, kind: StreamKind) -> list[Stream]:
        return [s for s in self.streams if s.kind == kind]


def parse_container(data: bytes, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Container:
    """Parse and fully validate ``data``; raise :class:`FormatError` (or a subclass) on any defect."""
    view = memoryview(data)
    if len(view) < len(MAGIC) + 1 or bytes(view[:2]) != MAGIC:
        raise FormatError("not a semcodec file (bad magic)")
    version = view[2]
    if version not in READ_VERSIONS:
        readable = ", ".join(map(str, READ_VERSIONS))
        raise UnsupportedVersionError(
            f"container format version {version} is not supported by this build (reads versions {readable});"
            " upgrade semcodec"
        )
    pos = 3
    width, pos = decode_uvarint(view, pos)
    height, pos = decode_uvarint(view, pos)
    profile_id, pos = decode_uvarint(view, pos)
    if pos + CONFIG_HASH_BYTES > len(view):
        raise FormatError("truncated file: header ends early")
    config_hash = bytes(view[pos : pos + CONFIG_HASH_BYTES])
    pos += CONFIG_HASH_BYTES
    nstreams, pos = decode_uvarint(view, pos)
    crc_size = _header_crc_size(version)
    if pos + crc_size > len(view):
        raise FormatError("truncated file: header ends early")
    if bytes(view[pos : pos + crc_size]) != _header_crc(view[:pos], version):
        raise FormatError("corrupted file: header checksum mismatch")
    pos += crc_size
    if width == 0 or height == 0:
        raise FormatError("corrupted file: zero image size")
    if max_pixels is not None and width * height > max_pixels:
        raise ImageTooLargeError(
            f"image is {width}x{height} = {width * height} pixels, above the cap of {max_pixels}"
            " (raise it with --max-pixels or SEMCODEC_MAX_PIXELS)"
        )
    if not 0 < nstreams <= MAX_STREAMS:
        raise FormatError(f"corrupted file: {nstreams} streams (allowed 1..{MAX_STREAMS})")
    streams: list[Stream] = []
    for i in range(nstreams):
        if pos >= len(view):
            raise FormatError(f"truncated file: stream {i} missing")
        try:
            kind = StreamKind(view[pos])
        except ValueError:
            raise FormatError(f"corrupted file: unknown stream kind {view[pos]}") from None
        start = pos
        length, pos = decode_uvarint(view, pos + 1)
        if pos + length + 4 > len(view):
            raise FormatError(f"truncated file: stream {i} needs {length} bytes")
        payload = bytes(view[pos : pos + length])
        (crc32,) = struct.unpack(">I", view[pos + length : pos + length + 4])
        if _stream_crc(view[start:pos], payload, version) != crc32:
            raise FormatError(f"corrupted file: stream {i} ({kind.name.lower()}) checksum mismatch")
        streams.append(Stream(kind, payload))
        pos += length + 4
    if pos != len(view):
        raise FormatError(f"corrupted file: {len(view) - pos} unexpected trailing bytes")
    return Container(width, height, profile_id, config_hash, streams, version)
