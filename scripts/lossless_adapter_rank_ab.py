"""Real lossless files with the adapter's low-rank form off and at given ranks, same base quality.

Usage: RANKS=0,4,8 python scripts/lossless_adapter_rank_ab.py IMAGE [IMAGE ...]
Prints one JSON line per image: bpsp (whole .smc streams) and encoder CPU seconds per rank, the
RESIDUAL stream version written (4 = bias form, 5 = low-rank form), and whether the last file decodes
exactly. The base quality is fixed (30) so only the adapter differs.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

from semcodec.image_io import load_image
from semcodec.lossless.profile import LosslessProfile
from semcodec.profiles.base import EncodeRequest


def main() -> None:
    ranks = [int(v) for v in os.environ.get("RANKS", "0,4").split(",")]
    for f in sys.argv[1:]:
        x = load_image(f)
        row: dict = {"image": os.path.basename(f)}
        for rank in ranks:
            t = time.process_time()
            streams = LosslessProfile(adapter_rank=rank).encode(EncodeRequest(image=x, quality=30))
            row[f"r{rank}_cpu_s"] = round(time.process_time() - t, 1)
            row[f"r{rank}_bpsp"] = round(8 * sum(s.framed_size() for s in streams) / x.size, 4)
            row[f"r{rank}_version"] = streams[1].payload[0]
        row["exact"] = bool(np.array_equal(LosslessProfile().decode(streams, x.shape[1], x.shape[0]), x))
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
