"""``perco`` profile: VQ hyper-latent + zlib caption → caption- and map-conditioned latent diffusion.

::

    encode: image ─pad─► VAE.encode ─► z ─► hyper-encoder ─► grid gh×gw ─► VQ indices ─► LATENT (uniform)
            caption (user) ─► zlib ────────────────────────────────────────────────────► TEXT
            seed, steps, guidance, gh, gw, V ─► PARAMS
    decode: LATENT ─► codebook ─► upsample ─┐
            TEXT ─► text encoder ─► z_g ────┼─► DDIM from seeded noise, ε̂ = ε(x,z_l,∅) + s(ε(x,z_l,z_g) − ε(x,z_l,∅))
            PARAMS ─────────────────────────┘   ─► VAE.decode ─► crop ─► image

The grid is chosen from the byte budget (finest grid whose streams fit), or from ``quality`` =
grid cell size in latent pixels. Model folder (``--set model=DIR`` or ``$SEMCODEC_PERCO_MODEL``): a
diffusers layout ``unet/`` (with the D extra inputs), ``vae/``, ``text_encoder/``, ``tokenizer/``,
``scheduler/`` and ``perco/`` (hyper-encoder, codebook, null embedding), as written by
``semcodec train perco``. ``--set vae=taef2`` swaps in the TAEF2 autoencoder
when the UNet works in the FLUX.2 latent space.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from ...container import Stream, StreamKind, stream_cost
from ...container.params import pack_params, unpack_params
from ...errors import FormatError, MissingComponentError, RateError
from ...profiles import EncodeRequest, Profile, option
from ...text.base import TEXT_CODERS
from ..components import DiffusionComponents, component_identity, fixed_threads, seeded_noise
from ..components.budget import (
    check_budget,
    check_decoder_steps,
    check_encoder_steps,
    decode_budget,
    passes,
)
from ..components.options import DiffusionOptions
from ..components.sampling import fresh_scheduler, pad_to_multiple
from ..components.settings import generative_availability
from ..latent.vae import is_taef2, load_latent_space
from ..latent.vq import PercoHead, grid_for, index_bits, pack_indices, unpack_indices
from .unet import perco_eps

MODEL_ENV = "SEMCODEC_PERCO_MODEL"
#: grid cell sizes (latent pixels per VQ index side) tried from fine to coarse
CELLS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)
MAX_STEPS = 1000


@dataclass(frozen=True)
class PercoSettings(DiffusionOptions):
    head: str | None = option(None, "hyper-encoder + codebook folder (default: <model>/perco)")
    # PARAMS fields, in stream order
    seed: int = option(0, "sampler seed", low=0, wire="u")
    steps: int = option(20, "DDIM steps at the decoder", low=1, high=MAX_STEPS, wire="u")
    guidance: float = option(3.0, "text-only classifier-free guidance scale", wire="f32")
    # decoder-relevant, hashed
    text_coder: str = option("zlib", "coder of the caption", choices=tuple(TEXT_CODERS.names()), config=True)
    scheduler_kind: str | None = option("ddim", "sampler (ddim; null: the model's own scheduler)", config=True)


PARAMS_SCHEMA: list[tuple[str, Any]] = [
    ("version", "u"), *PercoSettings.wire_schema(), ("gh", "u"), ("gw", "u"), ("V", "u")]


def _file_digest(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()[:16]


class PercoProfile(Profile):
    description: ClassVar[str] = (
        "PerCo: VQ hyper-latent (uniform index code) + zlib caption, map+text conditioned diffusion"
        f" (set {MODEL_ENV})"
    )
    uses_caption: ClassVar[bool] = True
    Settings = PercoSettings
    settings: PercoSettings

    def __init__(self, settings: PercoSettings | None = None, **options: Any) -> None:
        super().__init__(settings, **options)
        s = self.settings
        model = s.model or os.environ.get(MODEL_ENV) or None
        if not model and not s.unet:
            raise MissingComponentError(
                f"perco needs a PerCo model folder: set {MODEL_ENV} or --set model=DIR (a diffusers layout with"
                " unet/ carrying the extra VQ input channels, vae/, text_encoder/, tokenizer/, scheduler/ and perco/;"
                " build one with `semcodec train perco`)"
            )
        parts = s.parts()
        if s.vae and is_taef2(s.vae):
            parts.pop("vae")  # the TAEF2 autoencoder is loaded by the latent space, not the bundle
        self.bundle = DiffusionComponents.from_sources(model, scheduler_kind=s.scheduler_kind, **s.placement(),
                                                       **parts)
        head_dir = Path(s.head) if s.head else (Path(model) / "perco" if model else None)
        if head_dir is None or not (head_dir / "model.safetensors").is_file():
            raise MissingComponentError(f"PerCo head (hyper-encoder + codebook) not found at {head_dir}")
        self.head_dir = head_dir
        self.vae_spec = s.vae
        self.steps, self.guidance, self.seed = s.steps, s.guidance, s.seed
        self.text_coder = s.text_coder
        self._head: PercoHead | None = None
        self._space: Any = None

    @classmethod
    def availability(cls) -> str | None:
        return cls.availability_for({})

    @classmethod
    def availability_for(cls, options: dict[str, Any]) -> str | None:
        return generative_availability(options, MODEL_ENV, keys=("model", "unet"))

    # ------------------------------------------------------------------ components
    @property
    def head(self) -> PercoHead:
        if self._head is None:  # on the models' device and dtype: its maps and ∅ feed the UNet
            self._head = PercoHead.load(self.head_dir).to(self.bundle.device, self.bundle.dtype)
        return self._head

    @property
    def space(self) -> Any:
        if self._space is None:
            self._space = load_latent_space(self.vae_spec if is_taef2(self.vae_spec) else None, self.bundle)
        return self._space

    def config(self) -> dict[str, Any]:
        ids = {}
        for part in ("unet", "text_encoder", "tokenizer", "scheduler"):
            src, sub = self.bundle.sources.source(part)
            ids[part] = component_identity(src, sub, revision=self.bundle.sources.revision)
        if is_taef2(self.vae_spec):
            ids["vae"] = f"taef2:{self.space.identity}"
        else:
            src, sub = self.bundle.sources.source("vae")
            ids["vae"] = component_identity(src, sub, revision=self.bundle.sources.revision)
        return {
            **super().config(), "format": 1, "schema": [f for f, _ in PARAMS_SCHEMA],
            "components": ids, "head": _file_digest(self.head_dir / "model.safetensors"),
        }

    def _multiple(self) -> int:
        return self.space.factor * 2 ** (len(self.bundle.unet.config.block_out_channels) - 1)

    def _check_cost(self, steps: int, guidance: float, size: tuple[int, int]) -> None:
        p = passes(guidance, False)
        check_budget(steps * p, decode_budget(self.settings.decode_budget), "perco", f"{steps} steps × {p} passes",
                     bundle=self.bundle, size=size)

    # ------------------------------------------------------------------ encode
    def encode(self, request: EncodeRequest) -> list[Stream]:
        from ...text import encode_text_stream, get_text_coder

        check_encoder_steps(self.bundle.scheduler, self.steps, "perco")
        self._check_cost(self.steps, self.guidance, (request.width, request.height))
        text = Stream(StreamKind.TEXT, encode_text_stream(request.caption or "", get_text_coder(self.text_coder)))
        V = self.head.V
        padded = pad_to_multiple(request.image, self._multiple())
        with fixed_threads(), torch.no_grad():
            z = self.bundle.place(self.space.encode(padded))
        h, w = z.shape[-2:]

        def cost(grid: tuple[int, int]) -> int:
            params = pack_params(PARAMS_SCHEMA, self._param_values(grid, V))
            return (stream_cost(len(params)) + text.framed_size()
                    + stream_cost((index_bits(grid[0] * grid[1], V) + 7) // 8))

        if request.quality is not None:
            grid = grid_for(h, w, int(self.quality.check(request.quality, self.name)))
        else:
            grids = [grid_for(h, w, c) for c in CELLS]
            if request.max_bytes is None:
                grid = grid_for(h, w, 4)
            else:
                fitting = [g for g in grids if cost(g) <= request.max_bytes]
                if not fitting:
                    raise RateError(f"perco needs at least {cost(grids[-1])} bytes (1 VQ cell + caption),"
                                    f" budget is {request.max_bytes}")
                grid = fitting[0]
        with fixed_threads(), torch.no_grad():
            idx, _ = self.head.quantize(self.head.features(z, grid))
        latent = Stream(StreamKind.LATENT, pack_indices(idx[0], V))
        params = Stream(StreamKind.PARAMS, pack_params(PARAMS_SCHEMA, self._param_values(grid, V)))
        return [params, text, latent]

    def _param_values(self, grid: tuple[int, int], V: int) -> dict[str, Any]:
        return {"version": 1, **self.settings.wire_values(), "gh": grid[0], "gw": grid[1], "V": V}

    # ------------------------------------------------------------------ decode
    def decode(self, streams: list[Stream], width: int, height: int,
               texts: Sequence[str] | None = None) -> np.ndarray:
        if len(streams) < 3 or [s.kind for s in streams[:3]] != [StreamKind.PARAMS, StreamKind.TEXT, StreamKind.LATENT]:
            raise FormatError("perco file must hold PARAMS, TEXT, LATENT streams")
        p = unpack_params(PARAMS_SCHEMA, streams[0].payload)
        if p["version"] != 1 or p["V"] != self.head.V or not 1 <= p["steps"] <= MAX_STEPS:
            raise FormatError("perco PARAMS do not match this model")
        check_decoder_steps(self.bundle.scheduler, int(p["steps"]), "perco")
        self._check_cost(int(p["steps"]), float(p["guidance"]), (width, height))
        caption = self.text_of(streams, 1, texts)
        m = self._multiple()
        ph, pw = height + (-height) % m, width + (-width) % m
        h, w = ph // self.space.factor, pw // self.space.factor
        gh, gw = int(p["gh"]), int(p["gw"])
        if not (1 <= gh <= h and 1 <= gw <= w):
            raise FormatError(f"perco grid {gh}x{gw} does not fit a {h}x{w} latent")
        idx = self.bundle.place(torch.tensor(unpack_indices(streams[2].payload, gh * gw, self.head.V)).view(1, gh, gw))
        with fixed_threads(), torch.no_grad():
            z = self.sample(idx, caption, (h, w), int(p["seed"]), int(p["steps"]), float(p["guidance"]))
            img = self.space.decode(z)
        return img[:height, :width]

    @torch.no_grad()
    def sample(self, idx: torch.Tensor, caption: str, size: tuple[int, int], seed: int, steps: int,
               guidance: float) -> torch.Tensor:
        """DDIM from seeded noise with the upsampled VQ map and text-only CFG (PerCo Eq. 2)."""
        head, unet = self.head, self.bundle.unet
        z_l = head.upsample(head.lookup(idx), size)
        text = self.bundle.encode_prompt([caption])
        null = head.null_text[None, : text.shape[1]]
        if null.shape != text.shape:
            raise MissingComponentError(f"PerCo null embedding {tuple(head.null_text.shape)} does not match the"
                                        f" text encoder output {tuple(text.shape[1:])}")
        sched = fresh_scheduler(self.bundle, steps)
        C = int(unet.config.out_channels)
        x = self.bundle.place(seeded_noise((1, C, *size), seed)) * float(getattr(sched, "init_noise_sigma", 1.0))
        for t in sched.timesteps:
            eps = perco_eps(unet, sched.scale_model_input(x, t), t, z_l, text, null, guidance)
            x = sched.step(eps, t, x).prev_sample
        return x
