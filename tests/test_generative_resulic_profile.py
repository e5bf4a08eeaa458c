"""``resulic`` end to end: tiny random SD + tiny latent codec (CDM decoding) through a fresh process,
and the TAEF2 path (no diffusion) when the shared weights are present."""
# ruff: noqa: E402  (imports below need the optional extra checked first)

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from extras import require

require("diffusers")  # the generative extra; skips the module cleanly without it

from semcodec.errors import RateError
from semcodec.generative.latent.codec import LatentHyperprior


def _image(h: int = 32, w: int = 48) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([120 + 70 * np.cos(x / 6), 80 + 4 * y, 50 + 3 * x], -1)
    return np.clip(img + np.random.default_rng(1).normal(0, 5, img.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, Path]:
    from semcodec.generative.components.tiny import build_tiny_sd

    root = tmp_path_factory.mktemp("resulic")
    sd = build_tiny_sd(root / "sd", controlnet=False)
    torch.manual_seed(0)
    LatentHyperprior(4, 16, 8).save(root / "codec")
    return sd, root / "codec"


def test_resulic_cdm_end_to_end_fresh_process(tiny, tmp_path) -> None:
    from semcodec.pipeline import compress, decode, describe

    sd, codec = tiny
    opts = {"model": str(sd), "codec": str(codec), "steps": 2, "guidance": 2.0}
    img = _image()
    data = compress(img, bpp=2.0, profile="resulic", caption="blue stripes", **opts)
    d = describe(data)
    assert [s["kind"] for s in d["streams"]] == ["params", "latent", "text"] and d["bpp"] <= 2.0
    from semcodec.generative.resulic.profile import SAMPLERS, ResulicProfile
    from semcodec.pipeline import open_container

    p = ResulicProfile._unpack(open_container(data).streams[0].payload)  # new files: PARAMS v2, paper sampler
    assert p["version"] == 2 and SAMPLERS[p["sampler"]] == "paper"
    assert p["diffusion"] == 1 and 0 < p["n_r"] < 1000 and p["steps"] == 2
    here = decode(data, **opts)
    assert here.texts == ["blue stripes"]
    smc, out = tmp_path / "r.smc", tmp_path / "r.png"
    smc.write_bytes(data)
    subprocess.run([sys.executable, "-m", "semcodec", "decompress", str(smc), "-o", str(out), "-q",
                    "--set", f"model={sd}", "--set", f"codec={codec}"], check=True, timeout=300)
    assert np.array_equal(np.asarray(Image.open(out)), here.image)
    # 1 vs 2 threads in this process: identical
    torch.set_num_threads(2)
    try:
        assert np.array_equal(decode(data, **opts).image, here.image)
    finally:
        torch.set_num_threads(1)


def test_resulic_rate_error_when_nothing_fits(tiny) -> None:
    from semcodec.pipeline import compress

    sd, codec = tiny
    with pytest.raises(RateError):
        compress(_image(), bpp=0.05, profile="resulic", model=str(sd), codec=str(codec), caption="x" * 40)


def test_resulic_taef2_without_diffusion(shared_weights, tmp_path) -> None:
    from semcodec.generative.latent.taef2 import taef2_unavailable_reason
    from semcodec.pipeline import compress, decode, describe

    if taef2_unavailable_reason(shared_weights / "taef2"):
        pytest.skip("taef2 weights absent")
    torch.manual_seed(0)
    LatentHyperprior(32, 16, 8).save(tmp_path / "codec")
    img = _image(64, 64)
    data = compress(img, bpp=1.0, profile="resulic", codec=str(tmp_path / "codec"))
    assert [s["kind"] for s in describe(data)["streams"]] == ["params", "latent"]
    out = decode(data, codec=str(tmp_path / "codec")).image
    assert out.shape == (64, 64, 3)


def test_resulic_analyse_equals_compress_and_config_is_unchanged(tiny) -> None:
    from analyse_check import assert_analyse_matches_compress
    from semcodec.generative.resulic.profile import PARAMS_SCHEMA, ResulicProfile

    sd, codec = tiny
    opts = {"model": str(sd), "codec": str(codec), "steps": 2, "text_coder": "zlib"}
    sent = assert_analyse_matches_compress(_image(), bpp=2.0, profile="resulic", caption="blue stripes", **opts)
    assert [s.kind for s in sent] == ["params", "latent", "text"]
    prof = ResulicProfile(**opts)
    config = prof.config()
    assert {k: v for k, v in config.items() if k not in ("components", "codec")} == {
        "profile": "resulic", "format": 1, "schema": [f for f, _ in PARAMS_SCHEMA], "text_coder": "zlib"}
