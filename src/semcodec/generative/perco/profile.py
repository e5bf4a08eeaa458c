"""``perco`` profile: PerCo (Careil et al., ICLR 2024) — VQ hyper-latent + caption → latent diffusion.

::

    encode: image ─pad─► VAE.encode ─► z ─► hyper-encoder (strided, per rate point) ─► e (32×gh×gw)
            ─► EMA-codebook indices ─► uniform code ⌈gh·gw·log2 V⌉ bits ─────────────────► LATENT
            caption (--caption, else the captioning VLM, 32 tokens) ─► zlib ──────────────► TEXT (if any)
            version, seed, steps, guidance, rate point, gh, gw, V ────────────────────────► PARAMS
    decode: LATENT ─► codebook ─► nearest upsample ─┐
            TEXT ─► text encoder ─► z_g (or ∅) ─────┼─► DDIM from seeded noise,
            PARAMS ─────────────────────────────────┘   ε̂ = ε(x,z_l,∅) + s(ε(x,z_l,z_g) − ε(x,z_l,∅))
                                                        ─► VAE.decode ─► crop ─► image

The rate is the head's rate point (the paper's table: grid 64/32/16/8 per 64 latent rows and the
codebook size V); ``--set rate=`` or ``--quality`` (its index) only check that the model is the one
asked for. Without a caption (no ``--caption`` and no VLM) no TEXT stream is sent and the decoder uses
the learned null embedding ∅ for both guidance branches. Model folder (``--set model=DIR`` or
``$SEMCODEC_PERCO_MODEL``): a diffusers layout ``unet/`` (with the 32 extra inputs), ``vae/``,
``text_encoder/``, ``tokenizer/``, ``scheduler/`` and ``perco/`` (hyper-encoder, codebook, ∅), as
written by ``semcodec train perco``. ``--set vae=taef2`` swaps in the TAEF2 autoencoder when the UNet
works in the FLUX.2 latent space.

PARAMS version 2 (this layout). Version 1 files (the earlier adaptive-pool head, before the paper's
hyper-encoder) are refused with a FormatError: their heads no longer load.
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
from ...entropy.varint import decode_uvarint
from ...errors import FormatError, MissingComponentError, RateError, SemcodecError
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
from ..latent.vq import index_bits, pack_indices, unpack_indices
from .caption import perco_caption
from .head import PercoHead
from .rates import RATE_NAMES
from .unet import perco_eps

MODEL_ENV = "SEMCODEC_PERCO_MODEL"
MAX_STEPS = 1000
#: PARAMS layout version written by this release (1: the adaptive-pool head, refused)
VERSION = 2


@dataclass(frozen=True)
class PercoSettings(DiffusionOptions):
    head: str | None = option(None, "hyper-encoder + codebook folder (default: <model>/perco)")
    rate: str | None = option(None, "rate point (bpp of the map at 512×512) the head must be trained for;"
                              " default: the head's own", choices=RATE_NAMES)
    captioner: str = option("auto", "auto: caption with the configured VLM (32 tokens) when no --caption is"
                            " given; none: never (then the decoder uses the learned null embedding)",
                            choices=("auto", "none"))
    # PARAMS fields, in stream order
    seed: int = option(0, "sampler seed", low=0, wire="u")
    steps: int = option(20, "DDIM steps at the decoder", low=1, high=MAX_STEPS, wire="u")
    guidance: float = option(3.0, "text-only classifier-free guidance scale", wire="f32")
    # decoder-relevant, hashed
    text_coder: str = option("zlib", "coder of the caption", choices=tuple(TEXT_CODERS.names()), config=True)
    scheduler_kind: str | None = option("ddim", "sampler (ddim; null: the model's own scheduler)", config=True)


PARAMS_SCHEMA: list[tuple[str, Any]] = [
    ("version", "u"), *PercoSettings.wire_schema(), ("rate", "u"), ("gh", "u"), ("gw", "u"), ("V", "u")]


def _file_digest(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()[:16]


class PercoProfile(Profile):
    description: ClassVar[str] = (
        "PerCo: VQ hyper-latent at the paper's rate points (uniform index code) + zlib caption,"
        " map+text conditioned diffusion"
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
            head = PercoHead.load(self.head_dir)
            if self.settings.rate is not None and head.rate.name != self.settings.rate:
                raise MissingComponentError(f"the PerCo head at {self.head_dir} is trained for rate point"
                                            f" {head.rate.name}, not {self.settings.rate}")
            self._head = head.to(self.bundle.device, self.bundle.dtype)
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
            **super().config(), "format": VERSION, "schema": [f for f, _ in PARAMS_SCHEMA],
            "components": ids, "head": _file_digest(self.head_dir / "model.safetensors"),
        }

    def _multiple(self) -> int:
        return self.space.factor * 2 ** (len(self.bundle.unet.config.block_out_channels) - 1)

    def _check_cost(self, steps: int, guidance: float, size: tuple[int, int], captioned: bool = True) -> None:
        p = passes(guidance, False) if captioned else 1
        check_budget(steps * p, decode_budget(self.settings.decode_budget), "perco", f"{steps} steps × {p} passes",
                     bundle=self.bundle, size=size)

    # ------------------------------------------------------------------ encode
    def encode(self, request: EncodeRequest) -> list[Stream]:
        from ...text import encode_text_stream, get_text_coder

        check_encoder_steps(self.bundle.scheduler, self.steps, "perco")
        head = self.head
        if request.quality is not None:
            q = int(self.quality.check(request.quality, self.name))
            if q != head.rate_index:
                raise SemcodecError(f"--quality {q} asks for PerCo rate point {RATE_NAMES[q]}, but this model's"
                                    f" head is trained for {head.rate.name} (index {head.rate_index}); one model"
                                    " per rate point, as in the paper")
        caption = perco_caption(request, self.settings.captioner)
        self._check_cost(self.steps, self.guidance, (request.width, request.height), bool(caption))
        text = [Stream(StreamKind.TEXT, encode_text_stream(caption, get_text_coder(self.text_coder)))] if caption else []
        padded = pad_to_multiple(request.image, self._multiple())
        with fixed_threads(), torch.no_grad():
            z = self.bundle.place(self.space.encode(padded))
        grid = head.grid(*z.shape[-2:])
        params = Stream(StreamKind.PARAMS, pack_params(PARAMS_SCHEMA, self._param_values(grid)))
        size = (params.framed_size() + sum(t.framed_size() for t in text)
                + stream_cost((index_bits(grid[0] * grid[1], head.V) + 7) // 8))
        if request.max_bytes is not None and size > request.max_bytes:
            raise RateError(f"perco at rate point {head.rate.name} needs {size} bytes for this image"
                            f" ({grid[0]}x{grid[1]} codes of {head.V} + caption), budget is {request.max_bytes};"
                            " use a model trained for a lower rate point or a shorter caption")
        with fixed_threads(), torch.no_grad():
            idx, _ = head.quantize(head.features(z))
        latent = Stream(StreamKind.LATENT, pack_indices(idx[0], head.V))
        return [params, *text, latent]

    def _param_values(self, grid: tuple[int, int]) -> dict[str, Any]:
        return {"version": VERSION, **self.settings.wire_values(), "rate": self.head.rate_index,
                "gh": grid[0], "gw": grid[1], "V": self.head.V}

    # ------------------------------------------------------------------ decode
    def decode(self, streams: list[Stream], width: int, height: int,
               texts: Sequence[str] | None = None) -> np.ndarray:
        kinds = [s.kind for s in streams]
        if kinds not in ([StreamKind.PARAMS, StreamKind.TEXT, StreamKind.LATENT], [StreamKind.PARAMS, StreamKind.LATENT]):
            raise FormatError("perco file must hold PARAMS, [TEXT,] LATENT streams")
        if decode_uvarint(streams[0].payload, 0)[0] == 1:
            raise FormatError("this perco file was written by the earlier adaptive-pool PerCo head (PARAMS version 1),"
                              " which this release no longer decodes; re-encode the image with a current PerCo model")
        p = unpack_params(PARAMS_SCHEMA, streams[0].payload)
        head = self.head
        if p["version"] != VERSION or p["V"] != head.V or p["rate"] != head.rate_index \
                or not 1 <= p["steps"] <= MAX_STEPS:
            raise FormatError("perco PARAMS do not match this model (version, rate point or codebook size)")
        check_decoder_steps(self.bundle.scheduler, int(p["steps"]), "perco")
        captioned = len(streams) == 3
        self._check_cost(int(p["steps"]), float(p["guidance"]), (width, height), captioned)
        caption = self.text_of(streams, 1, texts) if captioned else ""
        m = self._multiple()
        ph, pw = height + (-height) % m, width + (-width) % m
        h, w = ph // self.space.factor, pw // self.space.factor
        gh, gw = int(p["gh"]), int(p["gw"])
        if (gh, gw) != head.grid(h, w):
            raise FormatError(f"perco grid {gh}x{gw} is not the {head.grid(h, w)} grid of a {h}x{w} latent")
        idx = self.bundle.place(torch.tensor(unpack_indices(streams[-1].payload, gh * gw, head.V)).view(1, gh, gw))
        with fixed_threads(), torch.no_grad():
            z = self.sample(idx, caption, (h, w), int(p["seed"]), int(p["steps"]), float(p["guidance"]))
            img = self.space.decode(z)
        return img[:height, :width]

    @torch.no_grad()
    def sample(self, idx: torch.Tensor, caption: str, size: tuple[int, int], seed: int, steps: int,
               guidance: float) -> torch.Tensor:
        """DDIM from seeded noise with the upsampled VQ map and text-only CFG (PerCo Eq. 2).

        No caption: both branches would be ε(x, z_l, ∅), so one pass with ∅ (guidance has no effect)."""
        head, unet = self.head, self.bundle.unet
        z_l = head.upsample(head.lookup(idx), size)
        null = head.null_text[None]
        if caption:
            text = self.bundle.encode_prompt([caption])
            null = null[:, : text.shape[1]]
            if null.shape != text.shape:
                raise MissingComponentError(f"PerCo null embedding {tuple(head.null_text.shape)} does not match the"
                                            f" text encoder output {tuple(text.shape[1:])}")
        else:
            text, guidance = null, 1.0
        sched = fresh_scheduler(self.bundle, steps)
        C = int(unet.config.out_channels)
        x = self.bundle.place(seeded_noise((1, C, *size), seed)) * float(getattr(sched, "init_noise_sigma", 1.0))
        for t in sched.timesteps:
            eps = perco_eps(unet, sched.scale_model_input(x, t), t, z_l, text, null, guidance)
            x = sched.step(eps, t, x).prev_sample
        return x
