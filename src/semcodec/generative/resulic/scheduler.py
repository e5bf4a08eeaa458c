"""Compression-aware diffusion (CDM) of ResULIC: the paper's process (bottom of this module) and our earlier one.

New files use :class:`ResidualCDMSampler` / :func:`forward_noise` (the paper's Eq. 11/15 and
Algorithm 2, PARAMS version 2). :class:`CompressionAwareScheduler` below is the earlier reading, kept
bit-exact because files written before PARAMS version 2 decode with it (``sampler=resfusion``).

In that earlier reading the compressed latent z_c is a degraded x_0; the forward process is shifted towards it by the residual r = z_c − x_0 (Resfusion-style):

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
from collections.abc import Callable
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


# ====================================================================================================
# The paper's CDM (ResULIC Eq. 11/15 and Algorithm 2). The class above is the sampler of files written
# before PARAMS version 2 (kept so they decode bit-identically); new files use what follows.
# ====================================================================================================

def residual_gamma(alphas_cumprod: torch.Tensor, n_r: int) -> float:
    """The constant γ of the paper's forward process, γ = √ᾱ_{N_r} / σ_{N_r}.

    It is the one value that makes the residual weight γ·σ_t reach √ᾱ_{N_r} at t = N_r, so the state
    there no longer depends on z_0: z_{N_r} = √ᾱ_{N_r}·z_c + σ_{N_r}·ε (the decoder can start there)."""
    a = float(alphas_cumprod[int(n_r)])
    return math.sqrt(a) / math.sqrt(1.0 - a)


def forward_noise(z0: torch.Tensor, zc: torch.Tensor, noise: torch.Tensor, t: int | torch.Tensor, n_r: int,
                  alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """The paper's CDM forward state (Eq. 11/15), for training the denoiser and for tests::

        z_t = √ᾱ_t · z0 + σ_t · (ε + γ · (zc − z0)),   σ_t = √(1 − ᾱ_t),   γ = √ᾱ_{N_r} / σ_{N_r}

    ``z0`` the clean latent, ``zc`` the compressed (decoded) latent, ``noise`` ε ~ N(0, I), ``t`` an int
    or a per-sample LongTensor of timesteps (0 ≤ t ≤ N_r), ``n_r`` the start step the rate gives,
    ``alphas_cumprod`` the model's ᾱ table. The denoiser's target is ε itself (ε-prediction), as in the
    paper; the result has z0's dtype and device."""
    g = residual_gamma(alphas_cumprod, n_r)
    if isinstance(t, torch.Tensor) and t.ndim > 0:
        a = alphas_cumprod.to(z0.device)[t.to(z0.device)].to(z0.dtype).view(-1, *([1] * (z0.ndim - 1)))
        sa, sig = a.sqrt(), (1 - a).sqrt()
    else:
        a_f = float(alphas_cumprod[int(t)])
        sa, sig = math.sqrt(a_f), math.sqrt(1.0 - a_f)  # type: ignore[assignment]
    return sa * z0 + sig * (noise + g * (zc - z0))


class ResidualCDMSampler:
    """Deterministic (η = 0) reverse process of the paper's CDM, Algorithm 2.

    With ê the model's noise estimate at step n (any ``prediction_type``, converted by :meth:`estimates`)::

        z_{N_r} = √ᾱ_{N_r} · z_c + σ_{N_r} · ε                       (start: depends on z_c only)
        z̃_0 = (z_n − σ_n·(ê + γ·z_c)) / (√ᾱ_n − γ·σ_n),   but z̃_0 = z_c at n = N_r
        z_{n'} = √ᾱ_{n'} · z̃_0 + σ_{n'} · (ê + γ·(z_c − z̃_0))         (next timestep n' < n; DDIM, η = 0)

    and the output is z̃_0 of the last step. At n = N_r the x̂_0 formula divides by zero (√ᾱ = γσ there),
    which is why the paper sets z̃_0 = z_c at the first step. The denoiser is called only through the
    ``predict_noise(z_n, t, text_emb)`` callable given to :meth:`sample`."""

    def __init__(self, alphas_cumprod: torch.Tensor, n_r: int, prediction_type: str = "epsilon") -> None:
        if not 0 <= int(n_r) < len(alphas_cumprod):
            raise ValueError(f"N_r must be in 0..{len(alphas_cumprod) - 1}")
        if prediction_type not in PREDICTION_TYPES:
            raise NotImplementedError(f"prediction_type {prediction_type!r}")
        self.alphas_cumprod = alphas_cumprod.to(torch.float64)
        self.n_r = int(n_r)
        self.gamma = residual_gamma(self.alphas_cumprod, self.n_r)
        self.prediction_type = prediction_type

    def timesteps(self, steps: int) -> list[int]:
        """``steps`` evenly spaced timesteps N_r = t_0 > t_1 > … ≥ 1 (at most N_r of them; [0] for N_r = 0)."""
        k = max(1, min(int(steps), self.n_r))
        return [self.n_r * (k - i) // k for i in range(k)]

    def _coef(self, t: int) -> tuple[float, float]:
        a = float(self.alphas_cumprod[t])
        return math.sqrt(a), math.sqrt(1.0 - a)

    def initial(self, z_c: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        sa, sig = self._coef(self.n_r)
        return sa * z_c + sig * noise

    def estimates(self, out: torch.Tensor, z: torch.Tensor, t: int, z_c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(ê, z̃_0) at step ``t`` from the model output ``out`` (ε, v = √ᾱ·ε − σ·z_0, or z_0)."""
        sa, sig = self._coef(t)
        g = self.gamma
        first = t == self.n_r
        if self.prediction_type == "epsilon":
            eps = out
            x0 = z_c if first else (z - sig * (eps + g * z_c)) / (sa - g * sig)
        elif self.prediction_type == "v_prediction":
            # z = (√ᾱ − γσ)·z0 + σ·ε + γσ·z_c and v = √ᾱ·ε − σ·z0, solved for (z0, ε)
            x0 = z_c if first else (sa * (z - g * sig * z_c) - sig * out) / (1.0 - sa * g * sig)
            eps = (out + sig * x0) / sa
        else:  # "sample"
            x0 = z_c if first else out
            eps = (z - g * sig * z_c - (sa - g * sig) * x0) / sig
        return eps, x0

    def step(self, eps: torch.Tensor, x0: torch.Tensor, prev: int, z_c: torch.Tensor) -> torch.Tensor:
        """z at timestep ``prev`` (DDIM, η = 0); ``prev`` < 0 returns z̃_0."""
        if prev < 0:
            return x0
        sa, sig = self._coef(prev)
        return sa * x0 + sig * (eps + self.gamma * (z_c - x0))

    def sample(self, z_c: torch.Tensor, noise: torch.Tensor, predict_noise: Callable[..., torch.Tensor],
               text_emb: torch.Tensor, steps: int, uncond: torch.Tensor | None = None,
               guidance: float = 1.0) -> torch.Tensor:
        """Algorithm 2 from z_c; ``predict_noise(z_n, t, text_emb)`` is the single denoiser call
        (classifier-free guidance: ê_u + w·(ê_c − ê_u), two batch-1 calls)."""
        ts = self.timesteps(steps)
        z = self.initial(z_c, noise)
        for i, t in enumerate(ts):
            out = predict_noise(z, t, text_emb)
            if uncond is not None and guidance != 1.0:
                out_u = predict_noise(z, t, uncond)
                out = out_u + guidance * (out - out_u)
            eps, x0 = self.estimates(out, z, t, z_c)
            z = self.step(eps, x0, ts[i + 1] if i + 1 < len(ts) else -1, z_c)
        return z
