"""Options shared by the diffusion profiles: where each diffusion part comes from.

A profile's settings dataclass inherits these; ``parts()`` gives the per-part overrides in the form
:meth:`DiffusionComponents.from_sources` takes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...profiles.settings import Settings, option

PART_OPTIONS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler", "revision")


@dataclass(frozen=True)
class DiffusionOptions(Settings):
    model: str | None = option(None, "diffusers model folder or hub id (default: the profile's environment variable)")
    unet: str | None = option(None, "folder overriding the model's UNet")
    vae: str | None = option(None, "folder overriding the model's VAE")
    text_encoder: str | None = option(None, "folder overriding the model's text encoder")
    tokenizer: str | None = option(None, "folder overriding the model's tokenizer")
    scheduler: str | None = option(None, "folder overriding the model's scheduler config")
    revision: str | None = option(None, "hub revision of the model")

    def parts(self) -> dict[str, Any]:
        """Per-part overrides that are set (``None`` ones left out: the model folder provides them)."""
        return {k: getattr(self, k) for k in PART_OPTIONS if getattr(self, k) is not None}
