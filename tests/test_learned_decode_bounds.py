"""Issue 20: learned decoders refuse a forged large header before any heavy work, with a clear error.

resulic (TAEF2) and the diffusion profiles have a pixel cap (``ImageTooLargeError`` naming it) and
charge the per-file decode-work budget for the pixels they will decode; lossless charges its residual
coder per pixel. Each check must fire *before* the decoder allocates: the forged files here claim
sizes whose decode would take minutes, and the refusals take milliseconds.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

import semcodec
from extras import require
from semcodec.budget import DEFAULT_UNITS, DecodeBudgetError
from semcodec.container import Container, parse_container
from semcodec.errors import ImageTooLargeError


def _forge(data: bytes, width: int, height: int) -> bytes:
    """The same streams under a checksum-valid header claiming ``width``×``height``."""
    c = parse_container(data, max_pixels=None)
    return Container(width, height, c.profile_id, c.config_hash, list(c.streams)).to_bytes()


def _image(h: int, w: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.clip(np.stack([128 + 90 * np.sin(x / 5), 3 * y + x, 200 * (x > w / 2)], -1), 0, 255).astype(np.uint8)


def _refused_fast(data: bytes, error: type[Exception], match: str, **kw) -> None:
    t0 = time.process_time()
    with pytest.raises(error, match=match):
        semcodec.pipeline.decode(data, max_pixels=40_000_000, **kw)
    assert time.process_time() - t0 < 2.0  # refused before decoding, not after


def test_lossless_charges_its_residual_coder_per_pixel() -> None:
    from semcodec.lossless import profile as lossless

    if semcodec.profiles.profile_class("lossless").availability():
        pytest.skip("lossless unavailable")
    img = _image(16, 16)
    data = semcodec.compress(img, profile="lossless", adapt_steps=0, quality=70)
    need = 16 * 16 * lossless.DECODE_UNITS_PER_PIXEL
    _refused_fast(data, DecodeBudgetError, "lossless residual", work_budget=need * 0.9)
    np.testing.assert_array_equal(semcodec.pipeline.decode(data, work_budget=need * 1.1).image, img)
    np.testing.assert_array_equal(semcodec.decompress(data), img)  # the default budget
    # a Kodak-size image (768×512, ~18 s of decoding measured here) fits the default budget with room
    assert 768 * 512 * lossless.DECODE_UNITS_PER_PIXEL < DEFAULT_UNITS / 4


@pytest.fixture(scope="module")
def itc_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, dict]:
    require("diffusers")
    from semcodec.generative.components.tiny import build_tiny_sd

    sd = build_tiny_sd(tmp_path_factory.mktemp("bounds_sd"))
    opts = {"model": str(sd), "controlnet": str(sd / "controlnet"), "base_profile": "webp"}
    return semcodec.compress(_image(32, 32), bpp=3.0, profile="itc", caption="stripes", steps=2, seed=3, **opts), opts


def test_itc_pixel_cap_follows_the_model_and_names_the_limit(itc_file) -> None:
    data, opts = itc_file
    # tiny SD: UNet sample 8 × VAE factor 4 = native 32×32, cap 4 × 32² = 4,096 pixels
    _refused_fast(_forge(data, 65, 64), ImageTooLargeError, "itc decodes at most 4,096 pixels", **opts)
    _refused_fast(_forge(data, 10**6, 32), ImageTooLargeError, "32×32 sample", **opts)
    out = semcodec.pipeline.decode(_forge(data, 64, 64), **opts).image  # at the cap: decodes
    assert out.shape == (64, 64, 3)
    # the work charge scales with the area: 4× the seed's area costs 4× its units
    _refused_fast(_forge(data, 64, 64), DecodeBudgetError, "itc diffusion", work_budget=500, **opts)
    with pytest.raises(ImageTooLargeError, match="4,096"):  # the encoder never writes what it cannot decode
        semcodec.compress(_image(72, 64), bpp=3.0, profile="itc", caption="x", steps=2, **opts)


def test_resulic_taef2_cap_and_work_charge(shared_weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require("diffusers")
    from semcodec.generative.latent.taef2 import taef2_unavailable_reason
    from semcodec.generative.resulic import profile as resulic

    if taef2_unavailable_reason(shared_weights / "taef2"):
        pytest.skip("taef2 weights absent")
    monkeypatch.setenv("SEMCODEC_TAEF2", str(shared_weights / "taef2"))
    data = semcodec.compress(_image(32, 32), bpp=2.0, profile="resulic")
    _refused_fast(_forge(data, 3001, 2000), ImageTooLargeError, "resulic decodes at most 6,000,000 pixels")
    # under the cap: the charge (12 units per 1,000 pixels) is refused by a budget below it, at once
    _refused_fast(_forge(data, 3000, 2000), DecodeBudgetError, "resulic latent decode", work_budget=40_000)
    _refused_fast(_forge(data, 1024, 1024), DecodeBudgetError, "resulic latent decode", work_budget=5000)
    out = semcodec.pipeline.decode(_forge(data, 256, 128)).image
    assert out.shape == (128, 256, 3)
    monkeypatch.setattr(resulic, "TAEF2_MAX_PIXELS", 1000)
    with pytest.raises(ImageTooLargeError, match="1,000 pixels"):
        semcodec.compress(_image(32, 40), bpp=2.0, profile="resulic")
