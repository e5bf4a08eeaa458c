"""Write tests/golden/kodim23_64x64.lossless_s8.smc once: a lossless file of the session-8 weights.

Written with the weights the profile shipped in session 8 (6 layers, qualities 30/40/50/70), by the
profile's default encoder of that time, before the session-9 weights replaced them; the packaged
earlier weights (``weights/lossless_earlier/s8_6layer``) decode it. Never regenerate it (see
tests/golden/README.md). Usage, with the session-8 weights still the packaged default:
python scripts/make_golden_lossless_s8.py
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from PIL import Image

import semcodec

GOLDEN = Path(__file__).resolve().parents[1] / "tests" / "golden"


def main() -> None:
    img = np.asarray(Image.open(GOLDEN / "kodim23_96x64.png").convert("RGB"))[:, 16:80].copy()  # 64×64
    data = semcodec.compress(img, profile="lossless")
    assert np.array_equal(semcodec.decode(data).image, img)
    (GOLDEN / "kodim23_64x64.lossless_s8.smc").write_bytes(data)
    print(json.dumps({"bytes": len(data), "pixels_sha256": hashlib.sha256(np.ascontiguousarray(img).tobytes()).hexdigest()}))


if __name__ == "__main__":
    main()
