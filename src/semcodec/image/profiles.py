"""Classical image profiles (registered on import). Ids are part of the format: never reuse one.

Profile id ranges (docs/format.md): 1-15 classical, 16-31 learned, 32-47 generative, 48-63 lossless.
"""

from __future__ import annotations

from ..profiles.registry import register_profile
from .classical import ClassicalProfile


@register_profile
class JpegProfile(ClassicalProfile):
    name, profile_id, codec_name = "jpeg", 1, "jpeg"
    description = "JPEG (libjpeg-turbo, 4:2:0, optimised Huffman) + optional downscale"


@register_profile
class WebpProfile(ClassicalProfile):
    name, profile_id, codec_name = "webp", 2, "webp"
    description = "WebP lossy (libwebp, method 6) + optional downscale"


@register_profile
class AvifProfile(ClassicalProfile):
    name, profile_id, codec_name = "avif", 3, "avif"
    description = "AVIF (libavif/AV1, speed 6) + optional downscale"


@register_profile
class JxlProfile(ClassicalProfile):
    name, profile_id, codec_name = "jxl", 4, "jxl"
    description = "JPEG XL (libjxl, effort 7) + optional downscale"


@register_profile
class J2kProfile(ClassicalProfile):
    name, profile_id, codec_name = "j2k", 5, "j2k"
    description = "JPEG 2000 (OpenJPEG, PSNR-target quality) + optional downscale"


@register_profile
class HeifProfile(ClassicalProfile):
    name, profile_id, codec_name = "heif", 6, "heif"
    description = "HEIF/HEVC (x265 via pillow-heif; BPG stand-in) + optional downscale"
