"""The lossless profile's base codecs by name and by the one-byte id stored in its IMAGE stream.

The id is part of the format (docs/format.md): never change or reuse one.
"""

from __future__ import annotations

from ..errors import FormatError
from ..registry import Entry, Registry

BASE_CODEC_REGISTRY: Registry = Registry("base codec", {
    "heif": Entry(1, "semcodec.lossless.base_codec:BASES.heif"),
    "jpeg": Entry(2, "semcodec.lossless.base_codec:BASES.jpeg"),
    "lic": Entry(3, "semcodec.lossless.base_codec:BASES.lic"),
}, id_range=range(0, 256), error=FormatError)
