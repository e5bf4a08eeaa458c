"""Sampler settings as the diffusion profiles (ITC, SEDIC) carry them in their PARAMS stream.

Real-valued settings travel as integers in 1/100 units; both profiles quantise them with
:func:`centi`, so the encoder and the decoder see the same value.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from typing import Any

from ...errors import SemcodecError

CENTI = 100
MAX_STEPS = 1000


def centi(x: float) -> int:
    """Quantise a setting to 1/100 (what the file can carry); the encoder keeps the quantised value."""
    if not 0 <= x <= 10_000:
        raise SemcodecError(f"setting {x} out of range 0..10000")
    return int(round(float(x) * CENTI))


def diffusion_available() -> str | None:
    """None when diffusers and transformers are installed, else what to install (found, not imported:
    ``semcodec profiles`` must stay fast and load no model library)."""
    missing = [m for m in ("diffusers", "transformers") if importlib.util.find_spec(m) is None]
    if missing:
        return f"needs diffusers and transformers ({', '.join(missing)} missing): pip install diffusers transformers"
    return None


def weights_configured(options: Mapping[str, Any], env_var: str, keys: tuple[str, ...] = ("model",)) -> str | None:
    """None when the profile's weights are named (an option in ``keys`` or ``$env_var``), else what to set.

    Only looks at names, never at the weights, so the check is instant; a wrong path is reported when
    the profile loads it."""
    if any(options.get(k) for k in keys) or os.environ.get(env_var):
        return None
    return f"needs weights: set {env_var} or --set model=..."


def generative_availability(options: Mapping[str, Any], env_var: str, keys: tuple[str, ...] = ("model",)) -> str | None:
    """Libraries first, then weights: the availability of a diffusion profile built with ``options``."""
    return diffusion_available() or weights_configured(options, env_var, keys)
