"""``DiffusionComponents``: the named parts of a latent diffusion decoder, diffusers-style.

::

    prompt ──tokenizer──► ids ──text_encoder──► c (B×L×D)
    image ──vae.encode──► z0 ──(scheduler.add_noise)──► z_t ──┐
    reference image ──controlnet(z_t, t, c)──► residuals ─────┤
                                   unet(z_t, t, c, residuals) ─► ε ──scheduler.step──► z_{t-1}
    z_0 ──vae.decode──► image

Each part is loaded on first use from its source (hub id or folder) with the loaders of
:mod:`.loading`; ``identities`` fingerprints every source so a profile can put them into its
``config()`` without loading any weights at encode time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ...errors import MissingComponentError
from . import loading

SD_MODEL_ENV = "SEMCODEC_SD_MODEL"
CONTROLNET_ENV = "SEMCODEC_CONTROLNET"

_PARTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
_DTYPE_NAMES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16, "fp64": torch.float64}


def torch_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """``"fp16"`` / ``"float16"`` / ``torch.float16`` → ``torch.float16``."""
    if isinstance(dtype, torch.dtype):
        return dtype
    found = _DTYPE_NAMES.get(str(dtype)) or getattr(torch, str(dtype), None)
    if not isinstance(found, torch.dtype):
        raise MissingComponentError(f"unknown dtype {dtype!r}; use one of fp32, fp16, bf16")
    return found


@dataclass
class ComponentSources:
    """Where each part comes from: ``model`` for the whole pipeline folder/id, per-part overrides."""

    model: str | None = None
    unet: str | None = None
    vae: str | None = None
    text_encoder: str | None = None
    tokenizer: str | None = None
    scheduler: str | None = None
    controlnet: str | None = None
    scheduler_kind: str | None = None
    revision: str | None = None
    control: str | None = None  # ControlNet condition: "latent" / "pixel" (None: as the ControlNet folder says)

    @classmethod
    def from_options(cls, model: str | None = None, controlnet: str | None = None, *,
                     use_controlnet_env: bool = True, **parts: str | None) -> ComponentSources:
        """Options first, then ``$SEMCODEC_SD_MODEL`` / ``$SEMCODEC_CONTROLNET``."""
        model = model or os.environ.get(SD_MODEL_ENV) or None
        if controlnet is None and use_controlnet_env:
            controlnet = os.environ.get(CONTROLNET_ENV) or None
        return cls(model=model, controlnet=controlnet, **parts)

    def source(self, part: str) -> tuple[str, str | None]:
        """``(source, subfolder)`` of one part; an override folder is used as the part itself."""
        own = getattr(self, part)
        if own:
            return str(own), (part if part != "controlnet" else None)
        if part == "controlnet":
            raise MissingComponentError("no ControlNet configured: set SEMCODEC_CONTROLNET or --set controlnet=...")
        if not self.model:
            raise MissingComponentError(
                f"no diffusion model configured for the {part}: set {SD_MODEL_ENV} to a diffusers Stable Diffusion"
                " folder or hub id (e.g. stabilityai/stable-diffusion-2-1-base), or --set model=..."
            )
        return self.model, part

    def identities(self, with_controlnet: bool) -> dict[str, str]:
        parts = _PARTS + (("controlnet",) if with_controlnet else ())
        out = {}
        for p in parts:
            src, sub = self.source(p)
            out[p] = loading.component_identity(src, sub, revision=self.revision)
        if self.scheduler_kind:
            out["scheduler_kind"] = self.scheduler_kind
        return out


@dataclass
class DiffusionComponents:
    """Lazily loaded UNet / VAE / text encoder / tokenizer / scheduler (+ optional ControlNet)."""

    sources: ComponentSources
    with_controlnet: bool = False
    device: str = "cpu"
    dtype: torch.dtype = torch.float32
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_sources(cls, model: str | None = None, *, with_controlnet: bool = False, device: str = "cpu",
                     dtype: str | torch.dtype = torch.float32, **parts: Any) -> DiffusionComponents:
        return cls(ComponentSources.from_options(model, **parts), with_controlnet=with_controlnet, device=device,
                   dtype=torch_dtype(dtype))

    def place(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` on the models' device and, when floating point, in their dtype (noise, masks, maps)."""
        return x.to(self.device, self.dtype) if x.is_floating_point() else x.to(self.device)

    # ---- identity (no weights loaded)
    @property
    def identities(self) -> dict[str, str]:
        if "identities" not in self._cache:
            self._cache["identities"] = self.sources.identities(self.with_controlnet)
        return self._cache["identities"]

    # ---- parts (loaded on first use)
    def _get(self, part: str) -> Any:
        if part not in self._cache:
            src, sub = self.sources.source(part)
            rev = self.sources.revision
            if part == "unet":
                obj = loading.load_unet(src, sub, revision=rev, dtype=self.dtype).to(self.device)
            elif part == "vae":
                obj = loading.load_vae(src, sub, revision=rev, dtype=self.dtype).to(self.device)
            elif part == "text_encoder":
                obj = loading.load_text_encoder(src, sub, revision=rev, dtype=self.dtype).to(self.device)
            elif part == "tokenizer":
                obj = loading.load_tokenizer(src, sub, revision=rev)
            elif part == "scheduler":
                obj = loading.load_scheduler(src, sub, revision=rev, kind=self.sources.scheduler_kind)
            elif part == "controlnet":
                obj = loading.load_controlnet(src, sub, revision=rev, dtype=self.dtype,
                                              kind=self.sources.control).to(self.device)
            else:
                raise KeyError(part)
            self._cache[part] = obj
        return self._cache[part]

    @property
    def unet(self) -> Any:
        return self._get("unet")

    @property
    def vae(self) -> Any:
        return self._get("vae")

    @property
    def text_encoder(self) -> Any:
        return self._get("text_encoder")

    @property
    def tokenizer(self) -> Any:
        return self._get("tokenizer")

    @property
    def scheduler(self) -> Any:
        return self._get("scheduler")

    @property
    def controlnet(self) -> Any:
        return self._get("controlnet") if self.with_controlnet else None

    # ---- geometry
    @property
    def vae_scale_factor(self) -> int:
        cfg = self.vae.config
        chans = getattr(cfg, "block_out_channels", None) or getattr(cfg, "encoder_block_out_channels", None)
        return 2 ** (len(chans) - 1) if chans else 8

    @property
    def size_multiple(self) -> int:
        """Image sides must be multiples of this (VAE factor × UNet downsampling)."""
        return self.vae_scale_factor * 2 ** (len(self.unet.config.block_out_channels) - 1)

    # ---- conversions
    @torch.no_grad()
    def encode_prompt(self, texts: list[str]) -> torch.Tensor:
        tok = self.tokenizer
        max_len = min(int(tok.model_max_length), int(self.text_encoder.config.max_position_embeddings))
        ids = tok(list(texts), padding="max_length", max_length=max_len, truncation=True, return_tensors="pt").input_ids
        return self.text_encoder(ids.to(self.device))[0].to(self.dtype)

    def token_ids(self, text: str) -> list[int]:
        """Token ids of ``text`` as placed in the prompt (special tokens included), for attention indexing."""
        tok = self.tokenizer
        max_len = min(int(tok.model_max_length), int(self.text_encoder.config.max_position_embeddings))
        return list(tok(text, max_length=max_len, truncation=True).input_ids)

    def to_image_tensor(self, image: np.ndarray) -> torch.Tensor:
        """H×W×3 uint8 → 1×3×H×W in [-1, 1]."""
        x = torch.from_numpy(np.array(image, dtype=np.uint8, copy=True)).permute(2, 0, 1)[None].float() / 127.5 - 1.0
        return x.to(self.device, self.dtype)

    @torch.no_grad()
    def encode_image(self, image: np.ndarray) -> torch.Tensor:
        """Deterministic latent: posterior mean (KL) or encoder output (Tiny), scaled like diffusers pipelines."""
        vae = self.vae
        out = vae.encode(self.to_image_tensor(image))
        z = out.latent_dist.mean if hasattr(out, "latent_dist") else out.latents
        shift = getattr(vae.config, "shift_factor", None) or 0.0
        return (z - shift) * float(getattr(vae.config, "scaling_factor", 1.0))

    @torch.no_grad()
    def decode_latents(self, z: torch.Tensor) -> np.ndarray:
        vae = self.vae
        shift = getattr(vae.config, "shift_factor", None) or 0.0
        x = vae.decode(self.place(z) / float(getattr(vae.config, "scaling_factor", 1.0)) + shift).sample
        x = ((x[0].float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        return x.permute(1, 2, 0).cpu().numpy()

    def control_image(self, image: np.ndarray) -> torch.Tensor:
        """ControlNet condition: the VAE latent of ``image`` for a latent (DiffBIR IRControlNet) ControlNet,
        else 1×3×H×W in [0, 1] (diffusers' pixel-hint convention)."""
        from .latent_control import is_latent_controlnet

        if is_latent_controlnet(self.controlnet):
            return self.encode_image(image)
        x = torch.from_numpy(np.array(image, dtype=np.uint8, copy=True)).permute(2, 0, 1)[None].float() / 255.0
        return x.to(self.device, self.dtype)

    # ---- one network evaluation
    def eps(self, z: torch.Tensor, t: torch.Tensor | int, cond: torch.Tensor, control: torch.Tensor | None = None,
            control_scale: float = 1.0) -> torch.Tensor:
        """UNet prediction at (z, t) given the prompt embedding, with ControlNet residuals when ``control``."""
        down = mid = None
        if control is not None and self.controlnet is not None:
            down, mid = self.controlnet(z, t, encoder_hidden_states=cond, controlnet_cond=control,
                                        conditioning_scale=float(control_scale), return_dict=False)
        return self.unet(z, t, encoder_hidden_states=cond, down_block_additional_residuals=down,
                         mid_block_additional_residual=mid).sample

    def guided_eps(self, z: torch.Tensor, t: torch.Tensor | int, cond: torch.Tensor, uncond: torch.Tensor | None,
                   guidance: float, control: torch.Tensor | None = None, control_scale: float = 1.0) -> torch.Tensor:
        """Classifier-free guidance ε_u + w(ε_c − ε_u); two batch-1 passes so results never depend on batching."""
        e_c = self.eps(z, t, cond, control, control_scale)
        if uncond is None or guidance == 1.0:
            return e_c
        e_u = self.eps(z, t, uncond, control, control_scale)
        return e_u + guidance * (e_c - e_u)
