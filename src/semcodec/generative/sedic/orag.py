"""ORAG: object restoration with attention guidance (SEDIC), in two schedules.

``sequential`` (SEDIC's Algorithm 1, the default of new files): one full diffusion per stage, each
from fresh seeded noise, the ControlNet conditioned on the image the previous stage decoded::

    stage 0:   x_0 ← Diffuse(N steps, c_all, ControlNet(reference))                   (restore the reference)
    stage j:   x_j ← Diffuse(N_obj steps, c_j, ControlNet(x_{j−1})), j = 1..J          (one object each)
                 at every step t:  t > T′:  z ← z − η ∇_z E_j(z)                       (attention guidance)
                                   z_{t'} ← step(z_t)
                                   z_{t'} ← M_j ⊙ z_{t'} + (1 − M_j) ⊙ z^{(j−1)}_{t'}    (fusion with the previous
                                                                                         stage's latent at t')
    final:     x̂ ← Diffuse(N steps, c_all, ControlNet(x_J))                            (harmonise on c_all)

``parallel`` (the files written before the schedule was a setting): one shared trajectory, a private
scheduler per branch::

    z ──ε(z, t, c_all, ref)──► step ─────────────────────────────► ẑ_0          (overall description)
    z ──[t > T′: z ← z − η ∇_z E_j(z)]──ε(z, t, c_j, ref)──► step ─► ẑ_j        (object j = 1..J)
          ẑ_j ← M_j ⊙ ẑ_j + (1 − M_j) ⊙ ẑ_{j−1}                                 (mask fusion)
    z ← ẑ_J
    then the global pass: z noised to the global strength and denoised on c_all (ControlNet on ref).

In both, the cross-attention energy of object j over its name tokens k (A from :mod:`.attention`)::

    E_j = mean_k ( 1 − Σ_{m∈M_j} A_{m,k} / Σ_m A_{m,k} )²

Minimising E_j moves the object's attention mass inside its mask, so the object description is
rendered where the coded mask says.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from ..components import DiffusionComponents
from ..components.runtime import seeded_noise
from ..components.sampling import (
    fresh_scheduler,
    initial_latent,
    pad_to_multiple,
    scheduler_step,
    start_index,
    step_generator,
)

if TYPE_CHECKING:  # the capture processor imports diffusers: loaded when decoding, not with the profile
    from .attention import AttentionStore


#: the two ORAG schedules (index = PARAMS value): see the module doc
ORAG_MODES = ("parallel", "sequential")
#: where the guidance reads cross-attention (index = PARAMS value): see :mod:`.attention`; defined here
#: because :mod:`.attention` imports diffusers and the profile must not
ATTN_PLACES = ("all", "up-mid")
#: trajectory level of a stage's final (clean) latent, below every timestep
CLEAN = -1


@dataclass(frozen=True)
class OragSettings:
    seed: int = 0
    steps: int = 20  # N: steps of stage 0 and of the final stage (sequential), of every branch (parallel)
    strength: float = 1.0  # 1 = start from seeded noise; < 1 = from the noised reference / previous latent
    guidance: float = 4.0
    control_scale: float = 1.0
    eta: float = 40.0  # attention-guidance step size η
    t_prime: int = 500  # guidance only while t > T′ (timestep units of the scheduler)
    global_strength: float = 0.3  # parallel: strength of the final global pass (0 = none)
    mode: str = "sequential"  # ORAG_MODES
    object_steps: int = 10  # sequential: steps of each object stage
    attn_place: str = "up-mid"  # where guidance reads cross-attention (attention.ATTN_PLACES)


@dataclass(frozen=True)
class ObjectPrompt:
    """One object: its prompt (name first), the prompt positions of the name tokens, its latent-grid mask."""

    prompt: str
    token_positions: tuple[int, ...]
    mask: torch.Tensor  # 1×1×h×w in [0, 1]


def name_positions(bundle: DiffusionComponents, prompt: str, name: str) -> tuple[int, ...]:
    """Positions of ``name``'s tokens inside ``prompt``'s token ids; all content tokens if not found."""
    ids = bundle.token_ids(prompt)
    sub = bundle.token_ids(name)[1:-1]
    for i in range(1, len(ids) - len(sub) + 1):
        if sub and ids[i : i + len(sub)] == sub:
            return tuple(range(i, i + len(sub)))
    return tuple(range(1, max(2, len(ids) - 1)))


def latent_mask(mask: np.ndarray, shape: tuple[int, int], multiple_shape: tuple[int, int]) -> torch.Tensor:
    """Full-resolution bool mask → soft mask on the latent grid (area average of the padded mask)."""
    ph, pw = multiple_shape
    m = np.zeros((ph, pw), dtype=np.float32)
    m[: mask.shape[0], : mask.shape[1]] = mask
    t = torch.from_numpy(m)[None, None]
    return F.adaptive_avg_pool2d(t, shape) if tuple(t.shape[-2:]) != shape else t


def mask_attention_fraction(attn: torch.Tensor, mask: torch.Tensor, positions: tuple[int, ...]) -> torch.Tensor:
    """Σ_{m∈M} A_{m,k} / Σ_m A_{m,k} for each k in ``positions`` (``attn``: h·w × L, ``mask``: 1×1×h×w)."""
    a = attn[:, list(positions)]
    m = mask.reshape(-1, 1).to(a.device, a.dtype)
    return (m * a).sum(0) / a.sum(0).clamp_min(1e-12)


def attention_energy(attn: torch.Tensor, mask: torch.Tensor, positions: tuple[int, ...]) -> torch.Tensor:
    """E = mean_k (1 − fraction_k)² (the SEDIC guidance loss)."""
    return ((1.0 - mask_attention_fraction(attn, mask, positions)) ** 2).mean()


def attention_fraction_at(bundle: DiffusionComponents, store: AttentionStore, z: torch.Tensor, t: torch.Tensor,
                          cond: torch.Tensor, obj: ObjectPrompt, control: torch.Tensor | None,
                          control_scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One recorded UNet pass: (energy, mean mask fraction), both differentiable w.r.t. ``z``."""
    store.reset()
    store.recording = True
    try:
        bundle.eps(z, t, cond, control, control_scale)
    finally:
        store.recording = False
    attn = store.aggregate(z.shape[-2], z.shape[-1])
    store.reset()
    return attention_energy(attn, obj.mask, obj.token_positions), \
        mask_attention_fraction(attn, obj.mask, obj.token_positions).mean()


