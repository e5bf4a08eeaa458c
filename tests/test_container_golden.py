"""Golden files: committed .smc files decode to committed pixel hashes; re-encoding gives the same streams."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import semcodec
from golden_reencode import assert_same_content, same_budget_options

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
def test_golden_reencodes_to_identical_streams(name: str) -> None:
    entry = MANIFEST[name]
    source = np.asarray(Image.open(GOLDEN / entry["source"]).convert("RGB"))
    options = same_budget_options({"bpp": entry["bpp"]}, source.shape[1], source.shape[0])
    data = semcodec.compress(source, profile=entry["profile"], **options)
    assert_same_content(data, (GOLDEN / name).read_bytes())


def test_new_files_are_version_2_within_the_target_and_describe_both_versions() -> None:
    """Rate control pays the longer v2 header; ``describe`` reports each file's own header size."""
    from semcodec.container import FORMAT_VERSION, parse_container
    from semcodec.pipeline import target_bytes

    name = "kodim23_96x64.webp.smc"  # its golden file uses the byte target to within 1 byte
    entry = MANIFEST[name]
    source = np.asarray(Image.open(GOLDEN / entry["source"]).convert("RGB"))
    data = semcodec.compress(source, bpp=entry["bpp"], profile=entry["profile"])
    assert parse_container(data).version == FORMAT_VERSION == 2
    assert len(data) <= target_bytes(entry["bpp"], source.shape[1], source.shape[0])
    old = (GOLDEN / name).read_bytes()
    assert semcodec.describe(data)["header_bytes"] == semcodec.describe(old)["header_bytes"] + 2
