"""Bounds on what one file may ask a diffusion decoder to do.

Two checks, run by every diffusion profile:

- ``steps`` must fit the model's own scheduler: DDIM with SD 2.1's config (1000 training timesteps,
  ``steps_offset=1``) indexes timestep 1000 at 1000 steps. The encoder refuses such settings (it
  would write a file its decoder cannot open) and the decoder rejects such a file as corrupt.
- A per-file decode budget in network evaluations (UNet and ControlNet passes: steps × branches ×
  guidance passes), so a few hundred bytes cannot ask for hours of decoding. The default is
  :data:`DEFAULT_DECODE_BUDGET`; raise it with the profile option ``decode_budget`` or
  ``$SEMCODEC_DIFFUSION_BUDGET``.
- A pixel cap (``size=``): the UNet, its attention and the VAE run on the whole image at once, so
  their memory and time grow with the pixels the header claims. A diffusion decoder accepts at most
  :data:`MAX_AREA_FACTOR` × the model's native sample area (SD 2.1-base: 512² → 1024×1024) and
  charges the per-file decode-work budget (:mod:`semcodec.budget`) :data:`UNITS_PER_NATIVE_EVAL` per
  evaluation at native size, scaled by area, *before* anything is decoded: a file claiming a larger
  image gets proportionally fewer evaluations, and a forged header is refused at once.
"""

from __future__ import annotations

import copy
import os
from typing import Any

from ...budget import charge
from ...errors import FormatError, ImageTooLargeError, SemcodecError

DECODE_BUDGET_ENV = "SEMCODEC_DIFFUSION_BUDGET"
#: 20 steps × (1 + 8 objects) × 2 guidance passes × 2 (ControlNet) ≈ 720; 4000 leaves room for 100-step runs
DEFAULT_DECODE_BUDGET = 4000
#: a diffusion decoder works on at most this many times its model's native sample area
MAX_AREA_FACTOR = 4
#: decode-work units per network evaluation at native size: the default budget (120,000) covers more
#: evaluations (6,000) than DEFAULT_DECODE_BUDGET, so only files claiming larger images hit it
UNITS_PER_NATIVE_EVAL = 20.0


def steps_problem(scheduler: Any, steps: int) -> str | None:
    """None when ``scheduler`` can run ``steps`` steps, else why not (its timesteps leave its range)."""
    cfg = scheduler.config
    total = int(cfg.num_train_timesteps)
    sched = copy.deepcopy(scheduler)
    try:
        sched.set_timesteps(int(steps))
        ts = sched.timesteps
        ok = len(ts) > 0 and int(ts.min()) >= 0 and int(ts.max()) < total
    except (ValueError, IndexError, RuntimeError):
        ok = False
    if ok:
        return None
    limit = total - int(getattr(cfg, "steps_offset", 0) or 0)
    return (f"steps={steps} is more than the model's {type(scheduler).__name__} can run ({total} training"
            f" timesteps, steps_offset {getattr(cfg, 'steps_offset', 0) or 0}: at most {limit} steps)")


def check_encoder_steps(scheduler: Any, steps: int, profile: str) -> None:
    """Encoder side: never write a file the decoder cannot run."""
    problem = steps_problem(scheduler, steps)
    if problem:
        raise SemcodecError(f"{profile}: {problem}; lower --set steps")


def check_decoder_steps(scheduler: Any, steps: int, profile: str) -> None:
    """Decoder side: a file asking for more steps than the scheduler has is corrupt."""
    problem = steps_problem(scheduler, steps)
    if problem:
        raise FormatError(f"{profile}: {problem}")


def decode_budget(option: int | None = None) -> int:
    """The budget in network evaluations: the option, else ``$SEMCODEC_DIFFUSION_BUDGET``, else the default."""
    if option:
        return int(option)
    raw = os.environ.get(DECODE_BUDGET_ENV, "")
    try:
        return max(1, int(raw)) if raw.strip() else DEFAULT_DECODE_BUDGET
    except ValueError:
        return DEFAULT_DECODE_BUDGET


def check_budget(evaluations: int, budget: int, profile: str, what: str, *, bundle: Any = None,
                 size: tuple[int, int] | None = None) -> None:
    """FormatError when decoding would take more than ``budget`` network evaluations; with ``bundle`` and
    ``size`` (width, height) also the pixel cap and the area-scaled work charge (see the module doc)."""
    if evaluations > budget:
        raise FormatError(
            f"{profile}: this file asks for {evaluations} network evaluations ({what}), above the decode budget"
            f" of {budget}; if you trust it, raise the budget with --set decode_budget=N or"
            f" ${DECODE_BUDGET_ENV}")
    if bundle is not None and size is not None:
        check_size(bundle, size, profile, evaluations)


def native_side(bundle: Any) -> int:
    """The side in pixels of the model's native sample (UNet ``sample_size`` × VAE factor)."""
    s = bundle.unet.config.sample_size
    return int(s[0] if isinstance(s, (list, tuple)) else s) * int(bundle.vae_scale_factor)


def check_size(bundle: Any, size: tuple[int, int], profile: str, evaluations: int) -> None:
    """ImageTooLargeError above the diffusion pixel cap; else charge the decode-work budget for the area."""
    width, height = size
    side = native_side(bundle)
    cap = MAX_AREA_FACTOR * side * side
    if width * height > cap:
        raise ImageTooLargeError(
            f"{profile} decodes at most {cap:,} pixels with this model ({MAX_AREA_FACTOR}× its native"
            f" {side}×{side} sample: the diffusion runs on the whole image at once); the image is"
            f" {width}×{height} = {width * height:,} pixels")
    charge(evaluations * UNITS_PER_NATIVE_EVAL * width * height / (side * side), f"{profile} diffusion")


def passes(guidance: float, control: bool) -> int:
    """Network evaluations per denoising step: ×2 with classifier-free guidance, ×2 with a ControlNet."""
    return (1 if guidance == 1.0 else 2) * (2 if control else 1)
