"""Files and stream payloads written by release db8fd05 (before the restructure) stay bit-identical.

`scripts/make_golden_v1.py` wrote `tests/golden/v1/` once; never regenerate it. A failure here means a
change altered what an existing file decodes to, or what the encoder writes for the same input (the
container header aside: these files are container version 1, new files version 2, see golden_reencode.py).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import semcodec
from extras import needs, require
from golden_reencode import assert_same_content, same_budget_options
from semcodec.paths import shared_weights_dir
from semcodec.semantic.masks.codec import decode_masks, encode_masks
from semcodec.text import decode_text_stream, encode_text_stream, get_text_coder

V1 = Path(__file__).parent / "golden" / "v1"
MANIFEST = json.loads((V1 / "golden.json").read_text())
FILES = MANIFEST["files"]


def _needs_shared(name: str) -> None:
    if FILES[name]["profile"] == "resulic" and shared_weights_dir() is None:
        pytest.skip("resulic's default latent decoder needs the shared TAEF2 weights (set SEMCODEC_WEIGHTS)")
    if FILES[name]["profile"] == "resulic":
        require("diffusers")  # its module imports diffusers (the generative extra)


@pytest.mark.parametrize("name", sorted(FILES))
def test_v1_file_decodes_to_recorded_pixels(name: str) -> None:
    _needs_shared(name)
    entry = FILES[name]
    data = (V1 / name).read_bytes()
    assert len(data) == entry["bytes"]
    decoded = semcodec.decode(data)
    assert hashlib.sha256(np.ascontiguousarray(decoded.image).tobytes()).hexdigest() == entry["pixels_sha256"]
    assert decoded.texts == entry["texts"]


@pytest.mark.parametrize("name", sorted(n for n in FILES if ".lossless." not in n))
def test_v1_file_reencodes_identically(name: str) -> None:
    _needs_shared(name)
    entry = FILES[name]
    img = np.asarray(Image.open(V1.parent / "kodim23_96x64.png").convert("RGB"))
    options = same_budget_options(entry["options"], img.shape[1], img.shape[0])
    assert_same_content(semcodec.compress(img, profile=entry["profile"], **options), (V1 / name).read_bytes())


@pytest.mark.parametrize("coder", [pytest.param(c, marks=needs("open_clip")) if c == "clip-index" else c
                                   for c in sorted(MANIFEST["text_streams"])])
def test_v1_text_stream_roundtrip(coder: str) -> None:
    payload = bytes.fromhex(MANIFEST["text_streams"][coder])
    assert decode_text_stream(payload) == MANIFEST["caption"]
    assert encode_text_stream(MANIFEST["caption"], get_text_coder(coder)) == payload


@pytest.mark.parametrize("key", sorted(MANIFEST["mask_payloads"]))
def test_v1_mask_payload_roundtrip(key: str) -> None:
    masks = list(np.load(V1 / "masks_40x56.npy"))
    method, factor = key.split("_f")
    payload = bytes.fromhex(MANIFEST["mask_payloads"][key])
    assert encode_masks(masks, method=method, factor=int(factor)) == payload
    decoded = decode_masks(payload, expected_size=(40, 56))
    if factor == "1":
        assert all(np.array_equal(a, b) for a, b in zip(decoded, masks, strict=True))
    else:
        assert len(decoded) == len(masks) and decoded[0].shape == masks[0].shape
