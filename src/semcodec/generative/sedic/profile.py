"""SEDIC: extremely compressed reference image + overall/object descriptions + coded masks, decoded by
ORAG (object restoration with attention guidance) on a ControlNet-conditioned latent diffusion model.

::

    encode:  image ─► base codec (optionally downscaled) ──────────────────────────► IMAGE stream(s)
             semantics (file / VLM + Grounding DINO + SAM / caption) ─┬─ texts ─► TEXT stream (1)
                                                                      └─ masks ─► MASK stream (1/f res)
             seed, steps, strength, guidance, η, T′, global strength … ───────────► PARAMS stream
    decode:  reference ─┐
             texts ─────┼─► orag_decode(): per-object guided ControlNet passes, mask fusion each step,
             masks ─────┘   then a global pass on the overall description ─► image

Stream order ``[PARAMS, TEXT, (MASK if J > 0), *base streams]``. Component fingerprints and the base
codec's config are hashed into the header via :meth:`SedicProfile.config`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ...container import Stream, StreamKind, stream_cost
from ...container.params import pack_params, unpack_params
from ...errors import FormatError, RateError, SemcodecError
from ...image.base import scaled_base
from ...profiles import EncodeRequest, Profile, option
from ...semantic.objects.records import GroundedObject
from ..components import SD_MODEL_ENV, fixed_threads
from ..components.budget import (
    check_budget,
    check_decoder_steps,
    check_encoder_steps,
    decode_budget,
    passes,
)
from ..components.options import ReferenceDiffusionOptions
from ..components.sampling import start_index
from ..components.settings import CENTI, MAX_STEPS, generative_availability
from . import masks as mask_stream
from .orag import OragSettings, orag_decode
from .semantics import MAX_OBJECTS, analyse, pack_texts, unpack_texts


@dataclass(frozen=True)
class SedicSettings(ReferenceDiffusionOptions):
    # PARAMS fields, in stream order (real values in 1/100 units)
    seed: int = option(0, "sampler seed", low=0, wire="u")
    steps: int = option(20, "DDIM steps at the decoder", low=1, high=MAX_STEPS, wire="u")
    strength: float | None = option(None, "denoising strength, (0, 1] (default 1.0 with a ControlNet, else 0.6)",
                                    low=0, high=1, wire="u", scale=CENTI)
    guidance: float = option(4.0, "classifier-free guidance scale", low=0, high=10_000, wire="u", scale=CENTI)
    control_scale: float = option(1.0, "ControlNet conditioning scale", low=0, high=10_000, wire="u", scale=CENTI)
    eta: float = option(40.0, "ORAG attention-guidance step size", low=0, high=10_000, wire="u", scale=CENTI)
    t_prime: int = option(500, "ORAG guides the steps with timestep above this", low=0, wire="u")
    global_strength: float = option(0.3, "strength of the final global pass, [0, 1]", low=0, high=1, wire="u",
                                    scale=CENTI)
    # encoder side
    semantics: str | None = option(None, "semantics JSON file (overall text, objects with mask images)")
    analysis: str = option("auto", "auto: VLM + Grounding DINO + SAM when configured; none: caption only",
                           choices=("auto", "none"))
    mask_factor: int = option(8, "masks are coded at 1/factor resolution", choices=(1, 2, 4, 8))


PARAMS_SCHEMA: list[tuple[str, Any]] = [
    ("version", "u"), *SedicSettings.wire_schema(), ("n_objects", "u"), ("n_base", "u")]


class SedicProfile(Profile):
    description: ClassVar[str] = (
        "SEDIC: reference + object descriptions + masks, ORAG attention-guided ControlNet diffusion"
        " (set SEMCODEC_SD_MODEL, SEMCODEC_CONTROLNET)"
    )
    uses_caption: ClassVar[bool] = True
    Settings = SedicSettings
    settings: SedicSettings

    def __init__(self, settings: SedicSettings | None = None, **options: Any):
        super().__init__(settings, **options)
        s = self.settings
        controlnet = s.controlnet_source()
        strength = (1.0 if controlnet else 0.6) if s.strength is None else s.strength
        s = self.settings = s.replace(controlnet=controlnet, strength=strength).as_sent()
        if not 0 < s.strength <= 1:
            raise SemcodecError("strength must be in (0, 1] and global_strength in [0, 1]")
        self.components = s.components()
        self.base = scaled_base(s.base_profile, s.base_scale, s.base_options)
        self.semantics = s.semantics
        self.analysis = s.analysis
        self.mask_factor = s.mask_factor
        self.sampler = OragSettings(
            seed=s.seed, steps=s.steps, strength=s.strength, guidance=s.guidance, control_scale=s.control_scale,
            eta=s.eta, t_prime=s.t_prime, global_strength=s.global_strength)

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
            "orag": "v1",
            # hash of the mask prior: a file coded with another prior fails clearly instead of decoding wrong
            "masks": {"method": mask_stream.METHOD, "prior": _mask_prior_hash()},
        }

    def _check_cost(self, o: OragSettings, n_objects: int, size: tuple[int, int]) -> None:
        """ORAG's work within the decode budget: every branch, the guidance passes, the global pass."""
        control = self.components.with_controlnet
        p = passes(o.guidance, control)
        run = o.steps - start_index(o.steps, o.strength)
        guided = run * n_objects * (2 if control else 1) * 2 if o.eta != 0.0 else 0  # forward + backward
        final = (o.steps - start_index(o.steps, o.global_strength)) * p if o.global_strength > 0 else 0
        check_budget(run * (1 + n_objects) * p + guided + final, decode_budget(self.settings.decode_budget),
                     "sedic", f"{run} steps × {1 + n_objects} branches × {p} passes, attention guidance,"
                     " global pass", bundle=self.components, size=size)

    # ------------------------------------------------------------------ encode
    def _params(self, n_objects: int, n_base: int) -> bytes:
        return pack_params(PARAMS_SCHEMA, {"version": 1, **self.settings.wire_values(), "n_objects": n_objects,
                                           "n_base": n_base})

    def encode(self, request: EncodeRequest) -> list[Stream]:
        from ...text import encode_text_stream

        sem = analyse(request.image, request.caption, self.semantics, self.analysis == "auto")
        sem.objects = sem.objects[:MAX_OBJECTS]
        check_encoder_steps(self.components.scheduler, self.sampler.steps, "sedic")
        self._check_cost(self.sampler, len(sem.objects), (request.width, request.height))
        own = [Stream(StreamKind.TEXT, encode_text_stream(pack_texts(sem)))]
        if sem.objects:
            own.append(Stream(StreamKind.MASK, mask_stream.encode_masks([o.mask for o in sem.objects],
                                                                        self.mask_factor)))
        cost = stream_cost(len(self._params(len(sem.objects), 1))) + sum(s.framed_size() for s in own)
        budget = None
        if request.max_bytes is not None:
            budget = request.max_bytes - cost
            if budget <= 0:
                raise RateError(f"sedic: semantics and parameters take {cost} bytes, budget is {request.max_bytes}")
        base_streams = self.base.encode_streams(request.image, quality=request.quality, max_bytes=budget)
        params = Stream(StreamKind.PARAMS, self._params(len(sem.objects), len(base_streams)))
        return [params, *own, *base_streams]

    # ------------------------------------------------------------------ decode
    def decode(self, streams: list[Stream], width: int, height: int,
               texts: Sequence[str] | None = None) -> np.ndarray:
        if len(streams) < 3 or streams[0].kind != StreamKind.PARAMS or streams[1].kind != StreamKind.TEXT:
            raise FormatError("sedic: expected PARAMS, TEXT, (MASK) and base image streams")
        p = unpack_params(PARAMS_SCHEMA, streams[0].payload)
        n_obj, n_base = int(p["n_objects"]), int(p["n_base"])
        if (p["version"] != 1 or not 1 <= p["steps"] <= MAX_STEPS or n_obj > MAX_OBJECTS or n_base < 1
                or not 0 < p["strength"] <= CENTI or p["global_strength"] > CENTI):
            raise FormatError("sedic: corrupted parameters")
        first_base = 3 if n_obj else 2
        if first_base + n_base > len(streams) or (n_obj and streams[2].kind != StreamKind.MASK):
            raise FormatError("sedic: stream layout does not match the parameters")
        w = SedicSettings.from_wire(p)
        settings = OragSettings(
            seed=int(w["seed"]), steps=int(w["steps"]), strength=w["strength"], guidance=w["guidance"],
            control_scale=w["control_scale"], eta=w["eta"], t_prime=int(w["t_prime"]),
            global_strength=w["global_strength"])
        check_decoder_steps(self.components.scheduler, settings.steps, "sedic")
        self._check_cost(settings, n_obj, (width, height))
        overall, names = unpack_texts(self.text_of(streams, 1, texts), n_obj)
        masks = (mask_stream.decode_masks(streams[2].payload, n_obj, width, height)
                 if n_obj else [])
        reference = self.base.decode_streams(streams[first_base : first_base + n_base], width, height)
        objects = [(GroundedObject(n, d, m).text, n, m) for (n, d), m in zip(names, masks, strict=True)]
        with fixed_threads():
            return orag_decode(self.components, reference, overall, objects, settings)


def _mask_prior_hash() -> str:
    from ...semantic.masks.prior import prior_hash

    return prior_hash()
