"""ITC (Murai et al.): a learned-codec base image + an LM-coded caption, restored by text-conditioned
diffusion at the decoder.

::

    encode:  image ─► base codec (lic / avif, optionally downscaled) ───────────► IMAGE stream(s)
             caption (user / LMM captioner) ─► text coder (text_coder=) ──────► TEXT stream
             seed, steps, strength, guidance, mode, control scale ─► pack_params ► PARAMS stream
    decode:  base streams ─► base image ─┐
             TEXT ─► caption ────────────┼─► restore(): img2img from the base latent, or ControlNet on
             PARAMS ─► sampler settings ─┘   the base image, DDIM, fixed seed, CFG on the caption ─► image

Stream order is ``[PARAMS, TEXT, *base streams]``; PARAMS records how many base streams follow.
The diffusion weights are never sent: their fingerprints (``DiffusionComponents.identities``) and the
base codec's config are in :meth:`ItcProfile.config`, hashed into the file header, so decoding with
other weights fails with :class:`ProfileMismatchError` instead of producing a different picture.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ...container import Stream, StreamKind, stream_cost
from ...container.params import pack_params, unpack_params
from ...errors import FormatError, MissingComponentError, RateError, SemcodecError
from ...image.base import scaled_base
from ...profiles import EncodeRequest, Profile, option
from ...text.base import AUTO_TEXT_CODER, encode_text_stream, resolve_text_coder, text_coder_choices
from ..components import SD_MODEL_ENV, fixed_threads
from ..components.budget import (
    check_budget,
    check_decoder_steps,
    check_encoder_steps,
    decode_budget,
    passes,
)
from ..components.options import ReferenceDiffusionOptions
from ..components.sampling import SamplerSettings, restore, start_index
from ..components.settings import CENTI, MAX_STEPS, generative_availability
from .caption import caption_for

MODES = ("img2img", "controlnet")


@dataclass(frozen=True)
class ItcSettings(ReferenceDiffusionOptions):
    # PARAMS fields, in stream order (the real-valued ones travel in 1/100 units)
    mode: str | None = option(None, "img2img from the base latent, or controlnet on the base image (default:"
                              " controlnet when one is set)", choices=MODES, wire="u")
    seed: int = option(0, "sampler seed", low=0, wire="u")
    steps: int = option(20, "DDIM steps at the decoder", low=1, high=MAX_STEPS, wire="u")
    strength: float | None = option(None, "img2img strength, (0, 1] (default 0.5; 1.0 with controlnet)",
                                    low=0, high=1, wire="u", scale=CENTI)
    guidance: float = option(4.0, "classifier-free guidance scale on the caption", low=0, high=10_000, wire="u",
                             scale=CENTI)
    control_scale: float = option(1.0, "ControlNet conditioning scale", low=0, high=10_000, wire="u", scale=CENTI)
    # encoder side
    captioner: str = option("auto", "auto: the configured VLM when no caption is given; none: never",
                            choices=("auto", "none"))
    text_coder: str = option(AUTO_TEXT_CODER, "caption coder: auto = the best available; hf-rank = the paper's"
                             " LM rank coding + gzip with the LM in SEMCODEC_TEXT_LM (lm-rank: with our caption LM);"
                             " the TEXT header records it, so decoding needs no option", choices=text_coder_choices())


PARAMS_SCHEMA: list[tuple[str, Any]] = [("version", "u"), *ItcSettings.wire_schema(), ("n_base", "u")]



class ItcProfile(Profile):
    description: ClassVar[str] = (
        "ITC: base codec + coded caption, caption-conditioned diffusion restoration (SD; set SEMCODEC_SD_MODEL)"
    )
    uses_caption: ClassVar[bool] = True
    Settings = ItcSettings
    settings: ItcSettings

    def __init__(self, settings: ItcSettings | None = None, **options: Any):
        super().__init__(settings, **options)
        s = self.settings
        controlnet = s.controlnet_source()
        mode = s.mode or ("controlnet" if controlnet else "img2img")
        if mode == "controlnet" and not controlnet:
            raise MissingComponentError("itc mode=controlnet needs a ControlNet: set SEMCODEC_CONTROLNET or --set controlnet=...")
        strength = (1.0 if mode == "controlnet" else 0.5) if s.strength is None else s.strength
        s = self.settings = s.replace(controlnet=controlnet, mode=mode, strength=strength).as_sent()
        if not 0 < s.strength <= 1:
            raise SemcodecError("strength must be in (0, 1]")
        self.mode = mode
        self.components = s.components()
        self.base = scaled_base(s.base_profile, s.base_scale, s.base_options)
        self.sampler = SamplerSettings(seed=s.seed, steps=s.steps, strength=s.strength, guidance=s.guidance,
                                       control_scale=s.control_scale)
        self.captioner = s.captioner

    @classmethod
    def availability(cls) -> str | None:
        return cls.availability_for({})

    @classmethod
    def availability_for(cls, options: dict[str, Any]) -> str | None:
        return generative_availability(options, SD_MODEL_ENV)

    def config(self) -> dict[str, Any]:
        return {
            **super().config(),
            "format": 1,
            "schema": [f for f, _ in PARAMS_SCHEMA],
            "components": self.components.identities,
            "base": self.base.config(),
        }

    def _check_cost(self, sampler: SamplerSettings, control: bool, size: tuple[int, int]) -> None:
        """Decoder work of these settings and this image size within the decode budgets (both sides)."""
        run = sampler.steps - start_index(sampler.steps, sampler.strength)
        check_budget(run * passes(sampler.guidance, control), decode_budget(self.settings.decode_budget), "itc",
                     f"{run} steps × {passes(sampler.guidance, control)} passes", bundle=self.components, size=size)

    # ------------------------------------------------------------------ encode
    def _params(self, n_base: int) -> bytes:
        return pack_params(PARAMS_SCHEMA, {"version": 1, **self.settings.wire_values(), "n_base": n_base})

    def encode(self, request: EncodeRequest) -> list[Stream]:
        check_encoder_steps(self.components.scheduler, self.sampler.steps, "itc")
        self._check_cost(self.sampler, self.mode == "controlnet", (request.width, request.height))
        coder = resolve_text_coder(self.settings.text_coder)  # before captioning: a missing LM fails fast
        caption = caption_for(request, self.captioner)
        text = Stream(StreamKind.TEXT, encode_text_stream(caption, coder))
        # PARAMS size depends on n_base only through one varint byte (< 128 streams).
        own = stream_cost(len(self._params(1))) + text.framed_size()
        budget = None
        if request.max_bytes is not None:
            budget = request.max_bytes - own
            if budget <= 0:
                raise RateError(f"itc: caption and parameters alone take {own} bytes, budget is {request.max_bytes}")
        base_streams = self.base.encode_streams(request.image, quality=request.quality, max_bytes=budget)
        return [Stream(StreamKind.PARAMS, self._params(len(base_streams))), text, *base_streams]

    # ------------------------------------------------------------------ decode
    def decode(self, streams: list[Stream], width: int, height: int,
               texts: Sequence[str] | None = None) -> np.ndarray:
        if len(streams) < 3 or streams[0].kind != StreamKind.PARAMS or streams[1].kind != StreamKind.TEXT:
            raise FormatError("itc: expected PARAMS, TEXT and base image streams")
        p = unpack_params(PARAMS_SCHEMA, streams[0].payload)
        if (p["version"] != 1 or p["mode"] >= len(MODES) or not 1 <= p["steps"] <= MAX_STEPS
                or not 0 < p["strength"] <= CENTI):
            raise FormatError("itc: corrupted parameters")
        n_base = int(p["n_base"])
        if n_base < 1 or 2 + n_base > len(streams):
            raise FormatError("itc: corrupted parameters (base stream count)")
        w = ItcSettings.from_wire(p)
        mode = w["mode"]
        if mode == "controlnet" and not self.components.with_controlnet:
            raise MissingComponentError("this itc file needs a ControlNet: set SEMCODEC_CONTROLNET or --set controlnet=...")
        settings = SamplerSettings(seed=int(w["seed"]), steps=int(w["steps"]), strength=w["strength"],
                                   guidance=w["guidance"], control_scale=w["control_scale"])
        check_decoder_steps(self.components.scheduler, settings.steps, "itc")
        self._check_cost(settings, mode == "controlnet", (width, height))
        caption = self.text_of(streams, 1, texts)
        base = self.base.decode_streams(streams[2 : 2 + n_base], width, height)
        with fixed_threads():
            return restore(self.components, base, caption, settings,
                           control_image=base if mode == "controlnet" else None)
