"""``ClassicalProfile``: one classical codec as a semcodec profile (one IMAGE stream).

::

    encode: image ─► [downscale f] ─► codec(q) ─► IMAGE stream      (f, q from --quality or rate control)
    decode: IMAGE stream ─► probe size (≤ container size) ─► codec ─► [upscale to W×H] ─► image

Options (``--set key=value``): ``downscale`` = a factor ≥ 1 or ``"auto"`` (default). With ``--bpp``
and ``"auto"`` the scale is chosen among :data:`~.resample.AUTO_SCALES` by the best PSNR of the
decoded result; with ``--quality`` (or no target) ``"auto"`` means no downscaling.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from ...container import Stream, StreamKind
from ...errors import FormatError, SemcodecError
from ...profiles.base import EncodeRequest, Profile
from .codecs import CODECS, CodecAdapter
from .rate import MAX_SEARCH_STEPS, Choice, choose
from .resample import AUTO_SCALES, UPSCALE_FILTER, downscale, upscale

#: Bumped when the decode-side behaviour (stream layout, upscale filter) changes; part of the config.
LAYOUT_VERSION = 1


def _parse_downscale(value: Any) -> float | None:
    """``None`` for "auto", else a factor ≥ 1."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "auto"):
        return None
    try:
        factor = float(value)
    except (TypeError, ValueError):
        raise SemcodecError(f"downscale must be a number >= 1 or 'auto', got {value!r}") from None
    if not 1 <= factor <= 256:
        raise SemcodecError(f"downscale must be between 1 and 256 (or 'auto'), got {value!r}")
    return factor


class ClassicalProfile(Profile):
    """Base of the six classical profiles; a subclass only names its codec and id."""

    codec_name: ClassVar[str]

    def __init__(self, downscale: Any = "auto", max_search_steps: int = MAX_SEARCH_STEPS, **unknown: Any):
        if unknown:
            raise SemcodecError(
                f"profile {self.name!r} has no option(s) {', '.join(sorted(unknown))}; it takes downscale"
            )
        self.downscale = _parse_downscale(downscale)
        self.max_search_steps = int(max_search_steps)
        self.last_choice: Choice | None = None

    @property
    def codec(self) -> CodecAdapter:
        return CODECS[self.codec_name]

    @classmethod
    def availability(cls) -> str | None:
        return CODECS[cls.codec_name].availability()

    def config(self) -> dict[str, Any]:
        # Only what the decoder depends on: encoder-side choices (scale, quality) stay out.
        return {"profile": self.name, "codec": self.codec_name, "upscale": UPSCALE_FILTER, "layout": LAYOUT_VERSION}

    def encode(self, request: EncodeRequest) -> list[Stream]:
        codec = self.codec
        image = request.image
        if request.max_bytes is None:
            quality = codec.default_quality if request.quality is None else request.quality
            if not codec.qmin <= quality <= codec.qmax or int(quality) != quality:
                raise SemcodecError(
                    f"--quality for {self.name} is an integer in {codec.qmin}..{codec.qmax}, got {quality}"
                )
            factor = self.downscale or 1.0
            data = codec.encode(downscale(image, factor), int(quality))
            self.last_choice = Choice(factor, int(quality), data, float("nan"))
        else:
            scales = AUTO_SCALES if self.downscale is None else (self.downscale,)
            self.last_choice = choose(codec, image, request.max_bytes, scales, self.max_search_steps)
        return [Stream(StreamKind.IMAGE, self.last_choice.data)]

    def decode(self, streams: list[Stream], width: int, height: int,
               texts: Sequence[str] | None = None) -> np.ndarray:
        images = [s for s in streams if s.kind == StreamKind.IMAGE]
        others = [s.kind.name.lower() for s in streams if s.kind not in (StreamKind.IMAGE, StreamKind.TEXT)]
        if len(images) != 1 or others:
            raise FormatError(
                f"corrupted file: profile {self.name!r} expects one image stream (and optional text),"
                f" found {len(images)} image stream(s){' and ' + ', '.join(others) if others else ''}"
            )
        codec = self.codec
        data = images[0].payload
        w, h = codec.probe_size(data)
        if not (0 < w <= width and 0 < h <= height):
            raise FormatError(
                f"corrupted file: {self.name} stream is {w}x{h}, outside the {width}x{height} header size"
            )
        small = codec.decode(data)
        if small.shape[:2] != (h, w):
            raise FormatError(f"corrupted file: {self.name} stream decoded to {small.shape[1]}x{small.shape[0]}")
        return upscale(small, width, height)
