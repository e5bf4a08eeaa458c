"""Write the pre-restructure golden set (tests/golden/v1/): files and stream payloads of release db8fd05.

Run once from the repo root; the tests then check that later code decodes them bit-identically.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from PIL import Image

import semcodec
from semcodec.semantic.masks.codec import encode_masks
from semcodec.text import encode_text_stream, get_text_coder, text_coder_classes

OUT = Path("tests/golden/v1")
SRC = Path("tests/golden/kodim23_96x64.png")
CAPTION = "Two colourful parrots perch side by side on a branch in front of green leaves."


def sha(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    img = np.asarray(Image.open(SRC).convert("RGB"))
    manifest: dict[str, dict] = {}
    files = [("avif", {"bpp": 0.6}), ("jxl", {"bpp": 0.5}), ("j2k", {"bpp": 0.5}), ("heif", {"bpp": 2.0}),
             ("lic", {"bpp": 0.3}), ("lic", {"quality": 4}), ("jpeg", {"bpp": 0.8, "caption": CAPTION}),
             ("resulic", {"bpp": 0.3})]  # resulic needs the shared TAEF2 weights to decode
    for prof, kw in files:
        tag = "_".join(f"{k}{v}" for k, v in kw.items() if k != "caption") + ("_caption" if "caption" in kw else "")
        data = semcodec.compress(img, profile=prof, **kw)
        name = f"kodim23_96x64.{prof}.{tag}.smc"
        (OUT / name).write_bytes(data)
        dec = semcodec.decode(data)
        manifest[name] = {"profile": prof, "options": kw, "bytes": len(data), "pixels_sha256": sha(dec.image),
                          "texts": dec.texts}
    crop = img[:32, :48]
    Image.fromarray(crop).save(OUT / "kodim23_48x32.png")
    data = semcodec.compress(crop, profile="lossless", quality=50)
    (OUT / "kodim23_48x32.lossless.smc").write_bytes(data)
    assert np.array_equal(semcodec.decompress(data), crop)
    manifest["kodim23_48x32.lossless.smc"] = {"profile": "lossless", "bytes": len(data), "pixels_sha256": sha(crop),
                                              "options": {"quality": 50}, "texts": []}
    text = {}
    for name, cls in sorted(text_coder_classes().items()):
        if cls.availability() is not None:
            continue
        text[name] = encode_text_stream(CAPTION, get_text_coder(name)).hex()
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[:40, :56]
    masks = [((yy - 20) ** 2 + (xx - 25) ** 2 < 150), (rng.random((40, 56)) < 0.1) | (xx > 40)]
    np.save(OUT / "masks_40x56.npy", np.stack(masks))
    mask_payloads = {f"{m}_f{f}": encode_masks(masks, method=m, factor=f).hex()
                     for m in ("ctx",) for f in (1, 2)}
    (OUT / "golden.json").write_text(json.dumps({"files": manifest, "caption": CAPTION, "text_streams": text,
                                                 "mask_payloads": mask_payloads}, indent=2) + "\n")
    print(json.dumps({k: v["bytes"] for k, v in manifest.items()}, indent=1), sorted(text))


if __name__ == "__main__":
    main()
