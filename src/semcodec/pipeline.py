"""compress / decompress: the only place that assembles and opens containers.

``compress`` turns a bpp target into a byte budget for the profile's own streams (header and any user
caption are paid first), asks the profile to encode, then checks that the finished file really is
within the target. ``decode`` validates the container, checks the profile fingerprint and hands the
streams to the profile's decoder.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from .budget import charge, decode_budget, text_work
from .container import Container, Stream, StreamKind, parse_container, stream_cost
from .errors import FormatError, ProfileMismatchError, RateError, SemcodecError
from .image_io import ImageLike, atomic_write_bytes, encode_png, load_image, max_pixels_from_env, save_image
from .paths import hub_offline_by_default
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

#: A ``.smc`` file as the API takes it: its bytes, a path, or a binary file object open for reading.
SmcLike = bytes | bytearray | memoryview | str | os.PathLike | BinaryIO
#: Where an output may go: a path (written atomically) or a binary file object open for writing.
Output = str | os.PathLike | BinaryIO


def read_smc(data: SmcLike) -> bytes:
    """The bytes of a ``.smc`` given as bytes, a path or a binary file object."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    if isinstance(data, (str, os.PathLike)):
        path = Path(data)
        if path.is_dir():
            raise SemcodecError(f"{path} is a directory, not a .smc file")
        if not path.is_file():
            raise SemcodecError(f"no such .smc file: {path}")
        return path.read_bytes()
    if hasattr(data, "read"):
        out = data.read()
        if not isinstance(out, (bytes, bytearray)):
            raise SemcodecError("the file object must be opened in binary mode ('rb')")
        return bytes(out)
    raise SemcodecError(f"expected .smc bytes, a path or a binary file object, got {type(data).__name__}")


def write_output(output: Output, data: bytes) -> None:
    """Write ``data`` to a path (atomically) or to a binary file object."""
    if isinstance(output, (str, os.PathLike)):
        atomic_write_bytes(output, data)
    else:
        output.write(data)


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
    output: Output | None = None,
    **profile_options: Any,
) -> bytes:
    """Compress an image into one ``.smc`` byte string (also written to ``output`` when given).

    ``image``: a path, image-file bytes, a binary file object, a PIL image, an H×W×3 uint8 array (see
    :func:`semcodec.image_io.load_image` for the other layouts) or a C×H×W torch tensor in [0, 1].
    With ``bpp`` the result is the best the profile can do with ``8·len(result)/(H·W) ≤ bpp``;
    a :class:`RateError` is raised if nothing fits.
    """
    prof, request, extra = _plan(image, bpp, quality, profile, caption, max_pixels, **profile_options)
    fingerprint = prof.fingerprint()  # first: missing weights fail now, not after a slow analysis
    streams = prof.encode(request)
    container = Container(request.width, request.height, prof.profile_id, fingerprint, list(streams) + extra)
    data = container.to_bytes()
    if bpp is not None and len(data) > target_bytes(bpp, request.width, request.height):
        raise RateError(
            f"profile {prof.name!r} produced {len(data)} bytes, above the"
            f" {target_bytes(bpp, request.width, request.height)} byte target for {bpp} bpp"
            " (a profile bug: it must respect max_bytes)"
        )
    if output is not None:
        write_output(output, data)
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


hub_offline_by_default()  # compress/decompress run offline like eval and compress-dir ($SEMCODEC_ALLOW_DOWNLOADS=1)


def open_container(data: SmcLike, max_pixels: int | None = None) -> Container:
    return parse_container(read_smc(data), max_pixels or max_pixels_from_env())


def decode(data: SmcLike, max_pixels: int | None = None, output: Output | None = None,
           work_budget: float | None = None, **profile_options: Any) -> Decoded:
    """Decode a ``.smc`` (bytes, path or binary file object) into the image and every text stream it
    carries; with ``output`` the image is also saved there (PNG unless a path's suffix says otherwise).
    ``work_budget`` bounds the decode work of this one file (see :mod:`semcodec.budget`)."""
    container = open_container(data, max_pixels)
    with decode_budget(work_budget):
        decoded = decode_container(container, profile_for_id(container.profile_id, **profile_options))
    if output is not None:
        save_output(output, decoded.image)
    return decoded


def save_output(output: Output, image: np.ndarray) -> None:
    if isinstance(output, (str, os.PathLike)):
        save_image(output, image)
    else:
        output.write(encode_png(image))