def guide_latent(bundle: DiffusionComponents, store: AttentionStore, z: torch.Tensor, t: torch.Tensor,
                 cond: torch.Tensor, obj: ObjectPrompt, eta: float, control: torch.Tensor | None = None,
                 control_scale: float = 1.0) -> torch.Tensor:
    """z ← z − η ∇_z E (one backward cross-attention guidance step; needs ``install_capture``)."""
    with torch.enable_grad():
        zg = z.detach().requires_grad_(True)
        energy, _ = attention_fraction_at(bundle, store, zg, t, cond, obj, control, control_scale)
        (grad,) = torch.autograd.grad(energy, zg)
    return (z - eta * grad).detach()


def orag_decode(bundle: DiffusionComponents, reference: np.ndarray, overall: str,
                objects: list[tuple[str, str, np.ndarray]], settings: OragSettings) -> np.ndarray:
    """Decode: reference image (H×W×3) + overall description + [(prompt, name, H×W bool mask)] → image."""
    if settings.mode == "sequential":
        return orag_sequential(bundle, reference, overall, objects, settings)
    if settings.mode != "parallel":
        raise ValueError(f"ORAG mode must be one of {', '.join(ORAG_MODES)}, got {settings.mode!r}")
    return orag_parallel(bundle, reference, overall, objects, settings)


