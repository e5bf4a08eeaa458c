"""SEDIC: extremely compressed reference image + overall/object descriptions + coded masks, decoded by
ORAG (object restoration with attention guidance) on a ControlNet-conditioned latent diffusion model.

::

    encode:  image ─► base codec (optionally downscaled) ──────────────────────────► IMAGE stream(s)
             semantics (file / VLM + Grounding DINO + SAM / caption) ─┬─ texts ─► TEXT stream (1)
                                                                      └─ masks ─► MASK stream (1/f res)
             seed, steps, strength, guidance, η, T′, global strength … ───────────► PARAMS stream
    decode:  reference ─┐
             texts ─────┼─► orag_decode(): orag=sequential (SEDIC's Algorithm 1: stage 0 restores the
             masks ─────┘   reference, one guided, mask-fused stage per object, a final stage) or
                            orag=parallel (one shared trajectory, then a global pass) ─► image

Stream order ``[PARAMS, TEXT, (MASK if J > 0), *base streams]``. Component fingerprints and the base
codec's config are hashed into the header via :meth:`SedicProfile.config`.

PARAMS versions: 1 = the fields up to ``global_strength`` (files written before ``orag`` existed: they
decode with ``orag=parallel`` and guidance on every cross-attention layer, bit-identically with the old
decoder); 2 = adds ``orag``, ``object_steps`` and ``attn_place``. The config hash names the version-1
field list, so both versions are read by the same profile and old files keep their fingerprint. The
text coder travels in the TEXT stream's own header.
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
from ...text.base import TEXT_CODERS
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
from .orag import ATTN_PLACES, ORAG_MODES, OragSettings, orag_decode
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
    global_strength: float = option(0.3, "orag=parallel: strength of the final global pass, [0, 1]", low=0, high=1,
                                    wire="u", scale=CENTI)
    # PARAMS version 2
    orag: str = option("sequential", "ORAG schedule: sequential (SEDIC's Algorithm 1: a stage per object, each a"
                       " full diffusion) or parallel (one shared trajectory; files without this field)",
                       choices=ORAG_MODES, wire="u")
    object_steps: int = option(10, "orag=sequential: DDIM steps of each object stage", low=1, high=MAX_STEPS,
                               wire="u")
    attn_place: str = option("up-mid", "cross-attention read by the guidance: up-mid (the middle up block with"
                             " cross-attention, where SEDIC tuned eta) or all layers (files without this field)",
                             choices=ATTN_PLACES, wire="u")
    # encoder side
    semantics: str | None = option(None, "semantics JSON file (overall text, objects with mask images)")
    analysis: str = option("auto", "auto: VLM + Grounding DINO + SAM when configured; none: caption only",
                           choices=("auto", "none"))
    mask_factor: int = option(8, "masks are coded at 1/factor resolution", choices=(1, 2, 4, 8))
    overall_words: int = option(30, "word limit l_all of the VLM's overall description", low=1)
    detail_words: int = option(12, "word limit l_d of each object's details", low=1)
    text_coder: str | None = option(None, "coder of the TEXT stream (default: the best available; huffman ="
                                    " SEDIC's coder)", choices=tuple(TEXT_CODERS.names()))


#: fields added by PARAMS version 2 (absent from version-1 files)
V2_FIELDS = ("orag", "object_steps", "attn_place")
PARAMS_SCHEMA: list[tuple[str, Any]] = [
    ("version", "u"), *SedicSettings.wire_schema(), ("n_objects", "u"), ("n_base", "u")]
PARAMS_SCHEMA_V1: list[tuple[str, Any]] = [f for f in PARAMS_SCHEMA if f[0] not in V2_FIELDS]
#: what a version-1 file means for the version-2 fields: the decoder of that time
V1_DEFAULTS = {"orag": "parallel", "object_steps": 10, "attn_place": "all"}


def unpack_sedic_params(payload: bytes) -> dict[str, Any]:
    """PARAMS of either version, as wire values; a version-1 file gets :data:`V1_DEFAULTS` (as indices)."""
    from ...entropy.varint import decode_uvarint

    version, _ = decode_uvarint(bytes(payload), 0)
    if version == 1:
        p = unpack_params(PARAMS_SCHEMA_V1, payload)
        return {**p, "orag": ORAG_MODES.index(V1_DEFAULTS["orag"]), "object_steps": V1_DEFAULTS["object_steps"],
                "attn_place": ATTN_PLACES.index(V1_DEFAULTS["attn_place"])}
    if version == 2:
        return unpack_params(PARAMS_SCHEMA, payload)
    raise FormatError(f"sedic: unknown parameters version {version}")


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
        self.sampler = _orag_settings(s.wire_values())

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
            # the version-1 field list, kept so files written before PARAMS version 2 keep their fingerprint
            "schema": [f for f, _ in PARAMS_SCHEMA_V1],
            "components": self.components.identities,
            "base": self.base.config(),
            "orag": "v1",
            # hash of the mask prior: a file coded with another prior fails clearly instead of decoding wrong
            "masks": {"method": mask_stream.METHOD, "prior": _mask_prior_hash()},
        }

    def _check_cost(self, o: OragSettings, n_objects: int, size: tuple[int, int]) -> None:
        """ORAG's work within the decode budget: every stage or branch, the guidance passes, the last pass."""
        control = self.components.with_controlnet
        p = passes(o.guidance, control)
        guide = (2 if control else 1) * 2 if o.eta != 0.0 else 0  # forward + backward per guided step
        run = o.steps - start_index(o.steps, o.strength)
        if o.mode == "sequential":
            obj = o.object_steps - start_index(o.object_steps, o.strength)
            check_budget(2 * run * p + n_objects * obj * (p + guide), decode_budget(self.settings.decode_budget),
                         "sedic", f"2 stages × {run} steps + {n_objects} object stages × {obj} steps, × {p}"
                         " passes, attention guidance", bundle=self.components, size=size)
            return
        final = (o.steps - start_index(o.steps, o.global_strength)) * p if o.global_strength > 0 else 0
        check_budget(run * (1 + n_objects) * p + run * n_objects * guide + final,
                     decode_budget(self.settings.decode_budget), "sedic",
                     f"{run} steps × {1 + n_objects} branches × {p} passes, attention guidance, global pass",
                     bundle=self.components, size=size)

    # ------------------------------------------------------------------ encode
    def _params(self, n_objects: int, n_base: int) -> bytes:
        return pack_params(PARAMS_SCHEMA, {"version": 2, **self.settings.wire_values(), "n_objects": n_objects,
                                           "n_base": n_base})

    def encode(self, request: EncodeRequest) -> list[Stream]:
        from ...text import encode_text_stream, get_text_coder

        s = self.settings
        sem = analyse(request.image, request.caption, self.semantics, self.analysis == "auto",
                      overall_words=s.overall_words, detail_words=s.detail_words)
        sem.objects = sem.objects[:MAX_OBJECTS]
        check_encoder_steps(self.components.scheduler, self.sampler.steps, "sedic")
        if self.sampler.mode == "sequential" and sem.objects:
            check_encoder_steps(self.components.scheduler, self.sampler.object_steps, "sedic")
        self._check_cost(self.sampler, len(sem.objects), (request.width, request.height))
        coder = get_text_coder(s.text_coder) if s.text_coder else None  # None: the best available
        own = [Stream(StreamKind.TEXT, encode_text_stream(pack_texts(sem), coder))]
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
        p = unpack_sedic_params(streams[0].payload)
        n_obj, n_base = int(p["n_objects"]), int(p["n_base"])
        if (not 1 <= p["steps"] <= MAX_STEPS or n_obj > MAX_OBJECTS or n_base < 1
                or not 0 < p["strength"] <= CENTI or p["global_strength"] > CENTI
                or p["orag"] >= len(ORAG_MODES) or not 1 <= p["object_steps"] <= MAX_STEPS
                or p["attn_place"] >= len(ATTN_PLACES)):
            raise FormatError("sedic: corrupted parameters")
        first_base = 3 if n_obj else 2
        if first_base + n_base > len(streams) or (n_obj and streams[2].kind != StreamKind.MASK):
            raise FormatError("sedic: stream layout does not match the parameters")
        settings = _orag_settings(p)
        check_decoder_steps(self.components.scheduler, settings.steps, "sedic")
        if settings.mode == "sequential" and n_obj:
            check_decoder_steps(self.components.scheduler, settings.object_steps, "sedic")
        self._check_cost(settings, n_obj, (width, height))
        overall, names = unpack_texts(self.text_of(streams, 1, texts), n_obj)
        masks = (mask_stream.decode_masks(streams[2].payload, n_obj, width, height)
                 if n_obj else [])
        reference = self.base.decode_streams(streams[first_base : first_base + n_base], width, height)
        objects = [(GroundedObject(n, d, m).text, n, m) for (n, d), m in zip(names, masks, strict=True)]
        with fixed_threads():
            return orag_decode(self.components, reference, overall, objects, settings)


def _orag_settings(wire: dict[str, Any]) -> OragSettings:
    """The sampler settings from PARAMS wire values (the encoder builds them the same way: same rounding)."""
    w = SedicSettings.from_wire(wire)
    return OragSettings(
        seed=int(w["seed"]), steps=int(w["steps"]), strength=w["strength"], guidance=w["guidance"],
        control_scale=w["control_scale"], eta=w["eta"], t_prime=int(w["t_prime"]),
        global_strength=w["global_strength"], mode=w["orag"], object_steps=int(w["object_steps"]),
        attn_place=w["attn_place"])


def _mask_prior_hash() -> str:
    from ...semantic.masks.prior import prior_hash

    return prior_hash()
