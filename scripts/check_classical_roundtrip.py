#!/usr/bin/env python3
"""Acceptance check for the classical profiles on Kodak (issue 2).

For every image × profile × bpp target: compress through the public pipeline, write the ``.smc``
atomically, read it back, check ``8·size/(H·W) ≤ target``, decompress (shape and dtype), and check that
``describe`` (what ``semcodec info`` prints) sums to the file size. Prints a summary table per
profile × target (pass count, RateError count, mean bpp, worst size/target ratio, mean PSNR of the
decoded image, mean encode time and the mean chosen downscale factor).

    python scripts/check_classical_roundtrip.py                     # all 24 Kodak images
    python scripts/check_classical_roundtrip.py --limit 2 --profiles webp,jxl --bpp 0.02

Exit status 0 only if every case passed (a RateError counts as a failure).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from semcodec.image_io import atomic_write_bytes, load_image
from semcodec.paths import shared_data_dir
from semcodec.pipeline import compress, decode, describe, target_bytes
from semcodec.profiles import get_profile

CLASSICAL = ["jpeg", "webp", "avif", "jxl", "j2k", "heif"]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * math.log10(255**2 / mse)


def run_case(path: Path, profile: str, bpp: float, tmp: Path) -> dict:
    image = load_image(path)
    h, w = image.shape[:2]
    prof = get_profile(profile)
    row: dict = {"image": path.name, "profile": profile, "target_bpp": bpp}
    t0 = time.perf_counter()
    try:
        data = compress(image, bpp=bpp, profile=prof)
    except Exception as e:  # report, don't stop the sweep
        row.update(ok=False, error=f"{type(e).__name__}: {e}")
        return row
    row["encode_s"] = time.perf_counter() - t0
    out = tmp / f"{path.stem}.{profile}.{bpp}.smc"
    atomic_write_bytes(out, data)
    data = out.read_bytes()
    size = len(data)
    t1 = time.perf_counter()
    decoded = decode(data)
    row["decode_s"] = time.perf_counter() - t1
    info = describe(data)
    checks = {
        "size_le_target": size <= target_bytes(bpp, w, h),
        "bpp_le_target": 8 * size / (w * h) <= bpp,
        "shape": decoded.image.shape == image.shape and decoded.image.dtype == np.uint8,
        "info_sums": info["header_bytes"] + sum(s["bytes"] for s in info["streams"]) == size == info["file_bytes"],
        "profile": info["profile"] == profile,
    }
    choice = prof.last_choice
    row.update(
        ok=all(checks.values()),
        failed=[k for k, v in checks.items() if not v],
        bytes=size,
        bpp=8 * size / (w * h),
        psnr=psnr(decoded.image, image),
        downscale=choice.factor if choice else None,
        quality=choice.quality if choice else None,
    )
    return row


def summarize(rows: list[dict], profiles: list[str], rates: list[float]) -> str:
    head = ("| profile | target bpp | pass | RateError | mean bpp | max size/target | mean PSNR dB"
            " | mean downscale | mean encode s |\n|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for p in profiles:
        for r in rates:
            sel = [x for x in rows if x["profile"] == p and x["target_bpp"] == r]
            good = [x for x in sel if x.get("ok")]
            rate_err = sum(1 for x in sel if "RateError" in x.get("error", ""))
            done = [x for x in sel if "bytes" in x]

            def mean(key: str, xs: list[dict] = done) -> str:
                vals = [x[key] for x in xs if x.get(key) is not None]
                return f"{statistics.fmean(vals):.4g}" if vals else "-"

            worst = f"{max(x['bpp'] / r for x in done):.3f}" if done else "-"
            lines.append(f"| {p} | {r} | {len(good)}/{len(sel)} | {rate_err} | {mean('bpp')} | {worst}"
                         f" | {mean('psnr')} | {mean('downscale')} | {mean('encode_s')} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = (shared_data_dir() or Path("../shared/data")) / "kodak"
    ap.add_argument("--data", type=Path, default=default_data, help="folder of PNG images (default: Kodak)")
    ap.add_argument("--profiles", default=",".join(CLASSICAL))
    ap.add_argument("--bpp", default="0.01,0.02,0.05,0.1")
    ap.add_argument("--limit", type=int, default=0, help="only the first N images")
    ap.add_argument("--jsonl", type=Path, help="also write one JSON row per case here")
    args = ap.parse_args(argv)
    try:
        import pillow_heif

        pillow_heif.options.DECODE_THREADS = 1
    except ImportError:
        pass
    images = sorted(args.data.glob("*.png"))[: args.limit or None]
    if not images:
        print(f"no PNG images in {args.data}", file=sys.stderr)
        return 2
    profiles = [p for p in args.profiles.split(",") if p]
    rates = [float(r) for r in args.bpp.split(",")]
    rows: list[dict] = []
    log = args.jsonl.open("w") if args.jsonl else None
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        for path in images:
            for p in profiles:
                for r in rates:
                    row = run_case(path, p, r, Path(tmp))
                    rows.append(row)
                    status = "ok" if row.get("ok") else f"FAIL {row.get('error') or row.get('failed')}"
                    print(f"{path.name} {p:5s} {r:<5} {row.get('bytes', '-'):>6} B"
                          f" psnr={row.get('psnr', float('nan')):.2f} {status}", flush=True)
                    if log:
                        log.write(json.dumps(row) + "\n")
                        log.flush()
    print(f"\n{len(images)} images x {len(profiles)} profiles x {len(rates)} rates, {time.time() - t0:.0f} s\n")
    print(summarize(rows, profiles, rates))
    failed = [x for x in rows if not x.get("ok")]
    print(f"\n{len(rows) - len(failed)}/{len(rows)} cases passed")
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
