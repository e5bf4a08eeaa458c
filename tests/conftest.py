"""Shared fixtures. Tests that need ../shared/data skip with a reason when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from semcodec.paths import shared_data_dir, shared_weights_dir

# Keep the suite reproducible and light on a 2-core machine.
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    d = shared_data_dir()
    if d is None:
        pytest.skip("shared data folder not found (set SEMCODEC_DATA or place ../shared/data beside the repo)")
    return d


@pytest.fixture(scope="session")
def kodak_dir(shared_data: Path) -> Path:
    d = shared_data / "kodak"
    if not d.is_dir():
        pytest.skip(f"{d} missing")
    return d


@pytest.fixture(scope="session")
def shared_weights() -> Path:
    d = shared_weights_dir()
    if d is None:
        pytest.skip("shared weights folder not found (set SEMCODEC_WEIGHTS or place ../shared/weights beside the repo)")
    return d


@pytest.fixture
def natural_image() -> np.ndarray:
    """A smooth synthetic 96×128 RGB image (gradients + shapes) that compresses like a photo."""
    h, w = 96, 128
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    r = 128 + 90 * np.sin(x / 17.0) * np.cos(y / 23.0)
    g = 100 + 0.8 * x - 0.3 * y
    b = 60 + 120 * ((x - 70) ** 2 + (y - 40) ** 2 < 600)
    img = np.stack([r, g, b], axis=-1)
    img += np.random.default_rng(0).normal(0, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)
