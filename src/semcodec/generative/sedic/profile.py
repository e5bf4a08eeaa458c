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

import os
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from ...container import Stream, StreamKind, stream_cost
from ...container.params import pack_params, unpack_params
from ...errors import FormatError, RateError, SemcodecError
from ...image.base import scaled_base
from ...profiles import EncodeRequest, Profile
from ...profiles.registry import register_profile
from ...semantic.objects.records import GroundedObject
from ..components import CONTROLNET_ENV, DiffusionComponents, fixed_threads
from ..components.settings import CENTI, MAX_STEPS, centi, diffusion_available
from . import masks as mask_stream
from .orag import OragSettings, orag_decode
from .semantics import MAX_OBJECTS, analyse, pack_texts, unpack_texts

PARAMS_SCHEMA: list[tuple[str, Any]] = [
    ("version", "u"),
    ("seed", "u"),
    ("steps", "u"),
    ("strength", "u"),  # real-valued settings in 1/100 units (components.settings.centi)
    ("guidance", "u"),
    ("control_scale", "u"),
    ("eta", "u"),
    ("t_prime", "u"),
    ("global_strength", "u"),
    ("n_objects", "u"),
    ("n_base", "u"),
]


@register_profile
class SedicProfile(Profile):
    name: ClassVar[str] = "sedic"
    profile_id: ClassVar[int] = 33
    description: ClassVar[str] = (
        "SEDIC: reference + object descriptions + masks, ORAG attention-guided ControlNet diffusion"
        " (set SEMCODEC_SD_MODEL, SEMCODEC_CONTROLNET)"
    )
    uses_caption: ClassVar[bool] = True

    def __init__(self, model: str | None = None, controlnet: str | None = None, semantics: str | None = None,
                 analysis: str = "auto",
                 base_profile: str | None = None, base_scale: int = 1, base_options: dict[str, Any] | None = None,
                 steps: int = 20, strength: float | None = None, guidance: float = 4.0, control_scale: float = 1.0,
                 eta: float = 40.0, t_prime: int = 500, global_strength: float = 0.3, mask_factor: int = 8,
                 seed: int = 0, scheduler_kind: str | None = "ddim", device: str = "cpu", **parts: str | None):
        controlnet = controlnet or os.environ.get(CONTROLNET_ENV) or None
        self.components = DiffusionComponents.from_sources(
            model, with_controlnet=controlnet is not None, controlnet=controlnet, use_controlnet_env=False,
            scheduler_kind=scheduler_kind, device=device, **parts)
        self.base = scaled_base(base_profile, base_scale, base_options)
        if not 1 <= int(steps) <= MAX_STEPS:
            raise SemcodecError(f"steps must be in 1..{MAX_STEPS}")
        if int(mask_factor) not in (1, 2, 4, 8):
            raise SemcodecError("mask_factor must be one of 1, 2, 4, 8")
        self.semantics = semantics
        if analysis not in ("auto", "none"):
            raise SemcodecError("analysis must be 'auto' (VLM + Grounding DINO + SAM when configured) or 'none'")
        self.analysis = analysis
        self.mask_factor = int(mask_factor)
        default_strength = 1.0 if controlnet else 0.6
        self.settings = OragSettings(
            seed=int(seed), steps=int(steps), strength=centi(default_strength if strength is None else strength) / CENTI,
            guidance=centi(guidance) / CENTI, control_scale=centi(control_scale) / CENTI, eta=centi(eta) / CENTI,
            t_prime=int(t_prime), global_strength=centi(global_strength) / CENTI)
        if not 0 < self.settings.strength <= 1 or not 0 <= self.settings.global_strength <= 1:
            raise SemcodecError("strength must be in (0, 1] and global_strength in [0, 1]")

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
            "orag": "v1",
            # hash of the mask prior: a file coded with another prior fails clearly instead of decoding wrong
            "masks": {"method": mask_stream.METHOD, "prior": _mask_prior_hash()},
        }

    # ------------------------------------------------------------------ encode
    def _params(self, n_objects: int, n_base: int) -> bytes:
        s = self.settings
        return pack_params(PARAMS_SCHEMA, {
            "version": 1, "seed": s.seed, "steps": s.steps, "strength": centi(s.strength),
            "guidance": centi(s.guidance), "control_scale": centi(s.control_scale), "eta": centi(s.eta),
            "t_prime": s.t_prime, "global_strength": centi(s.global_strength), "n_objects": n_objects,
            "n_base": n_base,
        })

    def encode(self, request: EncodeRequest) -> list[Stream]:
        from ...text import encode_text_stream

        sem = analyse(request.image, request.caption, self.semantics, self.analysis == "auto")
        sem.objects = sem.objects[:MAX_OBJECTS]
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
        overall, names = unpack_texts(self.text_of(streams, 1, texts), n_obj)
        masks = (mask_stream.decode_masks(streams[2].payload, n_obj, width, height)
                 if n_obj else [])
        reference = self.base.decode_streams(streams[first_base : first_base + n_base], width, height)
        settings = OragSettings(
            seed=int(p["seed"]), steps=int(p["steps"]), strength=p["strength"] / CENTI, guidance=p["guidance"] / CENTI,
            control_scale=p["control_scale"] / CENTI, eta=p["eta"] / CENTI, t_prime=int(p["t_prime"]),
            global_strength=p["global_strength"] / CENTI)
        objects = [(GroundedObject(n, d, m).text, n, m) for (n, d), m in zip(names, masks, strict=True)]
        with fixed_threads():
            return orag_decode(self.components, reference, overall, objects, settings)


def _mask_prior_hash() -> str:
    from ...semantic.masks.prior import prior_hash

    return prior_hash()
