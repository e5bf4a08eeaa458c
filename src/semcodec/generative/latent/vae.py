"""One interface over the autoencoders a latent-space profile can decode with.

``vae`` option values:
- ``"taef2"`` (or ``"taef2:<folder>"``): the tiny FLUX.2 autoencoder of :mod:`.taef2`;
- anything else: a diffusers ``AutoencoderKL`` / ``AutoencoderTiny`` folder or hub id, loaded with the
  shared :func:`semcodec.generative.components.load_vae` (``subfolder="vae"`` when present).

Latents are in the *diffusion* space (diffusers: ``(mean − shift)·scaling_factor``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch

from .taef2 import TAEF2, default_taef2_dir, taef2_unavailable_reason

if TYPE_CHECKING:
    from ..components import DiffusionComponents


class LatentSpace(Protocol):
    channels: int
    factor: int
    identity: str

    def encode(self, image: np.ndarray) -> torch.Tensor: ...

    def decode(self, z: torch.Tensor) -> np.ndarray: ...


def _to01(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255.0


class TAEF2Space:
    factor = 8

    def __init__(self, folder: str | Path | None = None) -> None:
        self.model = TAEF2.from_dir(folder)
        self.channels = self.model.latent_channels
        self.identity = f"taef2@{self.model.digest}"

    @torch.no_grad()
    def encode(self, image: np.ndarray) -> torch.Tensor:
        return self.model.encode(_to01(image))

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> np.ndarray:
        """``z`` from wherever the diffusion model ran; TAEF2 itself stays on the CPU in float32, tiled."""
        return self.model.decode_uint8(z.to("cpu", torch.float32))


class DiffusersSpace:
    """The VAE of a :class:`DiffusionComponents` bundle, with its scaling conventions."""

    def __init__(self, bundle: DiffusionComponents) -> None:
        from ..components import component_identity

        self.bundle = bundle
        src, sub = bundle.sources.source("vae")
        self.identity = component_identity(src, sub, revision=bundle.sources.revision)
        self.channels = int(bundle.vae.config.latent_channels)
        self.factor = bundle.vae_scale_factor

    def encode(self, image: np.ndarray) -> torch.Tensor:
        return self.bundle.encode_image(image)

    def decode(self, z: torch.Tensor) -> np.ndarray:
        return self.bundle.decode_latents(z)


def vae_unavailable_reason(spec: str) -> str | None:
    if is_taef2(spec):
        return taef2_unavailable_reason(spec[6:] or None)
    return None


def is_taef2(spec: str | None) -> bool:
    return bool(spec) and (spec == "taef2" or str(spec).startswith("taef2:"))


def load_latent_space(spec: str | None = "taef2", bundle: DiffusionComponents | None = None) -> LatentSpace:
    """``"taef2[:folder]"`` → :class:`TAEF2Space`; otherwise the VAE named by ``spec`` (or the bundle's own)."""
    if is_taef2(spec):
        return TAEF2Space(str(spec)[6:] or default_taef2_dir())
    if bundle is None:
        from ..components import DiffusionComponents

        bundle = DiffusionComponents.from_sources(vae=spec)
    elif spec:
        bundle.sources.vae = spec
    return DiffusersSpace(bundle)
