"""Wall-clock encode/decode timing of profile ``lic`` (``python -m semcodec.bench.lic_speed IMG BPP...``).

Reports the median of ``--repeat`` runs after one warm-up, with the caller's torch thread count
(``--threads``; the codec itself always runs on ``CODEC_THREADS``), plus the machine load average so
numbers from a shared machine can be read in context.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np
import torch


def main(argv: list[str] | None = None) -> None:
    from ..image.learned.coding import CODEC_THREADS
    from ..image_io import load_image
    from ..pipeline import compress, decode

    p = argparse.ArgumentParser(prog="python -m semcodec.bench.lic_speed", description=__doc__.splitlines()[0])
    p.add_argument("image")
    p.add_argument("bpp", nargs="+", type=float)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    img = load_image(a.image)
    rows = []
    for bpp in a.bpp:
        data = compress(img, bpp=bpp, profile="lic")
        decode(data)
        enc, dec = [], []
        for _ in range(a.repeat):
            t = time.perf_counter()
            data = compress(img, bpp=bpp, profile="lic")
            enc.append(time.perf_counter() - t)
            t = time.perf_counter()
            out = decode(data).image
            dec.append(time.perf_counter() - t)
        mse = float(((out.astype(np.float64) - img) ** 2).mean())
        rows.append({"bpp_target": bpp, "bpp": 8 * len(data) / (img.shape[0] * img.shape[1]),
                     "psnr": 10 * np.log10(255**2 / mse), "enc_s": statistics.median(enc),
                     "dec_s": statistics.median(dec), "threads": a.threads, "codec_threads": CODEC_THREADS,
                     "loadavg_1m": os.getloadavg()[0]})
        print(json.dumps(rows[-1]))


if __name__ == "__main__":
    main()
