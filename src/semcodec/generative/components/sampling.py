"""Shared denoising loops: SDEdit-style img2img / ControlNet restoration with classifier-free guidance.

::

    base image ─pad─► vae.encode ─► z0 ─add_noise(t_start, seed)─► z ─┐   (strength < 1)
                                        seeded noise ─────────────► z ─┤   (strength = 1)
    for t in timesteps[t_start:]:  z ← step(ε_u + w(ε_c − ε_u), t, z)  ◄┘   (ControlNet on the base image)
    z ─► vae.decode ─crop─► image

Everything that changes the output (seed, steps, strength, guidance, control scale) is an argument,
so a profile can write it into its PARAMS stream and the decoder replays it exactly.
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .bundle import DiffusionComponents
from .runtime import seeded_noise


@dataclass(frozen=True)
class SamplerSettings:
    seed: int = 0
    steps: int = 20
    strength: float = 0.5
    guidance: float = 4.0
    control_scale: float = 1.0


def pad_to_multiple(image: np.ndarray, multiple: int) -> np.ndarray:
    """Edge-pad H×W×3 to multiples of ``multiple`` (bottom/right), so the UNet sees whole latent blocks."""
    h, w = image.shape[:2]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return image
    return np.pad(image, ((0, ph), (0, pw), (0, 0)), mode="edge")


def fresh_scheduler(bundle: DiffusionComponents, steps: int) -> Any:
    """A private copy of the scheduler with its timesteps set (multistep schedulers keep state)."""
    sched = copy.deepcopy(bundle.scheduler)
    sched.set_timesteps(int(steps))
    return sched


def start_index(steps: int, strength: float) -> int:
    """First timestep index for an img2img strength in (0, 1] (diffusers' convention, ≥ 1 step)."""
    run = min(steps, max(1, int(round(steps * float(strength)))))
    return steps - run


def initial_latent(bundle: DiffusionComponents, sched: Any, z0: torch.Tensor | None, shape: tuple[int, ...],
                   seed: int, strength: float, t_start: torch.Tensor) -> torch.Tensor:
    """z at the first timestep: pure seeded noise (strength ≥ 1 or no z0) or z0 noised to ``t_start``."""
    noise = seeded_noise(shape, seed).to(bundle.device, bundle.dtype)
    if z0 is None or strength >= 1.0:
        return noise * float(getattr(sched, "init_noise_sigma", 1.0))
    return sched.add_noise(z0, noise, t_start.reshape(1))


def step_generator(seed: int) -> torch.Generator:
    """Generator for stochastic schedulers (DDPM, ancestral); DDIM with η = 0 ignores it."""
    return torch.Generator(device="cpu").manual_seed(int(seed) + 1)


@torch.no_grad()
def restore(bundle: DiffusionComponents, image: np.ndarray, prompt: str, settings: SamplerSettings,
            control_image: np.ndarray | None = None) -> np.ndarray:
    """Diffusion restoration of ``image`` conditioned on ``prompt`` (and on ``control_image`` via ControlNet).

    img2img when ``strength < 1`` (start from the noised latent of ``image``), generation from seeded
    noise guided by the ControlNet when ``strength == 1``. Output has ``image``'s size.
    """
    h, w = image.shape[:2]
    mult = bundle.size_multiple
    padded = pad_to_multiple(image, mult)
    cond = bundle.encode_prompt([prompt])
    uncond = bundle.encode_prompt([""]) if settings.guidance != 1.0 else None
    control = bundle.control_image(pad_to_multiple(control_image, mult)) if control_image is not None else None
    sched = fresh_scheduler(bundle, settings.steps)
    first = start_index(settings.steps, settings.strength)
    timesteps = sched.timesteps[first * getattr(sched, "order", 1):]
    z0 = bundle.encode_image(padded) if settings.strength < 1.0 else None
    f = bundle.vae_scale_factor
    shape = (1, int(bundle.unet.config.in_channels), padded.shape[0] // f, padded.shape[1] // f)
    z = initial_latent(bundle, sched, z0, shape, settings.seed, settings.strength, timesteps[0])
    gen = step_generator(settings.seed)
    for t in timesteps:
        zin = sched.scale_model_input(z, t)
        eps = bundle.guided_eps(zin, t, cond, uncond, settings.guidance, control, settings.control_scale)
        z = scheduler_step(sched, eps, t, z, gen)
    return bundle.decode_latents(z)[:h, :w]


def scheduler_step(sched: Any, eps: torch.Tensor, t: torch.Tensor, z: torch.Tensor,
                   gen: torch.Generator) -> torch.Tensor:
    """``sched.step(...).prev_sample``, passing the seeded generator to schedulers that draw noise."""
    if "generator" in inspect.signature(sched.step).parameters:
        return sched.step(eps, t, z, generator=gen).prev_sample
    return sched.step(eps, t, z).prev_sample
