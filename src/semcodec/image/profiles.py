"""The six classical profiles: each names its codec; name, id and --quality come from the profile table
(:mod:`semcodec.profiles.table`)."""

from __future__ import annotations

from .classical import ClassicalProfile


class JpegProfile(ClassicalProfile):
    codec_name = "jpeg"
    description = "JPEG (libjpeg-turbo, 4:2:0, optimised Huffman) + optional downscale"


class WebpProfile(ClassicalProfile):
    codec_name = "webp"
    description = "WebP lossy (libwebp, method 6) + optional downscale"


class AvifProfile(ClassicalProfile):
    codec_name = "avif"
    description = "AVIF (libavif/AV1, speed 6) + optional downscale"


class JxlProfile(ClassicalProfile):
    codec_name = "jxl"
    description = "JPEG XL (libjxl, effort 7) + optional downscale"


class J2kProfile(ClassicalProfile):
    codec_name = "j2k"
    description = "JPEG 2000 (OpenJPEG, PSNR-target quality) + optional downscale"


class HeifProfile(ClassicalProfile):
    codec_name = "heif"
    description = "HEIF/HEVC (x265 via pillow-heif; BPG stand-in) + optional downscale"
