"""A tiny random SD folder and latent codec for the ResULIC tests (shared by their module fixtures)."""

from __future__ import annotations

from pathlib import Path

import torch


def build_tiny_resulic(root: Path) -> tuple[Path, Path]:
    """(SD folder without ControlNet, latent codec folder) under ``root``, seeded."""
    from semcodec.generative.components.tiny import build_tiny_sd
    from semcodec.generative.latent.codec import LatentHyperprior

    sd = build_tiny_sd(root / "sd", controlnet=False)
    torch.manual_seed(0)
    LatentHyperprior(4, 16, 8).save(root / "codec")
    return sd, root / "codec"
