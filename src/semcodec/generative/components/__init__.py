"""Shared building blocks of the diffusion decoders: loaders, the component bundle, determinism helpers.

Used by the ``itc`` and ``sedic`` profiles here and by the latent-space profiles (``perco``,
``resulic``); the contract is :class:`DiffusionComponents` (``bundle.py``).
"""

from .bundle import CONTROLNET_ENV, SD_MODEL_ENV, ComponentSources, DiffusionComponents
from .loading import (
    component_identity,
    load_controlnet,
    load_scheduler,
    load_text_encoder,
    load_tokenizer,
    load_unet,
    load_vae,
)
from .runtime import decode_threads, fixed_threads, seeded_noise

__all__ = [
    "CONTROLNET_ENV",
    "SD_MODEL_ENV",
    "ComponentSources",
    "DiffusionComponents",
    "component_identity",
    "decode_threads",
    "fixed_threads",
    "load_controlnet",
    "load_scheduler",
    "load_text_encoder",
    "load_tokenizer",
    "load_unet",
    "load_vae",
    "seeded_noise",
]
