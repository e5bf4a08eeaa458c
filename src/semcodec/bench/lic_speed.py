"""Wall-clock encode/decode timing of the learned profiles (``python -m semcodec.bench.lic_speed IMAGES BPP...``).

``IMAGES`` is one image or a folder (e.g. Kodak). For each target bpp it reports, over the images, the median
(and max) of each image's median of ``--repeat`` runs after one warm-up (wall clock, and the encoder's CPU
time, which a loaded machine does not inflate), with the caller's torch thread count
(``--threads``, default 1: the issue's "one core"; the codec itself always runs on ``CODEC_THREADS``), plus
the machine load average so numbers from a shared machine can be read in context.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch


def _images(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    return [path]


def main(argv: list[str] | None = None) -> None:
    from ..cli import parse_options
    from ..image.learned.coding import CODEC_THREADS
    from ..image_io import load_image
    from ..pipeline import compress, decode

    p = argparse.ArgumentParser(prog="python -m semcodec.bench.lic_speed", description=__doc__.splitlines()[0])
    p.add_argument("images", help="an image or a folder of images")
    p.add_argument("bpp", nargs="+", type=float)
    p.add_argument("--profile", default="lic", help="lic or lic-msssim")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--limit", type=int, help="only the first K images (sorted by name)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="profile option (repeatable),"
                   " e.g. refine_steps=4")
    a = p.parse_args(argv)
    opts = parse_options(a.set)
    torch.set_num_threads(a.threads)
    files = _images(Path(a.images))[:a.limit]
    for bpp in a.bpp:
        per_image = []
        for f in files:
            img = load_image(f)
            data = compress(img, bpp=bpp, profile=a.profile, **opts)
            decode(data)
            enc, dec, enc_cpu = [], [], []
            for _ in range(a.repeat):
                t, c = time.perf_counter(), time.process_time()
                data = compress(img, bpp=bpp, profile=a.profile, **opts)
                enc.append(time.perf_counter() - t)
                enc_cpu.append(time.process_time() - c)
                t = time.perf_counter()
                out = decode(data).image
                dec.append(time.perf_counter() - t)
            mse = float(((out.astype(np.float64) - img) ** 2).mean())
            per_image.append({"image": f.name, "size": f"{img.shape[1]}x{img.shape[0]}",
                              "bpp": 8 * len(data) / (img.shape[0] * img.shape[1]),
                              "psnr": 10 * np.log10(255**2 / mse), "enc_s": statistics.median(enc),
                              "enc_cpu_s": statistics.median(enc_cpu),
                              "dec_s": statistics.median(dec)})
        row = {"profile": a.profile, "options": opts, "bpp_target": bpp, "images": len(per_image),
               "bpp_max": max(r["bpp"] for r in per_image),
               "enc_s_median": statistics.median(r["enc_s"] for r in per_image),
               "enc_s_max": max(r["enc_s"] for r in per_image),
               "enc_cpu_s_median": statistics.median(r["enc_cpu_s"] for r in per_image),
               "dec_s_median": statistics.median(r["dec_s"] for r in per_image),
               "dec_s_max": max(r["dec_s"] for r in per_image),
               "threads": a.threads, "codec_threads": CODEC_THREADS, "loadavg_1m": os.getloadavg()[0]}
        if len(per_image) == 1:
            row.update(per_image[0])
        print(json.dumps(row))


if __name__ == "__main__":
    main()
