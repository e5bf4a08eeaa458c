"""Tiny random lossless models for tests (real classes, small configs, saved and loaded back)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from semcodec.lossless.model import LosslessConfig, ResidualLM, load_model, save_model

TINY_GPT2 = {"n_embd": 16, "n_layer": 1, "n_head": 2, "n_positions": 16, "vocab_size": 1,
             "bos_token_id": None, "eos_token_id": None, "activation_function": "gelu",
             "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0}


def tiny_config(**kw) -> LosslessConfig:
    base = dict(patch=4, conv_channels=8, conv_layers=1, qualities=[50, 70], default_quality=70,
                backbone="gpt2", backbone_config=dict(TINY_GPT2))
    base.update(kw)
    return LosslessConfig(**base)


def tiny_model_dir(tmp: Path, seed: int = 0, **kw) -> Path:
    """Build a random tiny model, save it like shipped weights and return the folder."""
    torch.manual_seed(seed)
    model = ResidualLM(tiny_config(**kw))
    with torch.no_grad():  # make predictions non-trivial so the coder sees varied mixtures
        for p in model.head.parameters():
            p.add_(0.05 * torch.randn_like(p))
    save_model(model, tmp / "model")
    return tmp / "model"


def load_tiny(folder: Path) -> ResidualLM:
    return load_model(folder)


def small_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([120 + 60 * np.sin(x / 5), 80 + 2 * y, 200 - 1.5 * x], -1) + rng.normal(0, 6, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)
