"""The learned codec ``lic`` as a base: its two streams, and their one-string form.

Byte view (the lossless profile's base payload, docs/format.md)::

    [width u16 BE][height u16 BE][PARAMS length u16 BE][PARAMS payload][LATENT payload]

The size fields repeat the container's size so a mismatch is refused before any pixel is decoded.
"""

from __future__ import annotations

import struct

from ...container import Stream, StreamKind
from ...errors import FormatError
from .contract import check_size
from .profiled import ProfileBase

_HEADER = struct.Struct(">HHH")


class LicBase(ProfileBase):
    """The ``lic`` profile as a base; ``quality`` is its rate code as a fraction of the range (0..1)."""

    def join(self, streams: list[Stream], width: int, height: int) -> bytes:
        if max(width, height) > 0xFFFF:
            raise ValueError("the lic base codes images up to 65535 pixels a side")
        kinds = [s.kind for s in streams]
        if kinds != [StreamKind.PARAMS, StreamKind.LATENT]:
            raise ValueError(f"lic base: expected PARAMS and LATENT streams, got {kinds}")
        params, latent = streams[0].payload, streams[1].payload
        return _HEADER.pack(width, height, len(params)) + params + latent

    def split(self, data: bytes, width: int, height: int) -> list[Stream]:
        if len(data) < _HEADER.size:
            raise FormatError("lic base stream too short")
        w, h, n = _HEADER.unpack_from(data)
        check_size((w, h), width, height)
        start = _HEADER.size
        if len(data) < start + n:
            raise FormatError("lic base stream too short")
        return [Stream(StreamKind.PARAMS, data[start : start + n]), Stream(StreamKind.LATENT, data[start + n :])]
