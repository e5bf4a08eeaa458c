"""Golden files: committed .smc files decode to committed pixel hashes; re-encoding is byte-identical."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import semcodec

GOLDEN = Path(__file__).parent / "golden"
MANIFEST = json.loads((GOLDEN / "golden.json").read_text())


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_golden_decodes_to_committed_pixels(name: str) -> None:
    entry = MANIFEST[name]
    data = (GOLDEN / name).read_bytes()
    assert len(data) == entry["bytes"] < 1000
    image = semcodec.decompress(data)
    assert hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest() == entry["pixels_sha256"]
    info = semcodec.describe(data)
    assert info["profile"] == entry["profile"] and info["bpp"] <= entry["bpp"]


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_golden_reencodes_to_identical_bytes(name: str) -> None:
    entry = MANIFEST[name]
    source = np.asarray(Image.open(GOLDEN / entry["source"]).convert("RGB"))
    data = semcodec.compress(source, bpp=entry["bpp"], profile=entry["profile"])
    assert data == (GOLDEN / name).read_bytes()
