"""compress / decompress: the only place that assembles and opens containers.

``compress`` turns a bpp target into a byte budget for the profile's own streams (header and any user
caption are paid first), asks the profile to encode, then checks that the finished file really is
within the target. ``decode`` validates the container, checks the profile fingerprint and hands the
streams to the profile's decoder.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .budget import charge, decode_budget, text_work
from .container import Container, Stream, StreamKind, parse_container, stream_cost
from .errors import FormatError, ProfileMismatchError, RateError, SemcodecError
from .image_io import ImageLike, load_image, max_pixels_from_env
from .profiles import (
    DEFAULT_PROFILE,
    PROFILES,
    EncodeRequest,
    Profile,
    SentStream,
    get_profile,
    profile_for_id,
)
from .text import TEXT_CODERS, decode_text_stream, encode_text_stream


def target_bytes(bpp: float, width: int, height: int) -> int:
    """Largest file size (bytes) whose bpp = 8·size/(H·W) does not exceed ``bpp``."""
    if not bpp > 0 or not math.isfinite(bpp):
        raise SemcodecError(f"--bpp must be a positive number, got {bpp}")
    return int(math.floor(bpp * width * height / 8 + 1e-9))


def _plan(image: ImageLike, bpp: float | None = None, quality: float | None = None,
          profile: str | Profile | None = None, caption: str | None = None, max_pixels: int | None = None,
          **profile_options: Any) -> tuple[Profile, EncodeRequest, list[Stream]]:
    """The profile, its request (the byte budget left after header and user caption) and those extra streams."""
    if bpp is not None and quality is not None:
        raise SemcodecError("give either a bpp target or a quality, not both")
    arr = load_image(image, max_pixels)
    height, width = arr.shape[:2]
    prof = profile if isinstance(profile, Profile) else get_profile(profile or DEFAULT_PROFILE, **profile_options)

    extra: list[Stream] = []
    if caption is not None and not prof.uses_caption:
        extra.append(Stream(StreamKind.TEXT, encode_text_stream(caption)))

    max_bytes = None
    if bpp is not None:
        total = target_bytes(bpp, width, height)
        # Header size depends on the stream count (varint) only; 64 streams still fits one byte.
        header = len(Container(width, height, prof.profile_id, bytes(4), [Stream(StreamKind.IMAGE, b"")]).header_bytes())
        max_bytes = total - header - sum(s.framed_size() for s in extra)
        if max_bytes <= 0:
            raise RateError(
                f"target {bpp} bpp is {total} bytes for {width}x{height}; header and caption alone need"
                f" {total - max_bytes} bytes"
            )
    return prof, EncodeRequest(image=arr, max_bytes=max_bytes, quality=quality, caption=caption), extra


def compress(
    image: ImageLike,
    bpp: float | None = None,
    quality: float | None = None,
    profile: str | Profile | None = None,
    caption: str | None = None,
    max_pixels: int | None = None,
    **profile_options: Any,
) -> bytes:
    """Compress an image (path, PIL image or H×W×3 uint8 array) into one ``.smc`` byte string.

    With ``bpp`` the result is the best the profile can do with ``8·len(result)/(H·W) ≤ bpp``;
    a :class:`RateError` is raised if nothing fits.
    """
    prof, request, extra = _plan(image, bpp, quality, profile, caption, max_pixels, **profile_options)
    streams = prof.encode(request)
    container = Container(request.width, request.height, prof.profile_id, prof.fingerprint(), list(streams) + extra)
    data = container.to_bytes()
    if bpp is not None and len(data) > target_bytes(bpp, request.width, request.height):
        raise RateError(
            f"profile {prof.name!r} produced {len(data)} bytes, above the"
            f" {target_bytes(bpp, request.width, request.height)} byte target for {bpp} bpp"
            " (a profile bug: it must respect max_bytes)"
        )
    return data


def analyse(image: ImageLike, **kwargs: Any) -> list[SentStream]:
    """The streams :func:`compress` with the same arguments would write (kinds and sizes, in file order)."""
    prof, request, extra = _plan(image, **kwargs)
    return prof.analyse(request) + [SentStream(s.kind.name.lower(), s.payload) for s in extra]


@dataclass
class Decoded:
    image: np.ndarray
    texts: list[str] = field(default_factory=list)
    container: Container | None = None

    @property
    def caption(self) -> str | None:
        return self.texts[0] if self.texts else None


def open_container(data: bytes, max_pixels: int | None = None) -> Container:
    return parse_container(bytes(data), max_pixels or max_pixels_from_env())


def decode(data: bytes, max_pixels: int | None = None, work_budget: float | None = None,
           **profile_options: Any) -> Decoded:
    """Decode a ``.smc`` byte string into the image and every text stream it carries.

    ``work_budget`` bounds the decode work of this one file (see :mod:`semcodec.budget`).
    """
    container = open_container(data, max_pixels)
    with decode_budget(work_budget):
        return _decode(container, **profile_options)


def _decode(container: Container, **profile_options: Any) -> Decoded:
    prof = profile_for_id(container.profile_id, **profile_options)
    if prof.fingerprint() != container.config_hash:
        raise ProfileMismatchError(
            f"this file was written by profile {prof.name!r} with a different configuration or weights"
            f" (file {container.config_hash.hex()}, here {prof.fingerprint().hex()}); decode it with the"
            " same semcodec version and the same profile options/weights that wrote it"
        )
    text_streams = container.streams_of(StreamKind.TEXT)
    for s in text_streams:  # all charged before any is decoded: an over-budget file fails at once
        coder = TEXT_CODERS.name_for_id(s.payload[0] & 0xF) if s.payload else None
        charge(text_work(coder, len(s.payload)), f"text ({coder})")
    texts = [decode_text_stream(s.payload) for s in text_streams]
    image = prof.decode(container.streams, container.width, container.height, texts=texts)  # captions decoded once
    if image.shape != (container.height, container.width, 3) or image.dtype != np.uint8:
        raise FormatError(f"decoder returned {image.shape} {image.dtype}, expected the header size")
    return Decoded(image=image, texts=texts, container=container)


def decompress(data: bytes, **kwargs: Any) -> np.ndarray:
    """Decode a ``.smc`` byte string to an H×W×3 uint8 array."""
    return decode(data, **kwargs).image


def describe(data: bytes, max_pixels: int | None = None) -> dict[str, Any]:
    """Machine-readable summary: every stream with kind, bytes and bpp share; the bytes sum to the file."""
    container = open_container(data, max_pixels)
    pixels = container.width * container.height
    header = len(container.header_bytes())
    streams = []
    for i, s in enumerate(container.streams):
        size = s.framed_size()
        entry: dict[str, Any] = {
            "index": i,
            "kind": s.kind.name.lower(),
            "payload_bytes": len(s.payload),
            "bytes": size,
            "bpp": 8 * size / pixels,
        }
        if s.kind == StreamKind.TEXT:
            cid = s.payload[0] & 0xF if s.payload else None
            name = TEXT_CODERS.name_for_id(cid) if cid is not None else None
            entry["text_coder"] = name or (f"id {cid}" if cid is not None else "unknown")
        streams.append(entry)
    pname = PROFILES.name_for_id(container.profile_id) or f"unknown (id {container.profile_id})"
    total = len(data)
    assert header + sum(e["bytes"] for e in streams) == total
    return {
        "width": container.width,
        "height": container.height,
        "profile": pname,
        "profile_id": container.profile_id,
        "config_hash": container.config_hash.hex(),
        "file_bytes": total,
        "header_bytes": header,
        "bpp": 8 * total / pixels,
        "streams": streams,
    }


__all__ = ["Decoded", "analyse", "compress", "decode", "decompress", "describe", "open_container", "stream_cost", "target_bytes"]
