"""The packaged lossless weights: they load, code exactly, and beat PNG on a real photo crop."""

from __future__ import annotations

import numpy as np
import pytest

from semcodec.image_io import load_image
from semcodec.lossless.profile import LosslessProfile
from semcodec.pipeline import compress, decode


@pytest.fixture(scope="module")
def shipped():
    reason = LosslessProfile.availability()
    if reason is not None:
        pytest.skip(f"lossless weights not available: {reason}")
    return LosslessProfile


def test_shipped_weights_round_trip_exactly(shipped, natural_image):
    x = np.ascontiguousarray(natural_image[:40, :56])  # not a multiple of the 8-pixel patch
    blob = compress(x, profile="lossless")
    assert np.array_equal(decode(blob).image, x)
    assert 8 * len(blob) / x.size < 8.0


def test_shipped_weights_beat_png_on_a_kodak_crop(shipped, kodak_dir):
    import imagecodecs

    x = np.ascontiguousarray(load_image(str(kodak_dir / "kodim23.png"))[200:264, 300:396])
    blob = compress(x, profile="lossless")
    assert np.array_equal(decode(blob).image, x)
    assert len(blob) < len(imagecodecs.png_encode(x))
