"""The ``lossless`` profile (id 48): lossy base image + learned residual coding (Du et al.).

::

    x ──► base codec (HEIF 4:4:4, quality q) ──► IMAGE stream ──► x_l
    x, x_l ──► ResidualLM + constriction ──► RESIDUAL stream        (x = x_l + r, exactly)

``--quality`` fixes the base quality; without it the encoder searches the base per image
(:mod:`.search`): every ``base_candidates`` entry (codec:quality) is ranked by its estimated bits
(base bytes + teacher-forced residual on tiles, :func:`.estimate.total_bits`), the best
``search_finalists`` get a whole-image estimate with their fitted adapter and only the best of them
is coded (option
``choose_quality=False`` uses the model's ``default_quality`` instead). The decoder reads codec and
quality from the IMAGE stream and never searches. Options
``base_codec`` (heif | jpeg | lic), ``weights`` (a folder with config.json + model.safetensors;
default ``$SEMCODEC_LOSSLESS_WEIGHTS`` or the packaged ``weights/lossless``), ``adapt_steps``
(encoder-side fitting of the per-image head adapter, :mod:`.adapter`; 0 turns it off) and
``adapter_rank`` (its low-rank form, tried after the bias form; 0 never tries it); the decoder needs
no option, the stream says which adapter it carries.
The profile is lossless, so a bpp target below what it needs raises RateError.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..budget import charge
from ..container import Stream, StreamKind
from ..errors import FormatError, RateError, SemcodecError
from ..paths import PACKAGE_WEIGHTS
from ..profiles.base import EncodeRequest, Profile
from ..profiles.settings import Settings, option
from .adapter import MAX_RANK
from .base_codec import BASES, decode_base, encode_base
from .coder import DEFAULT_ADAPT_STEPS, DEFAULT_ADAPTER_RANK, decode_residual, encode_residual
from .model import ResidualLM, load_model
from .search import DEFAULT_CANDIDATES, parse_candidates, search_base

DEFAULT_WEIGHTS = PACKAGE_WEIGHTS / "lossless"
#: weights of earlier releases (one folder each, config.json + model.safetensors), kept so that files
#: they wrote still decode (:meth:`LosslessProfile.earlier_releases`)
EARLIER_WEIGHTS = PACKAGE_WEIGHTS / "lossless_earlier"
#: decode-work units (≈ ms) per pixel of the residual coder: measured 46 µs per pixel on a loaded core
#: (a 192×128 crop of kodim01, 3-layer weights) and 48 µs on whole Kodak images with the 6-layer weights of
#: session 8 (BENCHMARKS.md), charged at 60 µs, so a Kodak image costs ~24,000 of the default 120,000
DECODE_UNITS_PER_PIXEL = 0.06


def default_weights() -> Path:
    """``$SEMCODEC_LOSSLESS_WEIGHTS`` if set, else the packaged weights."""
    env = os.environ.get("SEMCODEC_LOSSLESS_WEIGHTS")
    return Path(env) if env else DEFAULT_WEIGHTS


@functools.lru_cache(maxsize=4)
def _cached_model(folder: str) -> ResidualLM:
    return load_model(folder)


@functools.lru_cache(maxsize=4)
def _weights_hash(folder: str) -> str:
    return hashlib.sha256((Path(folder) / "model.safetensors").read_bytes()).hexdigest()[:16]


@dataclass(frozen=True)
class LosslessSettings(Settings):
    weights: str | None = option(None, "model folder (default $SEMCODEC_LOSSLESS_WEIGHTS or the shipped weights)")
    base_codec: str | None = option(None, "lossy base codec (default: the one the model was trained with)",
                                    choices=tuple(BASES.names()))
    base_quality: int | None = option(None, "base quality when --quality is not given", low=0, high=100)
    adapt_steps: int = option(DEFAULT_ADAPT_STEPS, "encoder-side fitting steps of the per-image head adapter"
                              " (0: off)", low=0)
    adapter_rank: int = option(DEFAULT_ADAPTER_RANK, "rank of the adapter's low-rank form, tried after the bias form"
                               " and kept when smaller in total (0: never)", low=0, high=MAX_RANK)
    choose_quality: bool = option(True, "search the base per image (else the model's default quality)")
    base_candidates: str = option(DEFAULT_CANDIDATES, "bases the per-image search tries: qualities and/or"
                                  " codec:quality, comma-separated (a bare quality uses base_codec)")
    search_finalists: int = option(2, "how many of the best tile-estimated candidates get a whole-image estimate"
                                   " with their fitted adapter; only the best is coded (1: trust the tile"
                                   " estimate)", low=1, high=16)


class LosslessProfile(Profile):
    description = "lossless: HEIF base + learned residual transformer/GMM coder (Du et al.)"
    Settings = LosslessSettings
    settings: LosslessSettings

    def __init__(self, settings: LosslessSettings | None = None, **options: Any) -> None:
        super().__init__(settings, **options)
        s = self.settings
        self.weights = str(Path(s.weights) if s.weights else default_weights())
        self.model = _cached_model(self.weights)
        self.base_codec = s.base_codec or self.model.cfg.base_codec
        BASES.entry(self.base_codec)  # a model trained with an unknown base fails here
        self.base_quality = s.base_quality
        self.adapt_steps = s.adapt_steps
        self.adapter_rank = s.adapter_rank
        self.choose_quality = s.choose_quality
        self.search_finalists = s.search_finalists
        try:
            self.candidates = parse_candidates(s.base_candidates, self.base_codec)
        except (ValueError, SemcodecError) as e:
            raise SemcodecError(f"lossless: option base_candidates: {e}") from None

    @classmethod
    def availability(cls) -> str | None:
        w = default_weights()
        if not (w / "model.safetensors").is_file():
            return (f"weights missing in {w}; train them with `semcodec train-lossless`"
                    " or set SEMCODEC_LOSSLESS_WEIGHTS")
        return None

    def config(self) -> dict[str, Any]:
        return {"profile": self.name, "weights": _weights_hash(self.weights), "model": self.model.cfg.to_json()}

    def encode(self, request: EncodeRequest) -> list[Stream]:
        q = int(self.quality.check(request.quality, self.name)) if request.quality is not None else self.base_quality
        if q is None and self.choose_quality:
            streams = self.search(request.image)
        else:
            q = self.model.cfg.default_quality if q is None else q
            base, xl = encode_base(request.image, self.base_codec, q)
            residual = encode_residual(self.model, request.image, xl, q, self.adapt_steps, self.adapter_rank)
            streams = [Stream(StreamKind.IMAGE, base), Stream(StreamKind.RESIDUAL, residual)]
        size = sum(s.framed_size() for s in streams)
        if request.max_bytes is not None and size > request.max_bytes:
            raise RateError(f"lossless coding needs {size} bytes, above the budget of {request.max_bytes}")
        return streams

    def search(self, x: np.ndarray) -> list[Stream]:
        """The best candidate base, coded (:func:`.search.search_base`)."""
        streams, _ = search_base(self.model, x, self.candidates, self.search_finalists, self.adapt_steps,
                                 self.adapter_rank)
        return streams

    def earlier_releases(self) -> Iterator[LosslessProfile]:
        """The packaged weights of earlier releases, when this profile uses the packaged default ones."""
        if self.settings.weights or os.environ.get("SEMCODEC_LOSSLESS_WEIGHTS") or not EARLIER_WEIGHTS.is_dir():
            return
        for folder in sorted(EARLIER_WEIGHTS.iterdir()):
            if (folder / "model.safetensors").is_file():
                yield LosslessProfile(replace(self.settings, weights=str(folder)))

    def decode(self, streams: list[Stream], width: int, height: int,
               texts: Sequence[str] | None = None) -> np.ndarray:
        base = [s for s in streams if s.kind == StreamKind.IMAGE]
        res = [s for s in streams if s.kind == StreamKind.RESIDUAL]
        if len(base) != 1 or len(res) != 1:
            raise FormatError("lossless: expected one IMAGE and one RESIDUAL stream")
        charge(width * height * DECODE_UNITS_PER_PIXEL, "lossless residual")  # before any pixel is decoded
        xl, _, quality = decode_base(base[0].payload, width, height)
        return decode_residual(self.model, xl, quality, res[0].payload)
