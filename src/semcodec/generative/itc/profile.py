"""ITC (Murai et al.): a learned-codec base image + an LM-coded caption, restored by text-conditioned
diffusion at the decoder.

::

    encode:  image ─► base codec (lic / avif, optionally downscaled) ───────────► IMAGE stream(s)
             caption (user / LMM captioner) ─► semcodec.text best coder ──────► TEXT stream
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

import os
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from ...container import Stream, StreamKind, stream_cost
from ...container.params import pack_params, unpack_params
from ...errors import FormatError, MissingComponentError, RateError, SemcodecError
from ...image.base import scaled_base
from ...profiles import EncodeRequest, Profile
from ...profiles.registry import register_profile
from ..components import CONTROLNET_ENV, DiffusionComponents, fixed_threads
from ..components.sampling import SamplerSettings, restore
from ..components.settings import CENTI, MAX_STEPS, centi, diffusion_available
from .caption import caption_for

PARAMS_SCHEMA: list[tuple[str, Any]] = [
    ("version", "u"),
    ("mode", "u"),  # 0 = img2img from the base latent, 1 = ControlNet on the base image
    ("seed", "u"),
    ("steps", "u"),
    ("strength", "u"),  # the real-valued settings travel as integers in 1/100 units (one or two bytes each)
    ("guidance", "u"),
    ("control_scale", "u"),
    ("n_base", "u"),
]
MODES = ("img2img", "controlnet")


@register_profile
class ItcProfile(Profile):
    name: ClassVar[str] = "itc"
    profile_id: ClassVar[int] = 32
    description: ClassVar[str] = (
        "ITC: base codec + coded caption, caption-conditioned diffusion restoration (SD; set SEMCODEC_SD_MODEL)"
    )
    uses_caption: ClassVar[bool] = True

    def __init__(self, model: str | None = None, controlnet: str | None = None, mode: str | None = None,
                 base_profile: str | None = None, base_scale: int = 1, base_options: dict[str, Any] | None = None,
                 steps: int = 20, strength: float | None = None, guidance: float = 4.0, control_scale: float = 1.0,
                 seed: int = 0, captioner: str = "auto", scheduler_kind: str | None = "ddim",
                 device: str = "cpu", **parts: str | None):
        controlnet = controlnet or os.environ.get(CONTROLNET_ENV) or None
        mode = mode or ("controlnet" if controlnet else "img2img")
        if mode not in MODES:
            raise SemcodecError(f"itc mode must be one of {MODES}, got {mode!r}")
        if mode == "controlnet" and not controlnet:
            raise MissingComponentError("itc mode=controlnet needs a ControlNet: set SEMCODEC_CONTROLNET or --set controlnet=...")
        self.mode = mode
        self.components = DiffusionComponents.from_sources(
            model, with_controlnet=controlnet is not None, controlnet=controlnet,
            use_controlnet_env=False, scheduler_kind=scheduler_kind, device=device, **parts)
        self.base = scaled_base(base_profile, base_scale, base_options)
        if not 1 <= int(steps) <= MAX_STEPS:
            raise SemcodecError(f"steps must be in 1..{MAX_STEPS}")
        default_strength = 1.0 if mode == "controlnet" else 0.5
        self.settings = SamplerSettings(
            seed=int(seed), steps=int(steps),
            strength=centi(default_strength if strength is None else strength) / CENTI,
            guidance=centi(guidance) / CENTI, control_scale=centi(control_scale) / CENTI)
        if not 0 < self.settings.strength <= 1:
            raise SemcodecError("strength must be in (0, 1]")
        if captioner not in ("auto", "none"):
            raise SemcodecError("captioner must be 'auto' (the configured VLM, if any) or 'none'")
        self.captioner = captioner

    @classmethod
    def availability(cls) -> str | None:
        return diffusion_available()

    def config(self) -> dict[str, Any]:
        return {
            "profile": self.name,
            "format": 1,
            "schema": [f for f, _ in PARAMS_SCHEMA],
            "components": self.components.identities,
            "base": self.base.config(),
        }

    # ------------------------------------------------------------------ encode
    def _params(self, n_base: int) -> bytes:
        s = self.settings
        return pack_params(PARAMS_SCHEMA, {
            "version": 1, "mode": MODES.index(self.mode), "seed": s.seed, "steps": s.steps,
            "strength": centi(s.strength), "guidance": centi(s.guidance), "control_scale": centi(s.control_scale),
            "n_base": n_base,
        })

    def encode(self, request: EncodeRequest) -> list[Stream]:
        from ...text import encode_text_stream

        caption = caption_for(request, self.captioner)
        text = Stream(StreamKind.TEXT, encode_text_stream(caption))
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
        mode = MODES[int(p["mode"])]
        if mode == "controlnet" and not self.components.with_controlnet:
            raise MissingComponentError("this itc file needs a ControlNet: set SEMCODEC_CONTROLNET or --set controlnet=...")
        caption = self.text_of(streams, 1, texts)
        base = self.base.decode_streams(streams[2 : 2 + n_base], width, height)
        settings = SamplerSettings(seed=int(p["seed"]), steps=int(p["steps"]), strength=p["strength"] / CENTI,
                                   guidance=p["guidance"] / CENTI, control_scale=p["control_scale"] / CENTI)
        with fixed_threads():
            return restore(self.components, base, caption, settings,
                           control_image=base if mode == "controlnet" else None)
