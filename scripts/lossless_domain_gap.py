"""How far the lossless residual model is from JPEG-XL on images of different pixel statistics.

Ours: teacher-forced whole-image estimate with the bias-form adapter (``coder.fit_residual``; on Kodak
within 0.1 % of the coded size) plus the real base bytes, the better of base qualities 30 and 50.
JPEG-XL: lossless, effort 9, real bytes. Four sets of four images each:

- Kodak (kodim03, 09, 15, 21) as they are, and box-downsampled 2× (PIL ``reduce(2)``);
- BSDS500 ``val`` (the first four) at full resolution (JPEG-decoded) and box-downsampled 2×, the
  statistics the model was trained on until session 8.

A ratio that moves with downsampling says the model is tuned to one pixel scale. Kodak is used here
to diagnose, never to choose weights.

    python scripts/lossless_domain_gap.py [WEIGHTS_DIR]
"""

from __future__ import annotations

import glob
import sys

import imagecodecs
import numpy as np
from PIL import Image

from semcodec.lossless.base_codec import encode_base
from semcodec.lossless.coder import fit_residual
from semcodec.lossless.model import load_model
from semcodec.lossless.profile import default_weights
from semcodec.paths import shared_data_dir


def main() -> None:
    model = load_model(sys.argv[1] if len(sys.argv) > 1 else default_weights())
    data = shared_data_dir()
    if data is None:
        raise SystemExit("needs ../shared/data (or SEMCODEC_DATA)")
    kodak = sorted(glob.glob(str(data / "kodak" / "*.png")))[2:24:6]
    bsds = sorted(glob.glob(str(data / "bsds500" / "val" / "*.jpg")))[:4]
    sets = {"kodak": (kodak, 1), "kodak_ds2": (kodak, 2), "bsds_val_native": (bsds, 1), "bsds_val_ds2": (bsds, 2)}

    def ours(x: np.ndarray) -> float:
        best = float("inf")
        for q in (30, 50):
            base, xl = encode_base(x, "heif", q)
            best = min(best, (8 * len(base) + fit_residual(model, x, xl, q).bits) / x.size)
        return best

    print("| images | ours bpsp | JPEG-XL e9 bpsp | ours / JPEG-XL |\n|---|---|---|---|")
    for name, (files, ds) in sets.items():
        o, j = [], []
        for f in files:
            im = Image.open(f).convert("RGB")
            if ds > 1:
                im = im.reduce(ds)
            x = np.ascontiguousarray(np.asarray(im)[: im.height // 8 * 8, : im.width // 8 * 8])
            o.append(ours(x))
            j.append(8 * len(imagecodecs.jpegxl_encode(x, lossless=True, effort=9)) / x.size)
        print(f"| {name} | {np.mean(o):.3f} | {np.mean(j):.3f} | {np.mean(o) / np.mean(j):.3f} |", flush=True)


if __name__ == "__main__":
    main()
