"""A lossless file written with the session-8 weights (scripts/make_golden_lossless_s8.py) keeps decoding
to the same pixels after the weights update of session 9, through the packaged earlier weights
(``weights/lossless_earlier/s8_6layer``)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

import semcodec
from semcodec.errors import ProfileMismatchError
from semcodec.lossless.profile import DEFAULT_WEIGHTS

GOLDEN = Path(__file__).parent / "golden" / "kodim23_64x64.lossless_s8.smc"
PIXELS_SHA256 = "c9d404d460ec090b57512077f264b0fd33a7b6693b69375e97dab7e50108599e"


def test_session8_lossless_file_decodes_exactly(monkeypatch):
    monkeypatch.delenv("SEMCODEC_LOSSLESS_WEIGHTS", raising=False)  # that variable turns the fallback off
    data = GOLDEN.read_bytes()
    assert len(data) == 7342
    with pytest.raises(ProfileMismatchError):  # the packaged default weights alone cannot decode it
        semcodec.decode(data, weights=str(DEFAULT_WEIGHTS))
    image = semcodec.decode(data).image
    assert image.shape == (64, 64, 3)
    assert hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest() == PIXELS_SHA256
