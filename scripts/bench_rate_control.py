#!/usr/bin/env python3
"""Rate control speed: the model search against the bisection search, in one run (issue 19).

For every Kodak image × codec × bpp target both searches of
:func:`semcodec.image.classical.rate.choose` code the image for the same byte budget (the image
stream budget ``compress`` would give the profile). Prints, per codec and target, the wall time per
image (median and max) and the encoder calls of each search, how often both picked the identical
stream, and the BD-rate (PSNR, pchip) of the new search against the old one, computed per image over
the targets and averaged (negative = the new search needs fewer bits). The machine load is printed
at the start and the end: timings on a busy machine are upper bounds.

    python scripts/bench_rate_control.py                                  # 24 images, 5 codecs, 4 targets
    python scripts/bench_rate_control.py --limit 4 --codecs avif --bpp 0.3,1.0
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from semcodec.container import Container, Stream, StreamKind, stream_cost
from semcodec.errors import RateError
from semcodec.eval.bdrate import bd_rate
from semcodec.image.classical import AUTO_SCALES, CODECS
from semcodec.image.classical.rate import choose
from semcodec.image_io import load_image
from semcodec.paths import shared_data_dir
from semcodec.pipeline import target_bytes
from semcodec.profiles import get_profile

SEARCHES = ("bisect", "model")


class Counting:
    """A codec adapter that counts encoder calls (everything else is the real codec)."""

    def __init__(self, codec):
        self.codec, self.calls = codec, 0

    def __getattr__(self, name):
        return getattr(self.codec, name)

    def encode(self, image, quality):
        self.calls += 1
        return self.codec.encode(image, quality)


def image_budget(profile: str, bpp: float, width: int, height: int) -> tuple[int, int]:
    """(file byte target, image stream budget) as :func:`semcodec.pipeline.compress` computes them."""
    total = target_bytes(bpp, width, height)
    prof = get_profile(profile)
    header = len(Container(width, height, prof.profile_id, bytes(4), [Stream(StreamKind.IMAGE, b"")]).header_bytes())
    return total, total - header


def run(images: list[Path], codecs: list[str], bpps: list[float]) -> dict:
    rows: dict = {}
    for n, path in enumerate(images):
        image = load_image(path)
        h, w = image.shape[:2]
        for name in codecs:
            for bpp in bpps:
                total, budget = image_budget(name, bpp, w, h)
                header = total - budget
                for search in SEARCHES:
                    codec = Counting(CODECS[name])
                    t0, c0 = time.perf_counter(), time.process_time()
                    try:
                        c = choose(codec, image, budget, AUTO_SCALES, search=search)
                    except RateError:
                        rows[path.name, name, bpp, search] = None
                        continue
                    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
                    size = header + stream_cost(len(c.data))
                    assert size <= total, (path.name, name, bpp, search, size, total)
                    rows[path.name, name, bpp, search] = {
                        "s": dt, "cpu": cpu, "calls": codec.calls, "bpp": 8 * size / (w * h), "psnr": c.psnr,
                        "data": c.data, "choice": (c.factor, c.quality),
                    }
        print(f"  {n + 1}/{len(images)} {path.name} done, load {os.getloadavg()[0]:.1f}", file=sys.stderr, flush=True)
    return rows


def report(rows: dict, images: list[Path], codecs: list[str], bpps: list[float]) -> None:
    print("\nseconds per image: wall median/max and CPU median/max (CPU time is what an idle core would"
          " take); calls = mean encoder calls; same = identical stream chosen; dPSNR = mean new - old (dB)")
    print(f"{'codec':5} {'bpp':>5} | {'old wall':>11} {'old cpu':>11} {'calls':>5} | {'new wall':>11}"
          f" {'new cpu':>11} {'calls':>5} | {'same':>5} {'dPSNR':>6}")

    def med_max(values: list[float]) -> str:
        return f"{statistics.median(values):5.2f}/{max(values):5.2f}"

    for name in codecs:
        for bpp in bpps:
            pairs = [(rows[p.name, name, bpp, "bisect"], rows[p.name, name, bpp, "model"]) for p in images]
            pairs = [(a, b) for a, b in pairs if a is not None and b is not None]
            if not pairs:
                print(f"{name:5} {bpp:5} | nothing fits")
                continue
            old, new = [a for a, _ in pairs], [b for _, b in pairs]
            same = sum(a["data"] == b["data"] for a, b in pairs)
            dpsnr = statistics.mean(b["psnr"] - a["psnr"] for a, b in pairs)
            cols = []
            for side in (old, new):
                cols.append(f"{med_max([r['s'] for r in side])} {med_max([r['cpu'] for r in side])}"
                            f" {statistics.mean(r['calls'] for r in side):5.1f}")
            print(f"{name:5} {bpp:5} | {cols[0]} | {cols[1]} | {same:2d}/{len(pairs):<2d} {dpsnr:+6.3f}")
    print(f"\n{'codec':5} | BD-rate new vs old (PSNR, mean over images) | images with a BD-rate")
    for name in codecs:
        values = []
        for p in images:
            curves = []
            for search in SEARCHES:
                pts = [rows[p.name, name, b, search] for b in bpps]
                pts = [r for r in pts if r is not None]
                curves.append(([r["bpp"] for r in pts], [r["psnr"] for r in pts]))
            res = bd_rate(*curves[0], *curves[1])
            if res.ok:
                values.append(res.value)
        mean = statistics.mean(values) if values else math.nan
        worst = max(values) if values else math.nan
        print(f"{name:5} | {mean:+7.3f} %  (worst image {worst:+.3f} %)  | {len(values)}/{len(images)}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, help="folder of Kodak PNGs (default: the shared data's kodak/)")
    ap.add_argument("--codecs", default="avif,webp,jxl,jpeg,heif")
    ap.add_argument("--bpp", default="0.01,0.02,0.05,0.1")
    ap.add_argument("--limit", type=int, default=0, help="first N images only")
    args = ap.parse_args()
    folder = args.data or (shared_data_dir() or Path("data")) / "kodak"
    images = sorted(folder.glob("*.png"))[: args.limit or None]
    if not images:
        print(f"no PNG images in {folder} (set SEMCODEC_DATA or --data)", file=sys.stderr)
        return 2
    codecs = [c for c in args.codecs.split(",") if c]
    bpps = sorted(float(b) for b in args.bpp.split(","))
    for name in codecs:
        why = CODECS[name].availability()
        if why:
            print(f"{name}: {why}", file=sys.stderr)
            return 2
    print(f"rate control bench: {len(images)} images × {codecs} × bpp {bpps}; cpus {os.cpu_count()},"
          f" load at start {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    t0 = time.perf_counter()
    rows = run(images, codecs, bpps)
    report(rows, images, codecs, bpps)
    print(f"\nload at end {' '.join(f'{x:.1f}' for x in os.getloadavg())}; total {time.perf_counter() - t0:.0f} s;"
          f" numpy {np.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
