"""Compression-aware diffusion (CDM) sampler of ResULIC as a diffusers scheduler (Algorithm 2, η = 0).

Our reading of the paper, written out so it can be tested. The compressed latent z_c is a degraded
x_0; the forward process is shifted towards it by the residual r = z_c − x_0 (Resfusion-style):

    x_t = √ᾱ_t · x_0 + k_t · r + σ_t · ε,   σ_t = √(1 − ᾱ_t),
    k_t = √ᾱ_{N_r} · (1 − √ᾱ_t) / (1 − √ᾱ_{N_r})        (t ≤ N_r)

so k_0 = 0 and k_{N_r} = √ᾱ_{N_r}: at the start step the state depends on z_c only,
x_{N_r} = √ᾱ_{N_r} · z_c + σ_{N_r} · ε — denoising *starts from z_c at N_r*, not from pure noise.
(With √ᾱ_{N_r} = ½ this is exactly Resfusion's k_t = 1 − √ᾱ_t.) N_r is picked by the encoder from
the bitrate: the worse z_c, the larger N_r (:func:`start_step_for_distortion` matches the noise-to-
signal ratio σ²/ᾱ of x_t to the relative error of z_c) and is sent in PARAMS.

Writing x_t = √ᾱ_t·x_0 + σ_t·e_t with the "residual noise" e_t = ε + (k_t/σ_t)·r, a standard
ε-prediction UNet predicts e_t. Deterministic update from t to s < t (η = 0):

    x̂_0 = (x_t − σ_t ê) / √ᾱ_t,   r̂ = z_c − x̂_0,   ε̂ = ê − (k_t/σ_t) · r̂
    x_s = √ᾱ_s · x̂_0 + k_s · r̂ + σ_s · ε̂                       (x_{−1} := x̂_0)

For an oracle ê the sampler stays exactly on the forward path above (tested on a toy model).

A UNet trained for another ``prediction_type`` is read through the same relation
x_t = √ᾱ_t·x̂_0 + σ_t·ê: a v-prediction output v = √ᾱ_t·ê − σ_t·x̂_0 gives ê = √ᾱ_t·v + σ_t·x_t, a
``sample`` output x̂_0 gives ê = (x_t − √ᾱ_t·x̂_0)/σ_t; :meth:`training_target` is the inverse map, so
a CDM fine-tuned from SD 2.1-768 (v) keeps its parameterisation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from diffusers.utils import BaseOutput

PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")


@dataclass
class CDMSchedulerOutput(BaseOutput):
    prev_sample: torch.Tensor
    pred_original_sample: torch.Tensor


class CompressionAwareScheduler(SchedulerMixin, ConfigMixin):
    """Deterministic CDM sampler; call :meth:`set_anchor` (z_c) and :meth:`set_timesteps` before stepping.

    Build it with :meth:`for_model` so the noise schedule and ``prediction_type`` are the UNet's own."""

    order = 1
    init_noise_sigma = 1.0

    @register_to_config
    def __init__(self, num_train_timesteps: int = 1000, beta_start: float = 0.00085, beta_end: float = 0.012,
                 beta_schedule: str = "scaled_linear", prediction_type: str = "epsilon") -> None:
        if beta_schedule == "scaled_linear":
            betas = torch.linspace(beta_start**0.5, beta_end**0.5, num_train_timesteps, dtype=torch.float64) ** 2
        elif beta_schedule == "linear":
            betas = torch.linspace(beta_start, beta_end, num_train_timesteps, dtype=torch.float64)
        else:
            raise NotImplementedError(f"beta_schedule {beta_schedule!r}")
        if prediction_type not in PREDICTION_TYPES:
            raise NotImplementedError(f"prediction_type {prediction_type!r}; the CDM sampler reads"
                                      f" {', '.join(PREDICTION_TYPES)}")
        self.alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)  # float64: exact, thread-independent
        self.timesteps = torch.tensor([], dtype=torch.long)
        self.start_step: int | None = None
        self.anchor: torch.Tensor | None = None

    @classmethod
    def for_model(cls, config: Any) -> CompressionAwareScheduler:
        """The CDM sampler over a diffusers scheduler config (betas, timesteps, prediction type)."""
        return cls(num_train_timesteps=int(config.num_train_timesteps), beta_start=float(config.beta_start),
                   beta_end=float(config.beta_end), beta_schedule=str(config.beta_schedule),
                   prediction_type=str(getattr(config, "prediction_type", None) or "epsilon"))

    # -- schedule -------------------------------------------------------------------------------------
    def set_timesteps(self, num_inference_steps: int, device: str | torch.device | None = None,
                      start_step: int | None = None) -> None:
        """``num_inference_steps`` evenly spaced steps from ``start_step`` (N_r) down to ≥ 0."""
        T = int(self.config.num_train_timesteps)
        n_r = T - 1 if start_step is None else int(start_step)
        if not 0 <= n_r < T:
            raise ValueError(f"start_step must be in 0..{T - 1}")
        steps = max(1, min(int(num_inference_steps), n_r + 1))
        ts = [n_r * (steps - i) // steps for i in range(steps)]  # strictly decreasing, first = N_r
        self.timesteps = torch.tensor(ts, dtype=torch.long, device=device)
        self.start_step = n_r
        self.num_inference_steps = steps

    def set_anchor(self, z_c: torch.Tensor) -> None:
        self.anchor = z_c

    def abar(self, t: int) -> float:
        return 1.0 if t < 0 else float(self.alphas_cumprod[t])

    def k(self, t: int) -> float:
        """Residual weight k_t (0 at t < 0 and t = 0 limit, √ᾱ_{N_r} at N_r)."""
        assert self.start_step is not None
        if t < 0:
            return 0.0
        s = math.sqrt(self.abar(self.start_step))
        if s >= 1.0:
            return 0.0
        return s * (1.0 - math.sqrt(self.abar(t))) / (1.0 - s)

    def prev_timestep(self, t: int) -> int:
        ts = self.timesteps.tolist()
        i = ts.index(int(t))
        return ts[i + 1] if i + 1 < len(ts) else -1

    # -- states ---------------------------------------------------------------------------------------
    def initial_sample(self, z_c: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_{N_r} = √ᾱ_{N_r} z_c + σ_{N_r} ε (also sets the anchor)."""
        assert self.start_step is not None, "call set_timesteps first"
        self.set_anchor(z_c)
        a = self.abar(self.start_step)
        return math.sqrt(a) * z_c + math.sqrt(1 - a) * noise

    def forward_sample(self, x0: torch.Tensor, z_c: torch.Tensor, noise: torch.Tensor, t: int) -> torch.Tensor:
        """Closed-form forward state x_t (training targets, tests)."""
        a = self.abar(t)
        return math.sqrt(a) * x0 + self.k(t) * (z_c - x0) + math.sqrt(1 - a) * noise

    def residual_noise(self, x0: torch.Tensor, z_c: torch.Tensor, noise: torch.Tensor, t: int) -> torch.Tensor:
        """Training target e_t = ε + (k_t/σ_t)(z_c − x_0) for fine-tuning an ε-UNet into a CDM."""
        return noise + self.k(t) / math.sqrt(1 - self.abar(t)) * (z_c - x0)

    def training_target(self, x0: torch.Tensor, z_c: torch.Tensor, noise: torch.Tensor, t: int) -> torch.Tensor:
        """What the UNet learns at t, in the model's ``prediction_type`` (e_t, its velocity, or x_0)."""
        e_t = self.residual_noise(x0, z_c, noise, t)
        kind = self.config.prediction_type
        if kind == "v_prediction":
            return math.sqrt(self.abar(t)) * e_t - math.sqrt(1 - self.abar(t)) * x0
        return x0 if kind == "sample" else e_t

    def model_eps(self, model_output: torch.Tensor, t: int, sample: torch.Tensor) -> torch.Tensor:
        """The model output as the residual noise ê (identity for an ε-prediction UNet)."""
        kind = self.config.prediction_type
        a, sig = math.sqrt(self.abar(t)), math.sqrt(1 - self.abar(t))
        if kind == "v_prediction":
            return a * model_output + sig * sample
        if kind == "sample":
            return (sample - a * model_output) / sig if sig > 0 else torch.zeros_like(sample)
        return model_output

    def scale_model_input(self, sample: torch.Tensor, timestep: int | None = None) -> torch.Tensor:
        return sample

    def step(self, model_output: torch.Tensor, timestep: int | torch.Tensor, sample: torch.Tensor,
             return_dict: bool = True) -> CDMSchedulerOutput | tuple[torch.Tensor, torch.Tensor]:
        if self.anchor is None:
            raise RuntimeError("CompressionAwareScheduler.step needs set_anchor(z_c) / initial_sample first")
        t = int(timestep)
        s = self.prev_timestep(t)
        a_t, a_s = self.abar(t), self.abar(s)
        sig_t, sig_s = math.sqrt(1 - a_t), math.sqrt(1 - a_s)
        model_output = self.model_eps(model_output, t, sample)
        x0 = (sample - sig_t * model_output) / math.sqrt(a_t)
        r = self.anchor - x0
        eps = model_output - (self.k(t) / sig_t) * r if sig_t > 0 else torch.zeros_like(model_output)
        prev = math.sqrt(a_s) * x0 + self.k(s) * r + sig_s * eps
        if not return_dict:
            return prev, x0
        return CDMSchedulerOutput(prev_sample=prev, pred_original_sample=x0)

    def __len__(self) -> int:
        return int(self.config.num_train_timesteps)


def start_step_for_distortion(alphas_cumprod: torch.Tensor, rel_mse: float, lo: int = 0, hi: int | None = None) -> int:
    """N_r whose noise-to-signal ratio (1 − ᾱ)/ᾱ is closest to the relative latent error of z_c.

    ``rel_mse`` = ‖z_c − z‖² / ‖z‖²; more compression → larger error → later (noisier) start step.
    """
    hi = len(alphas_cumprod) - 1 if hi is None else hi
    nsr = (1 - alphas_cumprod) / alphas_cumprod
    target = max(float(rel_mse), 0.0)
    idx = int(torch.argmin((nsr[lo : hi + 1] - target).abs()))
    return lo + idx
