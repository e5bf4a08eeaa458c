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
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ...container import Stream, StreamKind
from ...errors import FormatError
from ...profiles.base import EncodeRequest, Profile
from ...profiles.settings import Settings, option
from .codecs import CODECS, CodecAdapter
from .rate import MAX_SEARCH_STEPS, Choice, choose
from .resample import AUTO_SCALES, UPSCALE_FILTER, downscale, upscale

#: Bumped when the decode-side behaviour (stream layout, upscale filter) changes; part of the config.
LAYOUT_VERSION = 1


@dataclass(frozen=True)
class ClassicalSettings(Settings):
    downscale: float | None = option(
        None, "downscale factor before coding (auto: chosen by rate control with --bpp, none with --quality)",
        low=1, high=256)
    max_search_steps: int = option(MAX_SEARCH_STEPS, "rate-control codings per scale", low=1)


class ClassicalProfile(Profile):
    """Base of the six classical profiles; a subclass only names its codec and id."""

    codec_name: ClassVar[str]
    Settings = ClassicalSettings
    settings: ClassicalSettings

    def __init__(self, settings: ClassicalSettings | None = None, **options: Any):
        super().__init__(settings, **options)
        self.downscale = self.settings.downscale
        self.max_search_steps = self.settings.max_search_steps
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
            quality = codec.default_quality if request.quality is None else self.quality.check(request.quality, self.name)
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
