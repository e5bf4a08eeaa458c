"""``resulic`` profile: latent codec in the VAE space + semantic-residual text + compression-aware diffusion.

::

    encode: image ─pad─► VAE.encode ─► z ─► latent hyperprior (rate: q-step ladder) ─► LATENT
            z_c = decoded latent; rel. error ‖z_c − z‖²/‖z‖² ─► N_r (start step) ─┐
            Srr residual (captioner + LLM, or the user caption) ─► text coder ─► TEXT
            seed, steps, N_r, guidance, diffusion flag ─► PARAMS ◄──────────────────┘
    decode: LATENT ─► z_c ─┬─(no diffusion model)────────────────────────────► VAE.decode ─► image
                           └─► x_{N_r} = √ᾱ z_c + σ ε(seed) ─► CDM sampler (η = 0, text CFG)
                                ─► x̂_0 ─► VAE.decode ─► crop ─► image

Defaults run here: TAEF2 autoencoder + the shipped latent codec (``weights/resulic_latent_taef2``),
no diffusion (the decoder output is the TAEF2 decode of z_c). With ``--set model=DIR`` (a diffusers
folder whose UNet works in the same latent space as the VAE/codec) decoding runs the CDM sampler.
Side parameters travel in PARAMS; model ids/hashes are in :meth:`ResulicProfile.config`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch

from ...budget import charge
from ...container import Stream, StreamKind, stream_cost
from ...container.params import pack_params, unpack_params
from ...errors import FormatError, ImageTooLargeError, MissingComponentError, RateError
from ...paths import PACKAGE_WEIGHTS
from ...profiles import EncodeRequest, Profile, option
from ...text.base import TEXT_CODERS
from ..components import DiffusionComponents, component_identity, fixed_threads, seeded_noise
from ..components.budget import check_budget, decode_budget, passes
from ..components.options import DiffusionOptions
from ..components.sampling import pad_to_multiple
from ..latent.vae import is_taef2, load_latent_space, vae_unavailable_reason

if TYPE_CHECKING:  # compressai and diffusers load with the codec and the sampler, not with the profile class
    from ..latent.codec import LatentHyperprior
    from .scheduler import CompressionAwareScheduler

MODEL_ENV = "SEMCODEC_RESULIC_MODEL"
VAE_ENV = "SEMCODEC_RESULIC_VAE"
CODEC_ENV = "SEMCODEC_RESULIC_CODEC"
DEFAULT_CODEC = PACKAGE_WEIGHTS / "resulic_latent_taef2"
MAX_STEPS = 1000
#: TAEF2 decodes in tiles, but its latent-resolution layers (GroupNorm) and the latent codec run on the
#: whole latent: measured ~110 bytes per output pixel on top of one tile (~0.4 GB), so at this cap a
#: decode peaks under 2 GB RSS with the models loaded (BENCHMARKS.md, scripts/learned_decode_memory.py)
TAEF2_MAX_PIXELS = 6_000_000
#: decode-work units (≈ ms) per output pixel of latent codec + tiled TAEF2 (measured 8–12 s per Mpx on a
#: loaded core; a file at the cap costs 72,000 of the default 120,000 units)
TAEF2_UNITS_PER_PIXEL = 0.012
#: a diffusers VAE decodes the whole image at once (mid-block attention): SD's 512² × 4
VAE_MAX_PIXELS = 1024 * 1024
#: preferred text coders for the residual (ResULIC codes CLIP token indices), first available wins
TEXT_CODER_PREFERENCE = ("clip-index",)


@dataclass(frozen=True)
class ResulicSettings(DiffusionOptions):
    codec: str | None = option(None, f"latent codec folder (default ${CODEC_ENV} or the shipped TAEF2 codec)")
    # PARAMS fields after (version, diffusion), in stream order
    seed: int = option(0, "sampler seed", low=0, wire="u")
    steps: int = option(4, "CDM sampler steps", low=1, high=MAX_STEPS, wire="u")
    n_r: int | None = option(None, "start step N_r (default: from the latent's coding error)", low=0, wire="u")
    guidance: float = option(1.0, "classifier-free guidance scale on the residual text", wire="f32")
    # decoder-relevant, hashed
    text_coder: str | None = option(None, "coder of the residual text (default clip-index, else the best"
                                    " available)", choices=tuple(TEXT_CODERS.names()), config=True)
    # encoder side
    srr: bool = option(False, "send the Srr semantic residual (needs a configured captioner and LLM)")


PARAMS_SCHEMA: list[tuple[str, Any]] = [("version", "u"), ("diffusion", "u"), *ResulicSettings.wire_schema()]


def _digest(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _default_text_coder() -> str:
    from ...text import best_text_coder, text_coder_class

    for name in TEXT_CODER_PREFERENCE:
        if text_coder_class(name).availability() is None:
            return name
    return best_text_coder().name


class ResulicProfile(Profile):
    description: ClassVar[str] = (
        "ResULIC: hyperprior latent codec (TAEF2 space by default) + residual text, compression-aware"
        f" diffusion when a model is set ({MODEL_ENV})"
    )
    uses_caption: ClassVar[bool] = True
    Settings = ResulicSettings
    settings: ResulicSettings

    def __init__(self, settings: ResulicSettings | None = None, **options: Any) -> None:
        super().__init__(settings, **options)
        s = self.settings
        self.model = s.model or os.environ.get(MODEL_ENV) or None
        self.vae_spec = s.vae or os.environ.get(VAE_ENV) or ("taef2" if not self.model else None)
        reason = vae_unavailable_reason(self.vae_spec) if self.vae_spec else None
        if reason:
            raise MissingComponentError(reason)
        self.codec_dir = Path(s.codec or os.environ.get(CODEC_ENV) or DEFAULT_CODEC)
        if not (self.codec_dir / "model.safetensors").is_file():
            raise MissingComponentError(f"latent codec weights not found in {self.codec_dir} (set {CODEC_ENV}"
                                        " or --set codec=DIR; train one with `semcodec train latent-codec`)")
        s = self.settings = s.replace(text_coder=s.text_coder or _default_text_coder())
        self.steps, self.guidance, self.seed = s.steps, s.guidance, s.seed
        self.n_r = s.n_r
        self.text_coder = s.text_coder
        self.srr = s.srr
        parts = {k: v for k, v in s.parts().items() if k != "vae"}
        if self.vae_spec and not is_taef2(self.vae_spec):
            parts["vae"] = self.vae_spec
        self.bundle = (DiffusionComponents.from_sources(self.model, **s.placement(), **parts)
                       if (self.model or parts.get("unet")) else None)
        self._codec: LatentHyperprior | None = None
        self._space: Any = None
        self._sched: CompressionAwareScheduler | None = None

    @classmethod
    def availability_for(cls, options: dict[str, Any]) -> str | None:
        if options.get("model") or options.get("vae"):  # an explicit diffusers model/VAE replaces TAEF2
            return None
        return cls.availability()

    @classmethod
    def availability(cls) -> str | None:
        if os.environ.get(MODEL_ENV) or os.environ.get(VAE_ENV):
            return None
        reason = vae_unavailable_reason("taef2")
        if reason:
            return f"{reason}; or set {VAE_ENV}/{MODEL_ENV} to a diffusers VAE/model with a matching latent codec"
        return None

    # ------------------------------------------------------------------ components
    @property
    def codec(self) -> LatentHyperprior:
        if self._codec is None:
            from ..latent.codec import LatentHyperprior

            self._codec = LatentHyperprior.load(self.codec_dir)
        return self._codec

    @property
    def space(self) -> Any:
        if self._space is None:
            self._space = load_latent_space(self.vae_spec if is_taef2(self.vae_spec) else None, self.bundle)
            if self._space.channels != self.codec.config["latent_channels"]:
                raise MissingComponentError(
                    f"latent codec in {self.codec_dir} codes {self.codec.config['latent_channels']}-channel latents,"
                    f" the VAE gives {self._space.channels}; use a codec trained for this VAE")
        return self._space

    @property
    def scheduler(self) -> CompressionAwareScheduler:
        """The CDM sampler with the diffusion model's noise schedule."""
        if self._sched is None:
            assert self.bundle is not None
            from .scheduler import CompressionAwareScheduler

            self._sched = CompressionAwareScheduler.for_model(self.bundle.scheduler.config)
        return self._sched

    def config(self) -> dict[str, Any]:
        ids: dict[str, str] = {}
        if is_taef2(self.vae_spec):
            ids["vae"] = self.space.identity
        if self.bundle is not None:
            for part in ("unet", "text_encoder", "tokenizer", "scheduler") + (() if is_taef2(self.vae_spec) else ("vae",)):
                src, sub = self.bundle.sources.source(part)
                ids[part] = component_identity(src, sub, revision=self.bundle.sources.revision)
        return {**super().config(), "format": 1, "schema": [f for f, _ in PARAMS_SCHEMA], "components": ids,
                "codec": _digest(self.codec_dir / "model.safetensors")}

    def _multiple(self) -> int:
        m = self.space.factor
        if self.bundle is not None:
            m *= 2 ** (len(self.bundle.unet.config.block_out_channels) - 1)
        return m

    # ------------------------------------------------------------------ encode
    def _residual_text(self, request: EncodeRequest, z_c: torch.Tensor) -> str:
        """Srr residual when a captioner/LLM is configured (``srr=True``), else the user caption."""
        if not self.srr:
            return request.caption or ""
        from ...semantic.captioners import make_captioner
        from ...semantic.config import SemanticConfig
        from ...semantic.srr import semantic_residual

        cfg = SemanticConfig.from_env()
        captioner = make_captioner("resulic", cfg)
        decoded = self.space.decode(z_c)[: request.height, : request.width]
        res = semantic_residual(request.image, decoded, captioner, cfg.text_chat(), caption_original=request.caption)
        return res.residual

    def encode(self, request: EncodeRequest) -> list[Stream]:
        from ...text import encode_text_stream, get_text_coder
        from ..latent.codec import MAX_Q_INDEX
        from .scheduler import start_step_for_distortion

        self._check_size(request.width, request.height)  # never write a file the decoder refuses

        z = self._encode_latent(pad_to_multiple(request.image, self._multiple()))
        h, w = z.shape[-2:]

        def attempt(k: int) -> tuple[bytes, torch.Tensor]:
            with fixed_threads(), torch.no_grad():
                payload = self.codec.compress_latent(z, k)
                return payload, self.codec.decompress_latent(payload, h, w)

        params_len = len(self._params(1, MAX_STEPS - 1)) + 2  # upper bound: varints of n_r/steps
        caption_cost = 0
        if request.caption:
            caption_cost = stream_cost(len(encode_text_stream(request.caption, get_text_coder(self.text_coder))) + 64)
        if request.quality is not None:
            payload, z_c = attempt(int(self.quality.check(request.quality, self.name)))
        else:
            k = 0 if request.max_bytes is not None else 4
            while True:
                payload, z_c = attempt(k)
                need = stream_cost(params_len) + stream_cost(len(payload)) + caption_cost
                if request.max_bytes is None or need <= request.max_bytes:
                    break
                if k == MAX_Q_INDEX:
                    raise RateError(f"resulic needs at least {need} bytes at its coarsest step; budget {request.max_bytes}")
                k += 1
        rel = float(((z_c - z) ** 2).sum() / (z**2).sum().clamp_min(1e-12))
        streams = [Stream(StreamKind.PARAMS, b""), Stream(StreamKind.LATENT, payload)]
        text = self._residual_text(request, z_c) if self.bundle is not None or request.caption else ""
        if text:
            streams.append(Stream(StreamKind.TEXT, encode_text_stream(text, get_text_coder(self.text_coder))))
        n_r = 0
        if self.bundle is not None:
            n_r = self.n_r if self.n_r is not None else start_step_for_distortion(self.scheduler.alphas_cumprod, rel)
        if self.bundle is not None:
            self._check_cost(self.steps, n_r, self.guidance, (request.width, request.height))
        streams[0] = Stream(StreamKind.PARAMS, self._params(int(self.bundle is not None), n_r))
        if request.max_bytes is not None and sum(s.framed_size() for s in streams) > request.max_bytes:
            raise RateError("resulic residual text does not fit the budget; shorten the caption or raise the rate")
        return streams

    def _encode_latent(self, padded: np.ndarray) -> torch.Tensor:
        """VAE latent of the padded image; the last one is kept so several rate points encode once."""
        key = hashlib.sha1(padded.tobytes() + str(padded.shape).encode()).hexdigest()
        if getattr(self, "_last", (None,))[0] != key:
            with fixed_threads(), torch.no_grad():  # the codec codes exactly on the CPU in float32
                self._last = (key, self.space.encode(padded).to("cpu", torch.float32))
        return self._last[1]

    def _params(self, diffusion: int, n_r: int) -> bytes:
        return pack_params(PARAMS_SCHEMA, {"version": 1, "diffusion": diffusion, **self.settings.wire_values(),
                                           "n_r": n_r})

    # ------------------------------------------------------------------ decode
    def decode(self, streams: list[Stream], width: int, height: int,
               texts: Sequence[str] | None = None) -> np.ndarray:
        if len(streams) < 2 or streams[0].kind != StreamKind.PARAMS or streams[1].kind != StreamKind.LATENT:
            raise FormatError("resulic file must start with PARAMS, LATENT streams")
        p = unpack_params(PARAMS_SCHEMA, streams[0].payload)
        if p["version"] != 1 or not 1 <= p["steps"] <= MAX_STEPS or p["diffusion"] not in (0, 1):
            raise FormatError("resulic PARAMS out of range")
        text = ""
        if len(streams) > 2 and streams[2].kind == StreamKind.TEXT:
            text = self.text_of(streams, 2, texts)
        if p["diffusion"] and self.bundle is None:
            raise MissingComponentError(f"this file was refined with a diffusion model: set {MODEL_ENV} or --set model=")
        if p["diffusion"]:
            if not 0 <= p["n_r"] < int(self.scheduler.config.num_train_timesteps):
                raise FormatError("resulic N_r out of range")
            self._check_cost(int(p["steps"]), int(p["n_r"]), float(p["guidance"]), (width, height))
        self._check_size(width, height)  # before the latent is decoded: a forged size stops here
        m = self._multiple()
        ph, pw = height + (-height) % m, width + (-width) % m
        h, w = ph // self.space.factor, pw // self.space.factor
        with fixed_threads(), torch.no_grad():
            z_c = self.codec.decompress_latent(streams[1].payload, h, w)
            if p["diffusion"]:
                z_c = self.refine(z_c, text, int(p["n_r"]), int(p["steps"]), float(p["guidance"]), int(p["seed"]))
            img = self.space.decode(z_c)
        return img[:height, :width]

    def _check_cost(self, steps: int, n_r: int, guidance: float, size: tuple[int, int]) -> None:
        """The CDM runs at most N_r + 1 steps (its timesteps are N_r … 0), on the whole image."""
        run, p = min(steps, n_r + 1), passes(guidance, False)
        check_budget(run * p, decode_budget(self.settings.decode_budget), "resulic", f"{run} steps × {p} passes",
                     bundle=self.bundle, size=size)

    def _check_size(self, width: int, height: int) -> None:
        """The latent decoder's pixel cap (ImageTooLargeError) and its work charge, before any decoding."""
        taef2 = is_taef2(self.vae_spec)
        cap = TAEF2_MAX_PIXELS if taef2 else VAE_MAX_PIXELS
        if width * height > cap:
            why = ("the latent codec and TAEF2's low-resolution layers decode the whole latent at once" if taef2
                   else "the VAE decodes the whole image at once")
            raise ImageTooLargeError(f"resulic decodes at most {cap:,} pixels ({why}); the image is"
                                     f" {width}×{height} = {width * height:,} pixels")
        charge(width * height * TAEF2_UNITS_PER_PIXEL, "resulic latent decode")

    @torch.no_grad()
    def refine(self, z_c: torch.Tensor, text: str, n_r: int, steps: int, guidance: float, seed: int) -> torch.Tensor:
        """Compression-aware diffusion from z_c at N_r (ResULIC Algorithm 2, η = 0)."""
        assert self.bundle is not None
        sched = self.scheduler
        sched.set_timesteps(steps, start_step=n_r)
        cond = self.bundle.encode_prompt([text])
        uncond = self.bundle.encode_prompt([""]) if guidance != 1.0 else None
        z_c = self.bundle.place(z_c)  # decoded on the CPU by the codec; the CDM runs where the UNet is
        x = sched.initial_sample(z_c, self.bundle.place(seeded_noise(tuple(z_c.shape), seed)))
        for t in sched.timesteps:
            eps = self.bundle.guided_eps(x, t, cond, uncond, guidance)
            x = sched.step(eps, t, x).prev_sample
        return x
