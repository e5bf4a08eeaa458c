"""A model named by hub id fingerprints by content: encode with the hub id, decode with the snapshot's
local folder (and the reverse), identical pixels. Runs in a fresh interpreter with ``HF_HUB_CACHE``
pointing at a temporary cache laid out as huggingface_hub writes it (blobs + snapshot symlinks + refs)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from semcodec.generative.components.tiny import build_tiny_sd

REPO, REV = "tiny-org/tiny-sd", "0123456789abcdef0123456789abcdef01234567"

SCRIPT = """
import json, sys
import numpy as np
from semcodec.errors import MissingComponentError
from semcodec.pipeline import compress, decode
hub, local, out = sys.argv[1:4]
img = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
res = {}
for enc, dec in ((hub, local), (local, hub)):
    data = compress(img, bpp=3.0, profile="itc", caption="a barn", steps=2, model=enc, base_profile="webp")
    a = decode(data, model=dec, base_profile="webp").image
    b = decode(data, model=enc, base_profile="webp").image
    res[enc] = [data.hex(), bool(np.array_equal(a, b))]
try:
    compress(img, bpp=3.0, profile="itc", caption="a", steps=2, model="tiny-org/not-cached", base_profile="webp")
    res["missing"] = None
except MissingComponentError as e:
    res["missing"] = str(e)
json.dump(res, open(out, "w"))
"""


def _fake_cache(cache: Path, model: Path) -> Path:
    """``models--org--name/{blobs,snapshots/<rev>,refs/main}`` holding ``model``'s files."""
    root = cache / f"models--{REPO.replace('/', '--')}"
    snap = root / "snapshots" / REV
    for f in sorted(p for p in model.rglob("*") if p.is_file()):
        data = f.read_bytes()
        blob = root / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = snap / f.relative_to(model)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(blob)
    (root / "refs").mkdir(parents=True)
    (root / "refs" / "main").write_text(REV)
    return snap


def test_hub_id_and_local_folder_fingerprint_the_same(tmp_path):
    model = build_tiny_sd(tmp_path / "sd", controlnet=False)
    snap = _fake_cache(tmp_path / "hub", model)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEMCODEC_", "HF_"))}
    env.update(HF_HUB_CACHE=str(tmp_path / "hub"), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    subprocess.run([sys.executable, "-c", SCRIPT, REPO, str(snap), str(tmp_path / "r.json")], env=env, check=True,
                   timeout=600)
    res = json.loads((tmp_path / "r.json").read_text())
    (hub_file, hub_same), (local_file, local_same) = res[REPO], res[str(snap)]
    assert hub_same and local_same  # decoded with the other name: the very same pixels
    assert hub_file == local_file  # same header fingerprint and streams whatever the model was called
    assert re.search(r"the (unet|scheduler|vae) of tiny-org/not-cached is not in the local Hugging Face cache",
                     res["missing"])  # before: a name-only fingerprint "id@main" and a file undecodable elsewhere
    assert "SEMCODEC_ALLOW_DOWNLOADS=1" in res["missing"]


def test_a_full_clone_and_a_cache_of_loaded_files_fingerprint_the_same(tmp_path):
    import shutil

    from semcodec.generative.components import component_identity

    model = build_tiny_sd(tmp_path / "sd", controlnet=False)
    clone = tmp_path / "clone"
    shutil.copytree(model, clone)
    unet = clone / "unet"  # what a git clone of an SD repo has besides the loaded safetensors
    (unet / "diffusion_pytorch_model.fp16.safetensors").write_bytes(b"half")
    (unet / "diffusion_pytorch_model.bin").write_bytes(b"pickle")
    assert component_identity(clone, "unet") == component_identity(model, "unet")
    (unet / "diffusion_pytorch_model.safetensors").write_bytes(b"other weights")
    assert component_identity(clone, "unet", revision="x") != component_identity(model, "unet")