def _prepare(bundle: DiffusionComponents, reference: np.ndarray, overall: str,
             objects: list[tuple[str, str, np.ndarray]], settings: OragSettings
             ) -> tuple[np.ndarray, tuple[int, ...], torch.Tensor, torch.Tensor | None, list[ObjectPrompt]]:
    """What both schedules start from: the padded reference, the latent shape, the overall and empty-prompt
    embeddings (the latter only with CFG) and the objects with their latent-grid masks."""
    padded = pad_to_multiple(reference, bundle.size_multiple)
    f = bundle.vae_scale_factor
    grid = (padded.shape[0] // f, padded.shape[1] // f)
    shape = (1, int(bundle.unet.config.in_channels), *grid)
    c_all = bundle.encode_prompt([overall])
    uncond = bundle.encode_prompt([""]) if settings.guidance != 1.0 else None
    objs = [ObjectPrompt(p, name_positions(bundle, p, n), bundle.place(latent_mask(m, grid, padded.shape[:2])))
            for p, n, m in objects]
    return padded, shape, c_all, uncond, objs


@torch.no_grad()
def orag_parallel(bundle: DiffusionComponents, reference: np.ndarray, overall: str,
                  objects: list[tuple[str, str, np.ndarray]], settings: OragSettings) -> np.ndarray:
    """The shared-trajectory schedule (module doc); the algorithm of the files written before ``orag``."""
    h, w = reference.shape[:2]
    padded, shape, c_all, uncond, objs = _prepare(bundle, reference, overall, objects, settings)
    control = bundle.control_image(padded) if bundle.controlnet is not None else None
    conds = [bundle.encode_prompt([o.prompt]) for o in objs]
    z0_ref = bundle.encode_image(padded) if settings.strength < 1.0 else None
    from .attention import AttentionStore, install_capture

    store = AttentionStore()
    gen = step_generator(settings.seed)
    with install_capture(bundle.unet, store, settings.attn_place):
        scheds = [fresh_scheduler(bundle, settings.steps) for _ in range(len(objs) + 1)]
        first = start_index(settings.steps, settings.strength)
        timesteps = scheds[0].timesteps[first:]
        z = initial_latent(bundle, scheds[0], z0_ref, shape, settings.seed, settings.strength, timesteps[0])
        for t in timesteps:
            zin = scheds[0].scale_model_input(z, t)
            eps = bundle.guided_eps(zin, t, c_all, uncond, settings.guidance, control, settings.control_scale)
            fused = scheduler_step(scheds[0], eps, t, z, gen)
            for j, (obj, cond) in enumerate(zip(objs, conds, strict=True)):
                zj = z
                if int(t) > settings.t_prime and settings.eta != 0.0:
                    zj = guide_latent(bundle, store, zj, t, cond, obj, settings.eta, control, settings.control_scale)
                zin = scheds[j + 1].scale_model_input(zj, t)
                eps = bundle.guided_eps(zin, t, cond, uncond, settings.guidance, control, settings.control_scale)
                zj_next = scheduler_step(scheds[j + 1], eps, t, zj, gen)
                fused = obj.mask * zj_next + (1.0 - obj.mask) * fused
            z = fused
        if settings.global_strength > 0:
            z = _global_pass(bundle, z, c_all, uncond, control, settings, gen)
    return bundle.decode_latents(z)[:h, :w]


def _global_pass(bundle: DiffusionComponents, z: torch.Tensor, c_all: torch.Tensor, uncond: torch.Tensor | None,
                 control: torch.Tensor | None, settings: OragSettings, gen: torch.Generator) -> torch.Tensor:
    """Harmonise the fused latent: noise it to ``global_strength`` and denoise on the overall description."""
    sched = fresh_scheduler(bundle, settings.steps)
    first = start_index(settings.steps, settings.global_strength)
    timesteps = sched.timesteps[first:]
    noise = seeded_noise(tuple(z.shape), settings.seed + 2).to(z.device, z.dtype)
    z = sched.add_noise(z, noise, timesteps[:1])
    for t in timesteps:
        zin = sched.scale_model_input(z, t)
        eps = bundle.guided_eps(zin, t, c_all, uncond, settings.guidance, control, settings.control_scale)
        z = scheduler_step(sched, eps, t, z, gen)
    return z


# ---------------------------------------------------------------------------------------- sequential
def fuse_latents(mask: torch.Tensor, obj: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
    """M ⊙ z_obj + (1 − M) ⊙ z_prev: the object stage inside its mask, the previous stage outside."""
    return mask * obj + (1.0 - mask) * prev


def level_of(trajectory: dict[int, torch.Tensor], level: int) -> torch.Tensor:
    """The previous stage's latent at noise level ``level`` (a timestep, or :data:`CLEAN`).

    Stage grids nest when N is a multiple of the object steps (SD's leading/trailing spacings), so the
    level is found exactly; otherwise the nearest recorded level stands in.
    """
    if level in trajectory:
        return trajectory[level]
    return trajectory[min(trajectory, key=lambda k: (abs(k - level), k))]


@dataclass
class _StageInputs:
    """What every stage shares: the bundle, the unconditional embedding, the latent shape, the settings."""

    bundle: DiffusionComponents
    store: AttentionStore
    uncond: torch.Tensor | None
    shape: tuple[int, ...]
    settings: OragSettings


def _run_stage(ctx: _StageInputs, control: torch.Tensor | None, cond: torch.Tensor, steps: int, seed: int,
               z_start: torch.Tensor | None, obj: ObjectPrompt | None = None,
               prev: dict[int, torch.Tensor] | None = None) -> dict[int, torch.Tensor]:
    """One full diffusion; returns its trajectory {level: latent} (last entry: the clean latent).

    With ``obj``: attention guidance while t > T′ and, after every step, fusion with ``prev`` (the
    previous stage's trajectory) at the level the step reached.
    """
    b, s = ctx.bundle, ctx.settings
    sched = fresh_scheduler(b, steps)
    timesteps = sched.timesteps[start_index(steps, s.strength):]
    z = initial_latent(b, sched, z_start, ctx.shape, seed, s.strength, timesteps[0])
    gen = step_generator(seed)
    trajectory = {int(timesteps[0]): z}
    for i, t in enumerate(timesteps):
        if obj is not None and int(t) > s.t_prime and s.eta != 0.0:
            z = guide_latent(b, ctx.store, z, t, cond, obj, s.eta, control, s.control_scale)
        zin = sched.scale_model_input(z, t)
        eps = b.guided_eps(zin, t, cond, ctx.uncond, s.guidance, control, s.control_scale)
        z = scheduler_step(sched, eps, t, z, gen)
        level = int(timesteps[i + 1]) if i + 1 < len(timesteps) else CLEAN
        if obj is not None and prev is not None:
            z = fuse_latents(obj.mask, z, level_of(prev, level))
        trajectory[level] = z
    return trajectory


def stage_seeds(seed: int, n_objects: int) -> tuple[int, list[int], int]:
    """Seeds of stage 0, of each object stage and of the final stage (independent of J for stages 0/final)."""
    return seed, [seed + 2 + j for j in range(n_objects)], seed + 1


@torch.no_grad()
def orag_sequential(bundle: DiffusionComponents, reference: np.ndarray, overall: str,
                    objects: list[tuple[str, str, np.ndarray]], settings: OragSettings) -> np.ndarray:
    """SEDIC's Algorithm 1 (module doc): stage 0 on the reference, one stage per object, a final stage."""
    from .attention import AttentionStore, install_capture

    h, w = reference.shape[:2]
    padded, shape, c_all, uncond, objs = _prepare(bundle, reference, overall, objects, settings)
    ctx = _StageInputs(bundle, AttentionStore(), uncond, shape, settings)
    s0, s_obj, s_final = stage_seeds(settings.seed, len(objs))
    partial = settings.strength < 1.0

    def control_of(image: np.ndarray) -> torch.Tensor | None:
        return bundle.control_image(image) if bundle.controlnet is not None else None

    with install_capture(bundle.unet, ctx.store, settings.attn_place):
        traj = _run_stage(ctx, control_of(padded), c_all, settings.steps, s0,
                          bundle.encode_image(padded) if partial else None)
        for obj, seed in zip(objs, s_obj, strict=True):
            z = traj[CLEAN]
            image = bundle.decode_latents(z)  # the previous stage's decoded image conditions this stage
            traj = _run_stage(ctx, control_of(image), bundle.encode_prompt([obj.prompt]), settings.object_steps,
                              seed, z if partial else None, obj, traj)
        z = traj[CLEAN]
        traj = _run_stage(ctx, control_of(bundle.decode_latents(z)), c_all, settings.steps, s_final,
                          z if partial else None)
    return bundle.decode_latents(traj[CLEAN])[:h, :w]
