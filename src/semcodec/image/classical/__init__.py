"""Classical base codecs (JPEG, WebP, AVIF, JPEG XL, JPEG 2000, HEIF/HEVC) as semcodec profiles.

``codecs``   one adapter per codec: native quality, encode/decode, header size probe
``resample`` downscale before / upscale after the codec (ultra-low-bitrate operation)
``rate``     quality × scale search for a byte budget
``rate_model`` the size-versus-quality curves that aim that search
``profile``  the ``ClassicalProfile`` base class tying them together
"""

from .codecs import CODECS, CodecAdapter
from .profile import ClassicalProfile
from .rate import Choice, choose, fit_quality, payload_budget
from .resample import AUTO_SCALES, downscale, upscale

__all__ = [
    "AUTO_SCALES",
    "CODECS",
    "Choice",
    "ClassicalProfile",
    "CodecAdapter",
    "choose",
    "downscale",
    "fit_quality",
    "payload_budget",
    "upscale",
]
