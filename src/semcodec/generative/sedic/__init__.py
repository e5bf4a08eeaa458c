"""SEDIC profile: reference + object semantics + masks → ORAG attention-guided diffusion decoding."""

from .profile import SedicProfile

__all__ = ["SedicProfile"]
