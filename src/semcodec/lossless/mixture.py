"""Discretised K-component Gaussian mixture over an integer residual (Du et al., Sec. 3.3).

The residual r = x − x_l of a subpixel is an integer in [−x_l, 255 − x_l]. Its likelihood is the
mixture mass of the unit bin around r, with the two end bins stretched to ±∞ so the 256 possible
values of x carry all the mass::

    P(r) = Σ_k w_k [Φ((r + ½ − μ_k)/σ_k) − Φ((r − ½ − μ_k)/σ_k)]

Training uses :func:`gmm_bits` (float32, differentiable). Coding uses :func:`quantise_params` and
:func:`integer_pmf`: the parameters are rounded to a 1/64 grid and stored as integers, and the pmf
over x ∈ 0..255 is a pure function of those integers computed (float32, vectorised erf) under one thread, then
turned into integer frequencies (≥ 1, ``entropy.models.quantise_pmf``). Encoder and decoder therefore hand constriction bit-identical
tables.
"""

from __future__ import annotations

import math

import torch

from ..entropy.models import quantise_pmf

LOG_SIGMA_MIN, LOG_SIGMA_MAX = -3.0, 6.0
GRID = 64  # parameters are coded on a 1/GRID grid
FREQ_BITS = 22  # integer frequency scale handed to constriction (it re-normalises exactly)
_BIG = 1e4
_SQRT1_2 = 0.7071067811865476
WINDOW = 64  # values of x around the mixture mean whose mass is computed exactly
_WIN_EDGES = torch.arange(WINDOW + 1, dtype=torch.float32) - 0.5
_SYMBOLS = torch.arange(256)


def _bin_mass(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Φ(b) − Φ(a) without cancellation in the upper tail."""
    nd = torch.special.ndtr
    return torch.where(a > 0, nd(-a) - nd(-b), nd(b) - nd(a))


def gmm_bits(logits: torch.Tensor, mu: torch.Tensor, log_sigma: torch.Tensor, x: torch.Tensor,
             xl: torch.Tensor) -> torch.Tensor:
    """Bits of integer pixel ``x`` given base ``xl`` (both ``(...,)``) under mixtures ``(..., K)``."""
    sigma = torch.exp(log_sigma.clamp(LOG_SIGMA_MIN, LOG_SIGMA_MAX))
    r = (x - xl).to(mu.dtype).unsqueeze(-1)
    a = (r - 0.5 - mu) / sigma
    b = (r + 0.5 - mu) / sigma
    a = torch.where((x == 0).unsqueeze(-1), torch.full_like(a, -_BIG), a)
    b = torch.where((x == 255).unsqueeze(-1), torch.full_like(b, _BIG), b)
    logp = torch.log(_bin_mass(a, b).clamp_min(1e-12)) + torch.log_softmax(logits, -1)
    return -torch.logsumexp(logp, -1) / math.log(2.0)


def quantise_params(logits: torch.Tensor, mu: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    """Round mixture parameters to the coding grid; returns int32 ``(..., 3, K)``."""
    lw = torch.log_softmax(logits.double(), -1).clamp(-30.0, 0.0)
    mu = mu.double().clamp(-300.0, 300.0)
    ls = log_sigma.double().clamp(LOG_SIGMA_MIN, LOG_SIGMA_MAX)
    return torch.round(torch.stack([lw, mu, ls], -2) * GRID).to(torch.int32)


def integer_pmf(q: torch.Tensor, xl: torch.Tensor) -> torch.Tensor:
    """Integer frequencies (float32 holding integers ≥ 1) of x ∈ 0..255, shape ``(N, 256)``.

    ``q`` is ``(N, 3, K)`` from :func:`quantise_params`; ``xl`` is ``(N,)`` base values. Run under a
    fixed thread count (see :func:`semcodec.lossless.coder.fixed_threads`).

    For speed the mixture is evaluated exactly only on a window of ``WINDOW`` values of x centred on
    the mixture mean; the mass left of (right of) the window is spread evenly over the values there.
    This only costs bits when a residual lands far outside the window; it never affects exactness.
    """
    qd = q.float() / GRID
    w = torch.softmax(qd[:, 0], -1)  # (N, K)
    half = WINDOW // 2
    centre = torch.round(xl.float() + (w * qd[:, 1]).sum(-1)).clamp(half, 256 - half)  # (N,)
    lo = centre - half  # first x inside the window
    a = (torch.exp(-qd[:, 2]) * _SQRT1_2).unsqueeze(1)  # 1/(σ√2), (N, 1, K)
    b = qd[:, 1].unsqueeze(1) * a  # μ/(σ√2)
    e = (lo - xl.float()).view(-1, 1) + _WIN_EDGES.view(1, -1)  # residual-unit edges (N, WINDOW+1)
    # Φ(z) = ½(1 + erf(z/√2)) with z/√2 = e·a − b; float32 erf is vectorised (≈10× faster than ndtr)
    z = torch.addcmul(-b, e.unsqueeze(-1), a).erf_()
    cdf = torch.bmm(z, w.unsqueeze(-1)).squeeze(-1).mul_(0.5).add_(0.5)  # (N, WINDOW+1)
    cdf[:, 0] = torch.where(lo == 0, 0.0, cdf[:, 0])  # x = 0 owns everything below
    cdf[:, -1] = torch.where(lo == 256 - WINDOW, 1.0, cdf[:, -1])  # x = 255 owns everything above
    inside = (cdf[:, 1:] - cdf[:, :-1]).clamp_min_(0.0)  # (N, WINDOW)
    left = cdf[:, 0].clamp_min(0.0) / lo.clamp_min(1.0)  # float32 erf sums can dip just below 0
    right = (1.0 - cdf[:, -1]).clamp_min(0.0) / (256 - WINDOW - lo).clamp_min(1.0)
    rel = _SYMBOLS.view(1, -1) - lo.view(-1, 1).long()  # (N, 256)
    pmf = torch.gather(inside, 1, rel.clamp(0, WINDOW - 1))
    pmf = torch.where(rel < 0, left.unsqueeze(1), torch.where(rel >= WINDOW, right.unsqueeze(1), pmf))
    return quantise_pmf(pmf, FREQ_BITS, reserve=False)
