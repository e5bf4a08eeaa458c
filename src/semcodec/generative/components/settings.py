"""Sampler settings as the diffusion profiles (ITC, SEDIC) carry them in their PARAMS stream.

Real-valued settings travel as integers in 1/100 units; both profiles quantise them with
:func:`centi`, so the encoder and the decoder see the same value.
"""

from __future__ import annotations

from ...errors import SemcodecError

CENTI = 100
MAX_STEPS = 1000


def centi(x: float) -> int:
    """Quantise a setting to 1/100 (what the file can carry); the encoder keeps the quantised value."""
    if not 0 <= x <= 10_000:
        raise SemcodecError(f"setting {x} out of range 0..10000")
    return int(round(float(x) * CENTI))


def diffusion_available() -> str | None:
    """None when diffusers and transformers import, else what to install."""
    try:
        import diffusers  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as e:
        return f"needs diffusers and transformers ({e.name} missing): pip install diffusers transformers"
    return None
