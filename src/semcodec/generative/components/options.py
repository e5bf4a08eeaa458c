"""Options shared by the diffusion profiles: where each diffusion part comes from, and (ITC, SEDIC)
the ControlNet and the base image.

A profile's settings dataclass inherits these; ``parts()`` gives the per-part overrides in the form
:meth:`DiffusionComponents.from_sources` takes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ...profiles.settings import Settings, option
from .bundle import CONTROLNET_ENV, DiffusionComponents

PART_OPTIONS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler", "revision")
#: ``dtype`` option values → torch dtype names (loaded lazily: this module imports no torch model code)
DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


@dataclass(frozen=True)
class DiffusionOptions(Settings):
    model: str | None = option(None, "diffusers model folder or hub id (default: the profile's environment variable)")
    unet: str | None = option(None, "folder overriding the model's UNet")
    vae: str | None = option(None, "folder overriding the model's VAE")
    text_encoder: str | None = option(None, "folder overriding the model's text encoder")
    tokenizer: str | None = option(None, "folder overriding the model's tokenizer")
    scheduler: str | None = option(None, "folder overriding the model's scheduler config")
    revision: str | None = option(None, "hub revision of the model")
    # where the models run (not hashed: the file does not depend on it; bit-exact decoding needs the
    # encoder's device and dtype)
    device: str = option("cpu", "torch device of every model part (cpu, cuda, cuda:1, mps)")
    dtype: str = option("fp32", "dtype of every model part", choices=tuple(DTYPES))
    decode_budget: int | None = option(None, "most network evaluations one file may ask the decoder for"
                                       " (default $SEMCODEC_DIFFUSION_BUDGET or 4000)", low=1)

    def parts(self) -> dict[str, Any]:
        """Per-part overrides that are set (``None`` ones left out: the model folder provides them)."""
        return {k: getattr(self, k) for k in PART_OPTIONS if getattr(self, k) is not None}

    def placement(self) -> dict[str, Any]:
        """``device`` and ``dtype`` keywords of :meth:`DiffusionComponents.from_sources`."""
        return {"device": self.device, "dtype": self.dtype}


@dataclass(frozen=True)
class ReferenceDiffusionOptions(DiffusionOptions):
    """A diffusion decoder restoring a coded base image (ITC, SEDIC)."""

    controlnet: str | None = option(None, "ControlNet folder or hub id (default $SEMCODEC_CONTROLNET)")
    control: str | None = option(None, "ControlNet condition: latent (DiffBIR IRControlNet, the reference's VAE"
                                 " latent at its input) or pixel (diffusers hint); default: as the ControlNet"
                                 " folder says", choices=("latent", "pixel"))
    base_profile: str | None = option(None, "profile coding the base image (default: lic, else avif)")
    base_scale: int = option(1, "the base image is coded downscaled by this factor", low=1)
    base_options: dict[str, Any] = option({}, "options of the base profile (a JSON object)")
    scheduler_kind: str | None = option("ddim", "sampler (ddim; null: the model's own scheduler)")

    def controlnet_source(self) -> str | None:
        return self.controlnet or os.environ.get(CONTROLNET_ENV) or None

    def components(self) -> DiffusionComponents:
        """The diffusion parts (loaded on first use), with the ControlNet when one is set."""
        return DiffusionComponents.from_sources(
            self.model, with_controlnet=self.controlnet is not None, controlnet=self.controlnet,
            use_controlnet_env=False, scheduler_kind=self.scheduler_kind, control=self.control, **self.placement(),
            **self.parts())
