"""Kodak throughput, local vs Ray, in one run (issue 8 benchmark; slow, not a test).

    python scripts/bench_throughput.py --data ../shared/data/kodak --profile webp --bpp 0.05 --workers 2

Runs `compress-dir` over the folder three ways — 1 local process, N local processes, N Ray actors on a
local head started for the run — into fresh output folders, and prints images/s for each plus the
ratios, as a Markdown table. Ray start-up time is reported separately and excluded from images/s.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/kodak")
    ap.add_argument("--profile", default="webp")
    ap.add_argument("--bpp", type=float, default=0.05)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--limit", type=int, default=None, help="use only the first K images")
    args = ap.parse_args()

    from semcodec.scale.batch import compress_dir
    from semcodec.scale.ray_executor import connect

    src = Path(args.data)
    if args.limit:
        tmp_src = Path(tempfile.mkdtemp(prefix="thr_src_"))
        for p in sorted(src.glob("*.png"))[: args.limit]:
            shutil.copy(p, tmp_src / p.name)
        src = tmp_src
    n = len(list(src.glob("*.png")))
    rows = []
    for label, kwargs in [("local, 1 process", dict(workers=1)),
                          (f"local, {args.workers} processes", dict(workers=args.workers)),
                          (f"Ray, {args.workers} actors", dict(workers=args.workers, ray="local"))]:
        out = Path(tempfile.mkdtemp(prefix="thr_out_"))
        startup = 0.0
        if "ray" in kwargs:
            t = time.perf_counter()
            connect("local")
            startup = time.perf_counter() - t
        t0 = time.perf_counter()
        res = compress_dir(src, out, args.profile, args.bpp, None, ray=kwargs.get("ray"),
                           workers=kwargs["workers"], progress=False)
        dt = time.perf_counter() - t0
        failed = sum(1 for r in res if r.get("error"))
        rows.append((label, n / dt, dt, startup, failed))
        shutil.rmtree(out, ignore_errors=True)
    base = rows[0][1]
    print(f"Kodak ({n} images), profile {args.profile} at {args.bpp} bpp, {platform.node()}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
    print("| run | images/s | wall s | vs 1 process | start-up s (excluded) | failed |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, ips, dt, startup, failed in rows:
        print(f"| {label} | {ips:.3f} | {dt:.1f} | {ips / base:.2f}x | {startup:.1f} | {failed} |")


if __name__ == "__main__":
    main()
