"""ITC profile (Murai et al.): base codec + coded caption → caption-conditioned diffusion restoration."""

from .profile import ItcProfile

__all__ = ["ItcProfile"]
