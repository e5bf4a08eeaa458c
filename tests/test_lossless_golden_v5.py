"""A RESIDUAL stream of version 5 (the adapter's low-rank form), written once by
scripts/make_golden_lossless_v5.py with the session-4 weights, keeps decoding to the same pixels (since the
weights update of session 8 through the packaged earlier weights, ``weights/lossless_earlier/s4_3layer``)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

import semcodec
from semcodec.container import StreamKind, parse_container
from semcodec.lossless.coder import VERSION_CB_LOW_RANK

GOLDEN = Path(__file__).parent / "golden" / "kodim23_64x64.lossless_v5.smc"
PIXELS_SHA256 = "c9d404d460ec090b57512077f264b0fd33a7b6693b69375e97dab7e50108599e"


def test_low_rank_adapter_golden_file_decodes_exactly():
    data = GOLDEN.read_bytes()
    residual = [s for s in parse_container(data).streams if s.kind == StreamKind.RESIDUAL]
    assert len(data) == 8429 and residual[0].payload[0] == VERSION_CB_LOW_RANK
    image = semcodec.decode(data).image
    assert image.shape == (64, 64, 3)
    assert hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest() == PIXELS_SHA256
