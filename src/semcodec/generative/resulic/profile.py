"""``resulic`` profile: latent codec in the VAE space + semantic-residual text + compression-aware diffusion.

::

    encode: image ─pad─► VAE.encode ─► z ─► latent hyperprior (rate: q-step ladder) ─► LATENT
            z_c = decoded latent ─► N_r: calibrated table (q index) or proxy (rel. error) ─┐
            Srr residual (captioner + LLM, or the user caption) ─► text coder ─► TEXT       │
              (pfo=true: token ids optimised for this image ─► clip-ids coder ─► TEXT)     │
              (no TEXT at all without a diffusion model: nothing would read it)           │
            seed, steps, N_r, guidance, diffusion flag [, sampler: PARAMS v2] ─► PARAMS ◄──┘
    decode: LATENT ─► z_c ─┬─(no diffusion model)────────────────────────────► VAE.decode ─► image
                           └─► z_{N_r} = √ᾱ z_c + σ ε(seed) ─► CDM sampler (paper's Algorithm 2,
                                η = 0, text CFG; PARAMS v1 files: the earlier sampler) ─► VAE.decode ─► crop

Defaults run here: TAEF2 autoencoder + the shipped latent codec (``weights/resulic_latent_taef2``),
no diffusion (the decoder output is the TAEF2 decode of z_c). With ``--set model=DIR`` (a diffusers
folder whose UNet works in the same latent space as the VAE/codec) decoding runs the CDM sampler.
Side parameters travel in PARAMS; model ids/hashes are in :meth:`ResulicProfile.config`.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch

from ...budget import charge
from ...container import Stream, StreamKind, stream_cost
from ...container.params import pack_params, unpack_params
from ...entropy.varint import decode_uvarint
from ...errors import FormatError, ImageTooLargeError, MissingComponentError, RateError
from ...paths import PACKAGE_WEIGHTS
from ...profiles import EncodeRequest, Profile, option
from ...text.base import TEXT_CODERS
from ..components import DiffusionComponents, component_identity, fixed_threads, seeded_noise
from ..components.budget import check_budget, decode_budget, passes
from ..components.options import DiffusionOptions
from ..components.sampling import pad_to_multiple
from ..latent.vae import is_taef2, load_latent_space, vae_unavailable_reason
from .nr_table import TABLE_NAME, NrTable, default_table_path

if TYPE_CHECKING:  # compressai and diffusers load with the codec and the sampler, not with the profile class
    from ..latent.codec import LatentHyperprior
    from .scheduler import CompressionAwareScheduler

MODEL_ENV = "SEMCODEC_RESULIC_MODEL"
VAE_ENV = "SEMCODEC_RESULIC_VAE"
CODEC_ENV = "SEMCODEC_RESULIC_CODEC"
ADAPTER_ENV = "SEMCODEC_RESULIC_ADAPTER"
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
#: CDM samplers; the index is the PARAMS v2 ``sampler`` value (v1 files always use "resfusion")
SAMPLERS = ("resfusion", "paper")
CLIP_MEAN, CLIP_STD = (0.4815, 0.4578, 0.4082), (0.2686, 0.2613, 0.2758)  # CLIP's image normalisation


@dataclass(frozen=True)
class ResulicSettings(DiffusionOptions):
    codec: str | None = option(None, f"latent codec folder (default ${CODEC_ENV} or the shipped TAEF2 codec)")
    adapter: str | None = option(None, f"visual adapter on z_c (default ${ADAPTER_ENV}, else the model folder's"
                                 " adapter/ when present; 'off': none)")
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
    # new options: neither wire nor config fields, so the v1 PARAMS layout and the config hash stay as they were
    sampler: str = option("paper", "CDM sampler of new files: paper (Eq. 11/15, Algorithm 2; PARAMS v2) or"
                          " resfusion (the earlier one; PARAMS v1)", choices=SAMPLERS)
    nr_mode: str | None = option(None, "N_r from: table (calibrated rate point -> N_r, default when the model"
                                 " folder has one) or proxy (latent coding error)", choices=("table", "proxy"))
    nr_table: str | None = option(None, f"N_r table JSON (default {TABLE_NAME} in the model folder)")
    pfo: bool = option(False, "Pfo: optimise the prompt's token ids for this image (sent with the clip-ids coder)")
    pfo_steps: int = option(20, "Pfo optimisation steps", low=1, high=10000)
    pfo_lr: float = option(0.3, "Pfo AdamW learning rate", low=0.0)
    pfo_clip: str | None = option(None, "CLIP model folder (transformers CLIPModel whose text tower is the"
                                  " diffusion model's text encoder) for Pfo's CLIP term; none: denoising loss only")
    pfo_clip_weight: float = option(1.0, "weight of Pfo's CLIP term", low=0.0)


PARAMS_SCHEMA: list[tuple[str, Any]] = [("version", "u"), ("diffusion", "u"), *ResulicSettings.wire_schema()]
#: version 2 (new files with a diffusion model): the v1 fields + the sampler (index in SAMPLERS)
PARAMS_SCHEMA_V2: list[tuple[str, Any]] = [*PARAMS_SCHEMA, ("sampler", "u")]


def _digest(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _adapter_source(option: str | None, model: str | None) -> str | None:
    """The adapter folder: the option, ``$SEMCODEC_RESULIC_ADAPTER``, else ``MODEL/adapter`` when the model
    is a local folder holding one (what ``semcodec train resulic-cdm`` writes); ``off`` disables it."""
    from .denoiser import ADAPTER_SUBFOLDER

    chosen = option or os.environ.get(ADAPTER_ENV) or None
    if chosen is not None:
        return None if chosen.strip().lower() in ("off", "none") else chosen
    if model and (Path(model) / ADAPTER_SUBFOLDER / "config.json").is_file():
        return str(Path(model) / ADAPTER_SUBFOLDER)
    return None


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
        self.adapter = _adapter_source(s.adapter, self.model)
        if self.adapter:
            parts.update(with_controlnet=True, controlnet=self.adapter, use_controlnet_env=False, control="latent")
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
            if self.adapter:  # absent without one, so files written before the adapter keep their hash
                ids["adapter"] = component_identity(self.adapter, None, revision=None)
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

        self._check_size(request.width, request.height)  # never write a file the decoder refuses

        z = self._encode_latent(pad_to_multiple(request.image, self._multiple()))
        h, w = z.shape[-2:]

        def attempt(k: int) -> tuple[bytes, torch.Tensor]:
            with fixed_threads(), torch.no_grad():
                payload = self.codec.compress_latent(z, k)
                return payload, self.codec.decompress_latent(payload, h, w)

        params_len = len(self._params(1, MAX_STEPS - 1)) + 2  # upper bound: varints of n_r/steps
        caption_cost = 0
        if request.caption and self.bundle is not None:
            caption_cost = stream_cost(len(encode_text_stream(request.caption, get_text_coder(self.text_coder))) + 64)
        if request.quality is not None:
            k = int(self.quality.check(request.quality, self.name))
            payload, z_c = attempt(k)
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
        n_r = 0
        if self.bundle is None:
            if request.caption or self.srr:  # the TAEF2-only decoder has no text input: nothing to send
                warnings.warn("resulic without a diffusion model (--set model=) does not use text: the caption"
                              " / semantic residual is not stored", UserWarning, stacklevel=2)
        else:
            n_r = self.n_r if self.n_r is not None else self._start_step(k, rel)
            self._check_cost(self.steps, n_r, self.guidance, (request.width, request.height))
            text = self._residual_text(request, z_c)
            if self.settings.pfo and text:
                from ...text.clip_ids import ids_to_text

                ids = self._pfo_ids(request.image, text, z, z_c, n_r)
                streams.append(Stream(StreamKind.TEXT, encode_text_stream(ids_to_text(ids), get_text_coder("clip-ids"))))
            elif text:
                streams.append(Stream(StreamKind.TEXT, encode_text_stream(text, get_text_coder(self.text_coder))))
        streams[0] = Stream(StreamKind.PARAMS, self._params(int(self.bundle is not None), n_r))
        if request.max_bytes is not None and sum(s.framed_size() for s in streams) > request.max_bytes:
            raise RateError("resulic residual text does not fit the budget; shorten the caption or raise the rate")
        return streams

    # ------------------------------------------------------------------ N_r
    def nr_table(self) -> NrTable | None:
        """The calibrated rate → N_r table for this model and codec, if there is one."""
        path = Path(self.settings.nr_table) if self.settings.nr_table else default_table_path(self.model)
        if path is None or not path.is_file():
            if self.settings.nr_table:
                raise MissingComponentError(f"N_r table {path} not found")
            return None
        table = NrTable.load(path)
        if table.codec != _digest(self.codec_dir / "model.safetensors"):
            if self.settings.nr_table or self.settings.nr_mode == "table":
                raise MissingComponentError(f"N_r table {path} was fitted for another latent codec; refit it"
                                            " with `semcodec calibrate-resulic-nr`")
            return None
        return table

    def nr_mode(self) -> str:
        """``table`` when asked for or when the model has a table for this codec, else ``proxy``."""
        if self.settings.nr_mode:
            return self.settings.nr_mode
        return "table" if self.nr_table() is not None else "proxy"

    def _start_step(self, q_index: int, rel_mse: float) -> int:
        if self.nr_mode() == "table":
            table = self.nr_table()
            if table is None:
                raise MissingComponentError(f"nr_mode=table but no N_r table ({TABLE_NAME} in the model folder or"
                                            " --set nr_table=); fit one with `semcodec calibrate-resulic-nr`")
            return table.n_r_for(q_index)
        from .scheduler import start_step_for_distortion

        return start_step_for_distortion(self.scheduler.alphas_cumprod, rel_mse)

    # ------------------------------------------------------------------ Pfo
    def _pfo_ids(self, image: np.ndarray, text: str, z: torch.Tensor, z_c: torch.Tensor, n_r: int) -> list[int]:
        """Pfo (paper §3.2): the prompt's content token ids after optimisation for this image."""
        from .pfo import content_ids, pfo_objective, run_pfo

        assert self.bundle is not None
        tok = self.bundle.tokenizer
        ids = content_ids(tok, text, self._prompt_length())
        for part in (self.bundle.unet, self.bundle.text_encoder):  # only the prompt is optimised
            part.requires_grad_(False)
        clip = self._pfo_clip(image)
        objective = pfo_objective(self._denoiser(self.bundle.place(z_c)), self.bundle.place(z), self.bundle.place(z_c), n_r,
                                  self.sampler(n_r), self.steps, seed=self.seed, clip=clip,
                                  clip_weight=self.settings.pfo_clip_weight)
        return run_pfo(self.bundle.text_encoder, tok, ids, objective, self._prompt_length(),
                       steps=self.settings.pfo_steps, lr=self.settings.pfo_lr)

    def _pfo_clip(self, image: np.ndarray) -> Any:
        """(unit CLIP image features of the original, text projection) for Pfo's CLIP term, or None.

        The text side is the diffusion model's own text encoder (pooled output) through the CLIP model's
        text projection, so the CLIP model must be the one the text encoder comes from."""
        if not self.settings.pfo_clip:
            return None
        from transformers import CLIPModel

        assert self.bundle is not None
        clip = CLIPModel.from_pretrained(self.settings.pfo_clip).to(self.bundle.device, self.bundle.dtype)
        clip.requires_grad_(False)
        if clip.text_projection.in_features != int(self.bundle.text_encoder.config.hidden_size):
            raise MissingComponentError("pfo_clip: the CLIP model's text tower does not match the diffusion model's"
                                        " text encoder (give the CLIP model the text encoder comes from)")
        size = int(clip.config.vision_config.image_size)
        x = torch.from_numpy(np.array(image, dtype=np.uint8, copy=True)).permute(2, 0, 1)[None].float() / 255.0
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bicubic", align_corners=False)
        mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
        with torch.no_grad():
            feats = clip.get_image_features(pixel_values=self.bundle.place((x - mean) / std))
        feats = feats / feats.norm(dim=-1, keepdim=True)
        return feats, clip.text_projection

    def _prompt_length(self) -> int:
        assert self.bundle is not None
        return min(int(self.bundle.tokenizer.model_max_length),
                   int(self.bundle.text_encoder.config.max_position_embeddings))

    def _encode_latent(self, padded: np.ndarray) -> torch.Tensor:
        """VAE latent of the padded image; the last one is kept so several rate points encode once."""
        key = hashlib.sha1(padded.tobytes() + str(padded.shape).encode()).hexdigest()
        if getattr(self, "_last", (None,))[0] != key:
            with fixed_threads(), torch.no_grad():  # the codec codes exactly on the CPU in float32
                self._last = (key, self.space.encode(padded).to("cpu", torch.float32))
        return self._last[1]

    def _params(self, diffusion: int, n_r: int) -> bytes:
        values = {"version": 1, "diffusion": diffusion, **self.settings.wire_values(), "n_r": n_r}
        if diffusion and self.settings.sampler != "resfusion":  # the paper's sampler: PARAMS v2
            return pack_params(PARAMS_SCHEMA_V2, {**values, "version": 2,
                                                  "sampler": SAMPLERS.index(self.settings.sampler)})
        return pack_params(PARAMS_SCHEMA, values)

    @staticmethod
    def _unpack(payload: bytes) -> dict[str, Any]:
        """PARAMS of either version; v1 files (and v2 with sampler 0) use the earlier sampler."""
        version, _ = decode_uvarint(payload, 0)
        if version not in (1, 2):
            raise FormatError(f"resulic PARAMS version {version} is not known to this build")
        p = unpack_params(PARAMS_SCHEMA if version == 1 else PARAMS_SCHEMA_V2, payload)
        if version == 1:
            p["sampler"] = 0
        if not 1 <= p["steps"] <= MAX_STEPS or p["diffusion"] not in (0, 1) or not 0 <= p["sampler"] < len(SAMPLERS):
            raise FormatError("resulic PARAMS out of range")
        if version == 2 and not p["diffusion"]:
            raise FormatError("resulic PARAMS v2 is only written with a diffusion model")
        return p

    # ------------------------------------------------------------------ decode
    def decode(self, streams: list[Stream], width: int, height: int,
               texts: Sequence[str] | None = None) -> np.ndarray:
        if len(streams) < 2 or streams[0].kind != StreamKind.PARAMS or streams[1].kind != StreamKind.LATENT:
            raise FormatError("resulic file must start with PARAMS, LATENT streams")
        p = self._unpack(streams[0].payload)
        text, ids = "", None
        if len(streams) > 2 and streams[2].kind == StreamKind.TEXT:
            text = self.text_of(streams, 2, texts)
            ids = self._sent_ids(streams[2].payload, text)
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
                z_c = self.refine(z_c, text, int(p["n_r"]), int(p["steps"]), float(p["guidance"]), int(p["seed"]),
                                  sampler=SAMPLERS[int(p["sampler"])], ids=ids)
            img = self.space.decode(z_c)
        return img[:height, :width]

    @staticmethod
    def _sent_ids(payload: bytes, text: str) -> list[int] | None:
        """Token ids when the TEXT stream is a clip-ids stream of ids (Pfo), else None (a text prompt)."""
        from ...text import TEXT_CODERS
        from ...text.base import stream_coder_id

        if TEXT_CODERS.name_for_id(stream_coder_id(payload)) != "clip-ids":
            return None
        from ...text.clip_ids import text_to_ids

        return text_to_ids(text)

    def _check_cost(self, steps: int, n_r: int, guidance: float, size: tuple[int, int]) -> None:
        """The CDM runs at most N_r + 1 steps (its timesteps are N_r … 0), on the whole image."""
        run, p = min(steps, n_r + 1), passes(guidance, bool(self.adapter))
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

    def _denoiser(self, z_c: torch.Tensor, uncond: torch.Tensor | None = None, guidance: float = 1.0) -> Any:
        """The one denoiser of the CDM (samplers, Pfo): ``(z_n, t, text_emb) -> model output`` for this z_c,
        with classifier-free guidance when ``uncond`` is given.

        With a visual adapter the UNet also sees z_c at every call (:func:`.denoiser.predict_noise`);
        without one it is the plain UNet and z_c enters only through the sampler."""
        from .denoiser import predict_noise

        assert self.bundle is not None
        unet, adapter = self.bundle.unet, (self.bundle.controlnet if self.adapter else None)
        return lambda z_n, t, text_emb: predict_noise(unet, adapter, z_n, t, text_emb, z_c, uncond, guidance)

    def sampler(self, n_r: int) -> Any:
        """The paper's CDM sampler (Algorithm 2) for start step ``n_r`` over the model's noise schedule."""
        from .scheduler import ResidualCDMSampler

        return ResidualCDMSampler(self.scheduler.alphas_cumprod, n_r, str(self.scheduler.config.prediction_type))

    def embed_ids(self, ids: list[int]) -> torch.Tensor:
        """Prompt embedding of content token ids exactly as sent (start/end/padding added here)."""
        from .pfo import padded_ids

        assert self.bundle is not None
        seq = padded_ids(self.bundle.tokenizer, ids, self._prompt_length())
        return self.bundle.text_encoder(torch.tensor([seq], device=self.bundle.device))[0].to(self.bundle.dtype)

    @torch.no_grad()
    def refine(self, z_c: torch.Tensor, text: str, n_r: int, steps: int, guidance: float, seed: int,
               sampler: str = "paper", ids: list[int] | None = None) -> torch.Tensor:
        """Compression-aware diffusion from z_c at N_r (``paper``: Algorithm 2, η = 0; ``resfusion``: the
        sampler of PARAMS v1 files). ``ids``: a prompt sent as token ids (Pfo) instead of ``text``."""
        assert self.bundle is not None
        cond = self.embed_ids(ids) if ids is not None else self.bundle.encode_prompt([text])
        uncond = self.bundle.encode_prompt([""]) if guidance != 1.0 else None
        z_c = self.bundle.place(z_c)  # decoded on the CPU by the codec; the CDM runs where the UNet is
        noise = self.bundle.place(seeded_noise(tuple(z_c.shape), seed))
        if sampler == "paper":
            return self.sampler(n_r).sample(z_c, noise, self._denoiser(z_c), cond, steps, uncond, guidance)
        sched, denoise = self.scheduler, self._denoiser(z_c, uncond, guidance)
        sched.set_timesteps(steps, start_step=n_r)
        x = sched.initial_sample(z_c, noise)
        for t in sched.timesteps:
            x = sched.step(denoise(x, t, cond), t, x).prev_sample
        return x