def decode_container(container: Container, prof: Profile) -> Decoded:
    """Decode a parsed container with ``prof`` (the profile its header names, already built)."""
    if prof.fingerprint() != container.config_hash:
        prof = next((e for e in prof.earlier_releases() if e.fingerprint() == container.config_hash), prof)
    if prof.fingerprint() != container.config_hash:
        models = prof.config().get("components")
        here = ("; the models here are " + ", ".join(f"{k} {v}" for k, v in sorted(models.items()))
                if isinstance(models, dict) and models else "")
        raise ProfileMismatchError(
            f"this file was written by profile {prof.name!r} with a different configuration or weights"
            f" (file {container.config_hash.hex()}, here {prof.fingerprint().hex()}); decode it with the"
            f" same semcodec version and the same profile options/weights that wrote it{here}"
        )
    text_streams = container.streams_of(StreamKind.TEXT)
    for s in text_streams:  # all charged before any is decoded: an over-budget file fails at once
        coder = TEXT_CODERS.name_for_id(s.payload[0] & 0xF) if s.payload else None
        charge(text_work(coder, len(s.payload)), f"text ({coder})")
    try:
        texts = [decode_text_stream(s.payload) for s in text_streams]  # decoded once
        image = prof.decode(container.streams, container.width, container.height, texts=texts)
    except SemcodecError:  # FormatError, MissingComponentError, ProfileMismatchError, ... say what to do
        raise
    except Exception as e:  # anything else a decoder raises on a file is a bad file, never a traceback
        raise FormatError(f"profile {prof.name!r} could not decode this file: {type(e).__name__}: {e}") from e
    if image.shape != (container.height, container.width, 3) or image.dtype != np.uint8:
        raise FormatError(f"decoder returned {image.shape} {image.dtype}, expected the header size")
    return Decoded(image=image, texts=texts, container=container)


def decompress(data: SmcLike, **kwargs: Any) -> np.ndarray:
    """Decode a ``.smc`` (bytes, path or binary file object) to an H×W×3 uint8 array."""
    return decode(data, **kwargs).image


def describe(data: SmcLike, max_pixels: int | None = None) -> dict[str, Any]:
    """Machine-readable summary: every stream with kind, bytes and bpp share; the bytes sum to the file."""
    data = read_smc(data)
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


class Codec:
    """A profile built once (models loaded once) and used for many images::

        codec = semcodec.Codec("lic", quality=0.5)
        data = codec.compress("a.png")                 # the default rate given here, or bpp=/quality=
        image = codec.decompress(data)

    ``bpp`` / ``quality`` given here are the defaults of :meth:`compress`; ``options`` are the
    profile's ``--set`` options. Instances share the per-process profile cache of
    :func:`semcodec.profiles.get_profile`, so two handles with the same options share one model.
    """

    def __init__(self, profile: str | Profile | None = None, *, bpp: float | None = None,
                 quality: float | None = None, max_pixels: int | None = None, **options: Any) -> None:
        if bpp is not None and quality is not None:
            raise SemcodecError("give either a bpp target or a quality, not both")
        self.profile = profile if isinstance(profile, Profile) else get_profile(profile or DEFAULT_PROFILE, **options)
        self.bpp, self.quality, self.max_pixels = bpp, quality, max_pixels

    def __repr__(self) -> str:
        rate = f"bpp={self.bpp}" if self.bpp is not None else f"quality={self.quality}"
        return f"Codec({self.profile.name!r}, {rate})"

    def _rate(self, bpp: float | None, quality: float | None) -> tuple[float | None, float | None]:
        if bpp is None and quality is None:
            return self.bpp, self.quality
        return bpp, quality

    def compress(self, image: ImageLike, bpp: float | None = None, quality: float | None = None,
                 caption: str | None = None, output: Output | None = None) -> bytes:
        """One ``.smc`` byte string (see :func:`compress`); ``bpp``/``quality`` override the handle's."""
        bpp, quality = self._rate(bpp, quality)
        return compress(image, bpp=bpp, quality=quality, profile=self.profile, caption=caption,
                        max_pixels=self.max_pixels, output=output)

    def analyse(self, image: ImageLike, bpp: float | None = None, quality: float | None = None,
                caption: str | None = None) -> list[SentStream]:
        bpp, quality = self._rate(bpp, quality)
        return analyse(image, bpp=bpp, quality=quality, profile=self.profile, caption=caption,
                       max_pixels=self.max_pixels)

    def decode(self, data: SmcLike, output: Output | None = None) -> Decoded:
        """Decode a file written by this profile with this handle's models; a file of another profile
        is decoded with that profile's defaults."""
        container = open_container(data, self.max_pixels)
        same = container.profile_id == self.profile.profile_id
        decoded = decode_container(container, self.profile if same else profile_for_id(container.profile_id))
        if output is not None:
            save_output(output, decoded.image)
        return decoded

    def decompress(self, data: SmcLike, output: Output | None = None) -> np.ndarray:
        return self.decode(data, output).image


__all__ = ["Codec", "Decoded", "analyse", "compress", "decode", "decompress", "describe", "open_container", "read_smc",
           "stream_cost", "target_bytes"]
