"""Tiny ICC v2 profiles built byte by byte, so the colour-management tests need no binary fixtures.

Pillow's ImageCms can only create sRGB, LAB and XYZ profiles; the tests also need a non-sRGB RGB
profile (sRGB primaries with a linear, gamma-1.0 curve), a grey one and a CMYK one (ICC.1:2001-04,
the v2 specification: header, tag table, XYZType / curveType / textDescriptionType / lut16Type).
"""

from __future__ import annotations

import struct
from collections.abc import Callable

D50 = (0.9642, 1.0, 0.8249)
# sRGB's colorants adapted to D50, as in the usual "sRGB IEC61966-2.1" profile
SRGB_PRIMARIES_D50 = ((0.4361, 0.2225, 0.0139), (0.3851, 0.7169, 0.0971), (0.1431, 0.0606, 0.7141))


def _s15(v: float) -> bytes:
    return struct.pack(">i", round(v * 65536))


def _xyz(x: float, y: float, z: float) -> bytes:
    return b"XYZ \0\0\0\0" + _s15(x) + _s15(y) + _s15(z)


def _gamma_curve(gamma: float) -> bytes:
    return b"curv\0\0\0\0" + struct.pack(">IH", 1, round(gamma * 256)) + b"\0\0"


def _desc(text: str) -> bytes:
    ascii_ = text.encode("ascii") + b"\0"
    return b"desc\0\0\0\0" + struct.pack(">I", len(ascii_)) + ascii_ + struct.pack(">II", 0, 0) + b"\0\0\0" + b"\0" * 67


def _profile(device_class: bytes, space: bytes, pcs: bytes, tags: dict[bytes, bytes]) -> bytes:
    table = struct.pack(">I", len(tags))
    offset = 128 + 4 + 12 * len(tags)
    body = b""
    for sig, data in tags.items():
        data += b"\0" * (-len(data) % 4)
        table += sig + struct.pack(">II", offset + len(body), len(data))
        body += data
    size = 128 + len(table) + len(body)
    header = struct.pack(">I", size) + b"\0" * 4 + struct.pack(">I", 0x02100000) + device_class + space + pcs
    header += b"\0" * 12 + b"acsp" + b"\0" * 24 + struct.pack(">I", 0) + b"".join(_s15(v) for v in D50)
    header += b"\0" * (128 - len(header))
    return header + table + body


def rgb_profile(gamma: float, primaries: tuple = SRGB_PRIMARIES_D50, name: str = "test RGB") -> bytes:
    """A matrix/TRC display profile: one gamma for all three channels."""
    r, g, b = primaries
    tags = {b"desc": _desc(name), b"wtpt": _xyz(*D50), b"rXYZ": _xyz(*r), b"gXYZ": _xyz(*g), b"bXYZ": _xyz(*b)}
    tags.update({t: _gamma_curve(gamma) for t in (b"rTRC", b"gTRC", b"bTRC")})
    return _profile(b"mntr", b"RGB ", b"XYZ ", tags)


def gray_profile(gamma: float, name: str = "test grey") -> bytes:
    return _profile(b"mntr", b"GRAY", b"XYZ ", {b"desc": _desc(name), b"wtpt": _xyz(*D50), b"kTRC": _gamma_curve(gamma)})


def cmyk_profile(lab_of: Callable[[int, int, int, int], tuple[float, float, float]], name: str = "test CMYK") -> bytes:
    """An output profile whose A2B0 table (2 grid points per ink, linear in between) gives, for each
    corner (c, m, y, k) in {0, 1}^4, the CIE L*a*b* ``lab_of(c, m, y, k)``."""
    ident = b"".join(_s15(1.0 if i == j else 0.0) for i in range(3) for j in range(3))
    lut = b"mft2\0\0\0\0" + bytes([4, 3, 2, 0]) + ident + struct.pack(">HH", 2, 2)
    lut += struct.pack(">HH", 0, 0xFFFF) * 4  # input curves: identity
    for c in (0, 1):
        for m in (0, 1):
            for y in (0, 1):
                for k in (0, 1):
                    lab_l, a, b = lab_of(c, m, y, k)  # v2 16-bit Lab: L 100 = 0xFF00, a/b 0 = 0x8000
                    lut += struct.pack(">HHH", round(lab_l * 0xFF00 / 100), round((a + 128) * 256), round((b + 128) * 256))
    lut += struct.pack(">HH", 0, 0xFFFF) * 3  # output curves: identity
    return _profile(b"prtr", b"CMYK", b"Lab ", {b"desc": _desc(name), b"wtpt": _xyz(*D50), b"A2B0": lut})
