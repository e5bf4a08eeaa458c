"""Base images: one component for every codec another profile builds on (ITC, SEDIC, lossless).

::

    BASE_CODECS[name] ─► BaseCodec:  encode(image, quality | max_bytes) -> bytes   decode(bytes, w, h)
                                     (+ the same coding as container streams, see ``contract``)

=============  =================================================  ==========================
name           codec                                              used by
=============  =================================================  ==========================
jpeg … heif    the classical profiles (rate control, downscale)   ITC / SEDIC
lic            the learned codec profile                          ITC / SEDIC, lossless
heif-444       HEVC 4:4:4 at the exact size                       lossless ("heif")
jpeg-444       Pillow JPEG 4:4:4 at the exact size                lossless ("jpeg")
=============  =================================================  ==========================

Names are looked up in :data:`BASE_CODECS` (the project's one lazy registry: a lookup imports only
that entry's module), each class built as ``Class(name, **options)``; a new base is one more line.
"""

from __future__ import annotations

from typing import Any

from ...errors import MissingComponentError
from ...registry import Entry, Registry
from .contract import BaseCodec, check_size
from .scaled import ScaledBase, resize

BASE_CODECS: Registry[type[BaseCodec]] = Registry("base codec", {
    "jpeg": Entry(None, "semcodec.image.base.profiled:ProfileBase"),
    "webp": Entry(None, "semcodec.image.base.profiled:ProfileBase"),
    "avif": Entry(None, "semcodec.image.base.profiled:ProfileBase"),
    "jxl": Entry(None, "semcodec.image.base.profiled:ProfileBase"),
    "j2k": Entry(None, "semcodec.image.base.profiled:ProfileBase"),
    "heif": Entry(None, "semcodec.image.base.profiled:ProfileBase"),
    "lic": Entry(None, "semcodec.image.base.lic:LicBase"),
    "heif-444": Entry(None, "semcodec.image.base.exact:Heif444Base"),
    "jpeg-444": Entry(None, "semcodec.image.base.exact:Jpeg444Base"),
})

#: What ITC/SEDIC use when no base is named: the first available one.
BASE_PREFERENCE = ("lic", "avif", "webp", "jpeg")


def base_class(name: str) -> type[BaseCodec]:
    return BASE_CODECS.get(name)


def get_base_codec(name: str, **options: Any) -> BaseCodec:
    """The base codec ``name`` built with ``options``."""
    return base_class(name)(name, **options)


def default_base_name() -> str:
    """First available of :data:`BASE_PREFERENCE`."""
    for name in BASE_PREFERENCE:
        if base_class(name).availability(name) is None:
            return name
    raise MissingComponentError(
        f"no base image codec available (tried {', '.join(BASE_PREFERENCE)}); install the classical codecs"
        " (pillow-avif / imagecodecs) or the learned codec weights, or --set base_profile=<name>"
    )


def scaled_base(name: str | None = None, scale: int = 1, options: dict[str, Any] | None = None) -> ScaledBase:
    """Base ``name`` (default: :func:`default_base_name`) on the image downscaled by ``scale``."""
    return ScaledBase(get_base_codec(name or default_base_name(), **dict(options or {})), scale)


__all__ = ["BASE_CODECS", "BASE_PREFERENCE", "BaseCodec", "ScaledBase", "base_class", "check_size",
           "default_base_name", "get_base_codec", "resize", "scaled_base"]
