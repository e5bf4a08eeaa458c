"""The lic decoder synthesises strip by strip: pixels identical to one whole-image pass, memory bounded."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from semcodec.errors import ImageTooLargeError
from semcodec.image.learned import coding
from semcodec.image.learned.weights import weights_missing

pytestmark = pytest.mark.skipif(weights_missing() is not None, reason="shipped lic weights missing")


@pytest.fixture(scope="module")
def coder() -> coding.LicCoder:
    from semcodec.profiles import get_profile

    return get_profile("lic").coder


def _image(h: int, w: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([128 + 90 * np.sin(x / 9) * np.cos(y / 13), (x + 2 * y) % 256, 255 * ((x // 40 + y // 30) % 2)], -1)
    img += np.random.default_rng(0).normal(0, 12, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _whole(coder: coding.LicCoder, y: torch.Tensor, scale: int, width: int, height: int) -> np.ndarray:
    """The decoder before strips: g_s and the upsampler over the whole padded latent at once."""
    x = coder.model.upsample(coder.model.g_s(y.contiguous(memory_format=torch.channels_last)), scale)
    return coding.to_uint8(x[..., :height, :width])


@pytest.mark.parametrize("scale", [1, 2, 4, 8])
def test_strips_are_bit_identical_to_one_pass(coder: coding.LicCoder, scale: int) -> None:
    img = _image(200, 330)  # odd sizes: padding rows and columns are cropped away
    h, w = img.shape[:2]
    c = coder.encode_latent(coder.analyse(img, scale), scale, coder.max_rate_code // 2)
    _, _, pw, ph = coding.coded_size(w, h, scale)
    with coder.running():
        y_hat = coding.decode_latents(coder.model, c.z_bytes, c.y_bytes, (ph // coding.ALIGN, pw // coding.ALIGN),
                                      mean_grid=coding.MEAN_GRID)
        y = y_hat * coder.model.gains(coder._rate(c.rate_code))[1]
        whole = _whole(coder, y, scale, w, h)
        for rows in (1, 2, 5, None):
            assert np.array_equal(coder.synthesize(y, scale, w, h, rows=rows), whole), (scale, rows)
    assert np.array_equal(coder.decode(c, w, h), whole)


def test_extreme_aspect_ratio_is_refused_before_any_work(coder: coding.LicCoder) -> None:
    y = torch.zeros(1, coder.model.M, 1, 40000 // 64 + 1)
    with pytest.raises(ImageTooLargeError, match="one strip at a time"):
        coder.synthesize(y, 8, 40000, 1000)
