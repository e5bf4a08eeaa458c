"""Write tests/golden/kodim23_64x64.lossless_v5.smc once: a RESIDUAL stream of version 5.

The encoder keeps the adapter's low-rank form only when it pays for its ~1.5 kB, which a tiny image
never does, so this script makes the choice for it (the cost function prefers the higher rank).
Written with the then shipped lossless weights (session 4, now ``weights/lossless_earlier/s4_3layer``, which
decode it) at base quality 30, by the encoder of that time; never regenerate it (see tests/golden/README.md).
Usage: python scripts/make_golden_lossless_v5.py
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from PIL import Image

import semcodec
import semcodec.lossless.coder as coder

GOLDEN = Path(__file__).resolve().parents[1] / "tests" / "golden"


def main() -> None:
    img = np.asarray(Image.open(GOLDEN / "kodim23_96x64.png").convert("RGB"))[:, 16:80].copy()  # 64×64
    coder.adapter_cost = lambda model, *tokens: -float(tokens[-1].rank)
    data = semcodec.compress(img, profile="lossless", quality=30)
    decoded = semcodec.decode(data).image
    assert np.array_equal(decoded, img)
    (GOLDEN / "kodim23_64x64.lossless_v5.smc").write_bytes(data)
    print(json.dumps({"bytes": len(data), "pixels_sha256": hashlib.sha256(np.ascontiguousarray(img).tobytes()).hexdigest()}))


if __name__ == "__main__":
    main()
